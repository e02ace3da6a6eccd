"""Strict JSON loading for prover files: limits checked on raw bytes, then a parse that rejects
duplicate keys, NaN/Infinity and (optionally) floats. Nesting depth is measured before parsing so
a `[[[[...` bomb never reaches the recursive parser."""

from __future__ import annotations

import json
import re
from typing import Any

from normalizers.errors import Code, NormalizeError
from normalizers.limits import Limits

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SIMPLE_STRING = re.compile(rb'"[^"]*"')
_OPEN = frozenset(b"[{")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


def _outside_strings(data: bytes) -> bytes:
    """`data` with every JSON string literal removed (unterminated ones are left in place)."""
    return (_STRING if b"\\" in data else _SIMPLE_STRING).sub(b"", data)


def _depth(stripped: bytes) -> int:
    depth = best = 0
    for b in stripped.translate(None, _NOT_STRUCTURE):
        if b in _OPEN:
            depth += 1
            best = max(best, depth)
        elif b != 0x22:  # an unterminated string's quote is left over: not a bracket
            depth -= 1
    return best


def loads(field: str, data: bytes, limits: Limits, *, allow_float: bool = False) -> Any:
    """Parse `data` as JSON or raise NormalizeError naming `field`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NormalizeError(Code.MALFORMED, field, f"not UTF-8 ({e.reason} at byte {e.start})") from None
    stripped = _outside_strings(data)
    depth = _depth(stripped)
    if depth > limits.max_json_depth:
        raise NormalizeError(
            Code.TOO_LARGE, field, f"JSON nesting depth {depth} exceeds {limits.max_json_depth}"
        )
    for m in _STRING.finditer(data) if len(data) > limits.max_json_string_len else ():
        if m.end() - m.start() - 2 > limits.max_json_string_len:
            raise NormalizeError(
                Code.TOO_LARGE, field, f"a JSON string is longer than {limits.max_json_string_len} bytes"
            )

    # one regex pass over the non-string bytes instead of a per-number hook (ezkl proofs hold
    # thousands of small ints)
    if re.search(rb"[0-9]{%d}" % (limits.max_json_number_len + 1), stripped):
        raise NormalizeError(
            Code.TOO_LARGE, field, f"a JSON number has more than {limits.max_json_number_len} digits"
        )

    def parse_float(s: str) -> float:
        if not allow_float:
            raise NormalizeError(Code.MALFORMED, field, f"unexpected JSON float {s[:20]!r}")
        if len(s) > limits.max_json_number_len:
            raise NormalizeError(
                Code.TOO_LARGE, field, f"a JSON number has more than {limits.max_json_number_len} digits"
            )
        return float(s)

    def parse_constant(s: str) -> Any:
        raise NormalizeError(Code.MALFORMED, field, f"{s} is not valid JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise NormalizeError(Code.MALFORMED, field, f"duplicate key {k[:40]!r}")
            out[k] = v
        return out

    try:
        return json.loads(
            text,
            parse_float=parse_float,
            parse_constant=parse_constant,
            object_pairs_hook=pairs,
        )
    except json.JSONDecodeError as e:
        raise NormalizeError(
            Code.MALFORMED, field, f"invalid JSON: {e.msg} at line {e.lineno} col {e.colno}"
        ) from None
    except RecursionError:  # belt and braces: depth is checked above
        raise NormalizeError(Code.TOO_LARGE, field, "JSON nesting too deep") from None
    except ValueError as e:  # int() of a huge literal (sys.set_int_max_str_digits)
        raise NormalizeError(Code.TOO_LARGE, field, str(e)[:200]) from None
