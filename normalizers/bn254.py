"""BN254 (alt_bn128) point checks in pure Python: field range, on-curve, G2 subgroup.

G1 has cofactor 1, so on-curve implies in-subgroup. G2 (the sextic twist) does not: a point can
satisfy the twist equation and still lie outside the r-torsion; `g2_in_subgroup` checks [r]Q = O.
That costs a few ms in Python, so it is run on verifying keys (parsed once, cached by hash); the
proof's B point is subgroup-checked by the verifier backend (gnark's strict decode).
"""

from __future__ import annotations

from normalizers.statement import BN254_P as P
from normalizers.statement import BN254_R as R

Fp2 = tuple[int, int]  # (c0, c1) = c0 + c1*u, u^2 = -1

B1 = 3
# b' = 3 / (9 + u)
B2: Fp2 = (
    19485874751759354771024239261021720505790618469301721065564631296452457478373,
    266929791119991161246907387137283842545076965332900288569378510910307636690,
)


def f2_mul(a: Fp2, b: Fp2) -> Fp2:
    t0 = a[0] * b[0]
    t1 = a[1] * b[1]
    return ((t0 - t1) % P, ((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1) % P)


def f2_sqr(a: Fp2) -> Fp2:
    return ((a[0] + a[1]) * (a[0] - a[1]) % P, 2 * a[0] * a[1] % P)


def f2_add(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P)


def f2_sub(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] - b[0]) % P, (a[1] - b[1]) % P)


def f2_inv(a: Fp2) -> Fp2:
    d = pow(a[0] * a[0] + a[1] * a[1], -1, P)
    return (a[0] * d % P, -a[1] * d % P)


def g1_on_curve(x: int, y: int) -> bool:
    return (y * y - x * x * x - B1) % P == 0


def g2_on_curve(x: Fp2, y: Fp2) -> bool:
    return f2_sub(f2_sqr(y), f2_add(f2_mul(f2_sqr(x), x), B2)) == (0, 0)


# Jacobian coordinates over Fp2: (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z == 0 is infinity.
_Jac = tuple[Fp2, Fp2, Fp2]
_ZERO: Fp2 = (0, 0)
_ONE: Fp2 = (1, 0)


def _dbl(p: _Jac) -> _Jac:
    x, y, z = p
    if z == _ZERO:
        return p
    a = f2_sqr(x)
    b = f2_sqr(y)
    c = f2_sqr(b)
    d = f2_sub(f2_sqr(f2_add(x, b)), f2_add(a, c))
    d = f2_add(d, d)
    e = f2_add(f2_add(a, a), a)
    f = f2_sqr(e)
    x3 = f2_sub(f, f2_add(d, d))
    c8 = f2_add(c, c)
    c8 = f2_add(c8, c8)
    c8 = f2_add(c8, c8)
    y3 = f2_sub(f2_mul(e, f2_sub(d, x3)), c8)
    yz = f2_mul(y, z)
    return (x3, y3, f2_add(yz, yz))


def _add_affine(p: _Jac, qx: Fp2, qy: Fp2) -> _Jac:
    x1, y1, z1 = p
    if z1 == _ZERO:
        return (qx, qy, _ONE)
    z1z1 = f2_sqr(z1)
    u2 = f2_mul(qx, z1z1)
    s2 = f2_mul(f2_mul(qy, z1), z1z1)
    h = f2_sub(u2, x1)
    r = f2_sub(s2, y1)
    if h == _ZERO:
        return _dbl(p) if r == _ZERO else (_ONE, _ONE, _ZERO)
    hh = f2_sqr(h)
    hhh = f2_mul(h, hh)
    v = f2_mul(x1, hh)
    x3 = f2_sub(f2_sub(f2_sqr(r), hhh), f2_add(v, v))
    y3 = f2_sub(f2_mul(r, f2_sub(v, x3)), f2_mul(y1, hhh))
    return (x3, y3, f2_mul(z1, h))


def g2_mul(x: Fp2, y: Fp2, k: int) -> _Jac:
    acc: _Jac = (_ONE, _ONE, _ZERO)
    for bit in bin(k)[2:]:
        acc = _dbl(acc)
        if bit == "1":
            acc = _add_affine(acc, x, y)
    return acc


def g2_in_subgroup(x: Fp2, y: Fp2) -> bool:
    """[r]Q == O for an on-curve affine Q."""
    return g2_mul(x, y, R)[2] == _ZERO


def fp_sqrt(x: int) -> int | None:
    r = pow(x, (P + 1) // 4, P)  # p = 3 mod 4
    return r if r * r % P == x % P else None


_INV2 = pow(2, -1, P)


def f2_sqrt(a: Fp2) -> Fp2 | None:
    """A square root in Fp2 = Fp[u]/(u^2+1), or None. Via the norm ("complex method"): two or three
    Fp exponentiations (C-speed `pow`) instead of Fp2 exponentiations in Python."""
    a0, a1 = a[0] % P, a[1] % P
    if a1 == 0:
        s = fp_sqrt(a0)
        if s is not None:
            return (s, 0)
        s = fp_sqrt(-a0 % P)  # sqrt(a0) = sqrt(-a0) * u
        return (0, s) if s is not None else None
    n = fp_sqrt((a0 * a0 + a1 * a1) % P)
    if n is None:
        return None
    x0 = fp_sqrt((a0 + n) * _INV2 % P)
    if x0 is None:
        x0 = fp_sqrt((a0 - n) * _INV2 % P)
        if x0 is None:
            return None
    x1 = a1 * pow(2 * x0, -1, P) % P
    r = (x0, x1)
    return r if f2_sqr(r) == (a0, a1) else None


def _f2_pow(a: Fp2, e: int) -> Fp2:
    out = _ONE
    for bit in bin(e)[2:]:
        out = f2_sqr(out)
        if bit == "1":
            out = f2_mul(out, a)
    return out


def g2_to_affine(p: _Jac) -> tuple[Fp2, Fp2] | None:
    x, y, z = p
    if z == _ZERO:
        return None
    zi = f2_inv(z)
    zi2 = f2_sqr(zi)
    return f2_mul(x, zi2), f2_mul(y, f2_mul(zi2, zi))
