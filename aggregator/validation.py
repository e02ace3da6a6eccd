"""pydantic `ValidationError` -> one Sheaf-style error: the field's full path (`slices[0].proof`,
`recursion.batch`) and a message naming what was expected, for the config models
(aggregator/config.py) and the HTTP request-body models (aggregator/http_submission.py,
aggregator/inference_http.py). Never pydantic's own text: its messages name Python types and its
URLs, not the key a user wrote.

The expected type/range comes from the model itself (annotation, `Field(ge=...)` bounds, or a
`Field(description=...)` where a pattern or validator makes the rule), so the message and the
check cannot drift apart."""

from __future__ import annotations

import difflib
import json
import types
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

# pydantic error types that mean "wrong JSON/TOML type" (as opposed to a value out of range)
_TYPE_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
}


def loc_path(loc: tuple[int | str, ...]) -> str:
    """('slices', 0, 'proof') -> "slices[0].proof"; a key is cut to 40 characters (an unknown key is
    the sender's text, echoed back)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part[:40]}" if out else part[:40])
    return out


def _unwrap(tp: Any) -> Any:
    """X | None -> X (an optional field names what it wants when present)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Any, FieldInfo | None]:
    """The annotation and FieldInfo at `loc` (None when `loc` leaves the models' fields)."""
    tp: Any = model
    info: FieldInfo | None = None
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):  # a list element: the list's item type, no field of its own
            args = get_args(tp)
            tp, info = (args[0] if args else Any), None
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            info = tp.model_fields[part]
            tp = info.annotation
        else:
            return Any, None
    return tp, info


def _type_name(tp: Any) -> str:
    tp = _unwrap(tp)
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in get_args(tp))
    if get_origin(tp) is list:
        (item,) = get_args(tp) or (Any,)
        name = _type_name(item)
        return "a list of " + name.removeprefix("an ").removeprefix("a ") + "s"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "an object"
    return _TYPE_NAMES.get(tp, "a value") if isinstance(tp, type) else "a value"


def expected(tp: Any, info: FieldInfo | None) -> str:
    """What the field at (tp, info) accepts, e.g. "an integer >= 1", "an integer in 20..86400"."""
    if info is not None and info.description:
        return info.description
    name = _type_name(tp)
    lo: tuple[str, Any] | None = None
    hi: tuple[str, Any] | None = None
    for m in info.metadata if info is not None else ():
        if isinstance(m, at.Ge):
            lo = (">=", m.ge)
        elif isinstance(m, at.Gt):
            lo = (">", m.gt)
        elif isinstance(m, at.Le):
            hi = ("<=", m.le)
        elif isinstance(m, at.Lt):
            hi = ("<", m.lt)
    if lo and hi and lo[0] == ">=" and hi[0] == "<=":
        return f"{name} in {lo[1]}..{hi[1]}"
    bounds = [f"{op} {v}" for op, v in (b for b in (lo, hi) if b)]
    return " ".join([name, " and ".join(bounds)]) if bounds else name


def shown(value: Any, limit: int = 60) -> str:
    """A value as the user wrote it (JSON/TOML spelling: true, "x"), cut to `limit` characters."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_error(exc: ValidationError, model: type[BaseModel], unknown: str) -> tuple[str, str]:
    """(field path, message) of the error to report: an unknown key first (a typo explains the
    other errors), else the first in field order. `unknown` is the message for an unknown key;
    a close known name is added as "did you mean ...?"."""
    errs = exc.errors(include_url=False)
    err: ErrorDetails = next((e for e in errs if e["type"] == "extra_forbidden"), errs[0])
    loc = tuple(err["loc"])
    path = loc_path(loc)
    if err["type"] == "extra_forbidden":
        parent, _ = _walk(model, loc[:-1])
        parent = _unwrap(parent)
        known = (
            list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        )
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        return path, unknown + (f"; did you mean {close[0]}?" if close else "")
    tp, info = _walk(model, loc)
    want = expected(tp, info)
    if err["type"] == "missing":
        return path, f"missing; expected {want}"
    if err["type"] in ("value_error", "assertion_error"):  # our own validators: their message
        cause = (err.get("ctx") or {}).get("error")
        return path, str(cause) if cause is not None else err["msg"]
    return path, f"expected {want}, got {shown(err['input'])}"
