"""A bad gameplan in the operator's words: pydantic's validation errors as `GameplanProblem`s.

`gameplan field 'hard_limits.pdt_trades_remaining': must be between 0 and 3, got 5` — the field
path as the operator wrote it (list indexes, no pydantic union-member names) and a reason that
says what is allowed, read from the schema's own bounds. Split from gameplan.py, which holds the
schema and loading; this holds only the translation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


@dataclass(frozen=True, slots=True)
class GameplanProblem:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"gameplan field '{self.field}': {self.reason}"


_TYPE_WORDS = {
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "date_type": "must be a date \"YYYY-MM-DD\"",
    "date_parsing": "must be a date \"YYYY-MM-DD\"",
    "date_from_datetime_parsing": "must be a date \"YYYY-MM-DD\"",
    "datetime_type": "must be a date-time with a UTC offset",
    "datetime_parsing": "must be a date-time with a UTC offset",
    "datetime_from_date_parsing": "must be a date-time with a UTC offset",
    "timezone_aware": "must be a date-time WITH a UTC offset (e.g. -05:00)",
    "finite_number": "must be a finite number",
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not in the gameplan schema)",
}


def problems_from(exc: ValidationError, model: type[BaseModel],
                  members: Mapping[str, type[BaseModel]]) -> list[GameplanProblem]:
    """Each of pydantic's errors as a field path and a reason in the operator's words."""
    problems: list[GameplanProblem] = []
    # union errors, by the field holding the union: [(member, field, reason, input)]
    unions: dict[str, list[tuple[str, str, str, Any]]] = {}
    for err in exc.errors():
        if err["type"] == "extra_forbidden":
            parent, _, _ = _field_name(err["loc"][:-1], model, members)
            name = str(err["loc"][-1])
            field = name if parent == "<root>" else f"{parent}.{name}"
            problems.append(GameplanProblem(field, _TYPE_WORDS["extra_forbidden"]))
            continue
        field, root, member = _field_name(err["loc"], model, members)
        reason = _reason(err, field, model)
        if member is None:
            problems.append(GameplanProblem(field, reason))
        else:
            unions.setdefault(root, []).append((member, field, reason, err.get("input")))
    for root, errors in unions.items():
        # an object given where a string-or-object is allowed: the object's own errors
        if any(m == "str" and isinstance(given, dict) for m, _, _, given in errors):
            problems.extend(GameplanProblem(f, r) for m, f, r, _ in errors if m != "str")
        elif root.startswith("catalysts["):
            problems.append(GameplanProblem(root, "must be a string or an object "
                                                  "{type, impact[, description]}"))
        else:
            reasons = dict.fromkeys(r.split(", got ")[0] for _, _, r, _ in errors)
            problems.append(GameplanProblem(root, " or ".join(reasons)))
    return problems


def _field_name(loc: Iterable[int | str], top: type[BaseModel],
                members: Mapping[str, type[BaseModel]]) -> tuple[str, str, str | None]:
    """`('hard_limits', 'pdt_trades_remaining')` -> 'hard_limits.pdt_trades_remaining'.

    pydantic puts the union member's name into the location of a union error
    (`catalysts.0.str`, `catalysts.0.Catalyst.impact`); it is dropped from the field name
    and returned as the member, with the field that holds the union as the root.
    """
    parts: list[str] = []
    model: type[BaseModel] | None = top
    member: str | None = None
    root = ""
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            continue
        if model is not None and part in model.model_fields:
            parts.append(part)
            model = _nested_model(model.model_fields[part])
        elif model is None and parts and parts[-1].split("[")[0] in ("key_levels", "scorecard"):
            parts.append(part)
        else:
            member = part
            root = ".".join(parts)
            model = members.get(part)
    field = ".".join(parts) or "<root>"
    return field, root or field, member


def _nested_model(info: FieldInfo) -> type[BaseModel] | None:
    ann = info.annotation
    for candidate in (ann, *getattr(ann, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _bounds(field: str, top: type[BaseModel]) -> str | None:
    """The range declared on a field in words ("between 0 and 3", "> 0 and <= 100")."""
    model: type[BaseModel] | None = top
    info: FieldInfo | None = None
    for part in field.split("."):
        name = part.split("[")[0]
        if model is None or name not in model.model_fields:
            return None
        info = model.model_fields[name]
        model = _nested_model(info)
    if info is None:
        return None
    lo = hi = None
    lo_op, hi_op = ">=", "<="
    for meta in info.metadata:
        if getattr(meta, "ge", None) is not None:
            lo, lo_op = meta.ge, ">="
        if getattr(meta, "gt", None) is not None:
            lo, lo_op = meta.gt, ">"
        if getattr(meta, "le", None) is not None:
            hi, hi_op = meta.le, "<="
        if getattr(meta, "lt", None) is not None:
            hi, hi_op = meta.lt, "<"
    if lo is None or hi is None:
        return None
    if (lo_op, hi_op) == (">=", "<="):
        return f"between {lo} and {hi}"
    return f"{lo_op} {lo} and {hi_op} {hi}"


def _reason(err: Any, field: str, model: type[BaseModel]) -> str:
    etype: str = err["type"]
    ctx = err.get("ctx") or {}
    got = f", got {show_value(err.get('input'))}"
    if etype == "missing":
        return _TYPE_WORDS[etype]
    if etype == "extra_forbidden":
        return _TYPE_WORDS[etype]
    if etype in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = _bounds(field, model)
        if bounds is not None:
            return f"must be {bounds}{got}"
        word = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">",
                "less_than": "<"}[etype]
        limit = next(iter(ctx.values()), "?")
        return f"must be {word} {limit}{got}"
    if etype == "too_long":
        return f"must have at most {ctx.get('max_length')} items{got}"
    if etype == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s){got}"
    if etype == "string_too_short":
        return f"must not be empty{got}"
    if etype == "literal_error":
        return f"must be one of {ctx.get('expected', '?')}{got}"
    if etype == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if etype in _TYPE_WORDS:
        return f"{_TYPE_WORDS[etype]}{got}"
    msg = str(err["msg"])
    return f"{msg[:1].lower()}{msg[1:]}{got}"


def show_value(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
