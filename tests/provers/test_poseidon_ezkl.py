"""The Python reimplementation of ezkl's hashed-visibility Poseidon agrees with ezkl itself."""

from __future__ import annotations

import ezkl
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizers.statement import BN254_R
from provers.poseidon_ezkl import constants, tensor_hash


def _felt(v: int) -> str:
    return (v % BN254_R).to_bytes(32, "little").hex()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40))
def test_matches_ezkl_poseidon_hash(values: list[int]) -> None:
    assert [_felt(tensor_hash(values))] == ezkl.poseidon_hash([_felt(v) for v in values])


def test_order_and_length_matter() -> None:
    assert tensor_hash([1, 2]) != tensor_hash([2, 1])
    assert tensor_hash([1, 2]) != tensor_hash([1, 2, 0])


def test_mds_is_a_cauchy_matrix_and_constants_are_canonical() -> None:
    rcs, mds = constants()
    assert len(rcs) == 64 and all(len(r) == 2 and all(0 <= c < BN254_R for c in r) for r in rcs)
    det = (mds[0][0] * mds[1][1] - mds[0][1] * mds[1][0]) % BN254_R
    assert det != 0
