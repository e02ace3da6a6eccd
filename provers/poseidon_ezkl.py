"""ezkl's "hashed" visibility commitment, reimplemented (pure Python) so other backends can match it.

ezkl 23 (src/circuit/modules/poseidon) hashes a tensor's quantized field elements with halo2_gadgets
Poseidon over BN254 Fr: width t=2, rate 1, x^5 S-box, R_F=8 full and R_P=56 partial rounds, round
constants and Cauchy MDS from the Grain LFSR as in halo2_gadgets (`generate_constants`). ezkl 23.0.5
hashes a whole tensor with ONE sponge: capacity initialised to 2^64 (halo2's ConstantLength<1> tag,
whatever the length), each element added to state[0] then permuted, state[0] is the hash. (Older
ezkl source hashed a tree of 32-element blocks; the installed 23.0.5 does not: found by comparing
with `ezkl.poseidon_hash` and with the instances of a real hashed-visibility proof, see tests.)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from normalizers.statement import BN254_R as P

T = 2
RATE = 1
R_F = 8
R_P = 56
NUM_BITS = 254


class _Grain:
    """The Grain LFSR in self-shrinking mode, seeded as in the Poseidon reference implementation."""

    def __init__(self, t: int, r_f: int, r_p: int) -> None:
        bits: list[int] = []

        def put(value: int, n: int) -> None:
            bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))  # MSB first

        put(1, 2)  # prime field
        put(0, 4)  # S-box x^alpha
        put(NUM_BITS, 12)
        put(t, 12)
        put(r_f, 10)
        put(r_p, 10)
        put((1 << 30) - 1, 30)  # remaining bits set to 1
        self.state = bits
        for _ in range(160):
            self._step()

    def _step(self) -> int:
        s = self.state
        new = s[62] ^ s[51] ^ s[38] ^ s[23] ^ s[13] ^ s[0]
        self.state = [*s[1:], new]
        return new

    def next_bit(self) -> int:
        while True:
            first = self._step()
            second = self._step()
            if first:
                return second

    def _bits_value(self) -> int:
        v = 0
        for _ in range(NUM_BITS):
            v = (v << 1) | self.next_bit()
        return v

    def field_element(self) -> int:
        while True:  # rejection sampling
            v = self._bits_value()
            if v < P:
                return v

    def field_element_wide(self) -> int:
        return self._bits_value() % P


@cache
def constants() -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """(round constants [R_F + R_P][T], MDS [T][T])."""
    g = _Grain(T, R_F, R_P)
    rcs = tuple(tuple(g.field_element() for _ in range(T)) for _ in range(R_F + R_P))
    while True:
        vals = [g.field_element_wide() for _ in range(2 * T)]
        if len(set(vals)) == len(vals):
            break
    xs, ys = vals[:T], vals[T:]
    mds = tuple(tuple(pow(xs[i] + ys[j], P - 2, P) for j in range(T)) for i in range(T))
    return rcs, mds


def permute(state: Sequence[int]) -> list[int]:
    rcs, mds = constants()
    s = list(state)

    def mix(v: list[int]) -> list[int]:
        return [sum(mds[i][j] * v[j] for j in range(T)) % P for i in range(T)]

    half = R_F // 2
    r = 0
    for _ in range(half):
        s = mix([pow((s[i] + rcs[r][i]) % P, 5, P) for i in range(T)])
        r += 1
    for _ in range(R_P):
        s = [(s[i] + rcs[r][i]) % P for i in range(T)]
        s[0] = pow(s[0], 5, P)
        s = mix(s)
        r += 1
    for _ in range(half):
        s = mix([pow((s[i] + rcs[r][i]) % P, 5, P) for i in range(T)])
        r += 1
    return s


def tensor_hash(values: Sequence[int]) -> int:
    """ezkl's hashed-visibility commitment of a tensor (values as field elements or signed ints):
    one sponge over all elements, capacity initialised to 2^64, state[0] after the last permutation."""
    state = [0, 1 << 64]
    for v in values:
        state[0] = (state[0] + v) % P
        state = permute(state)
    return state[0]
