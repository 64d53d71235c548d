"""What a grant allows, as plain functions: argument constraints, approval conditions and the
hashes that bind grants and approvals to exact definitions and calls. No database here.

A constraint is ``{"path": "amount", "op": "lte", "value": "50"}``: ``path`` is a dotted
path into the call's arguments, ``op`` one of OPERATORS. A constraint on an argument the
call leaves out holds (the schema says what is required), except ``keys_in``, which looks at
an object's keys. Numbers compare as decimals, so "50.00" and 50 are equal."""

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit


class ConstraintError(ValueError):
    """A constraint an admin wrote that cannot be used; the message says which and why."""


_MISSING = object()


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _compare(test: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        a, b = _decimal(actual), _decimal(expected)
        return a is not None and b is not None and test(a, b)

    return check


def _host_in(actual: Any, hosts: Sequence[str]) -> bool:
    if not isinstance(actual, str):
        return False
    host = (urlsplit(actual).hostname or "").lower()
    # "example.com" allows exactly that host; ".example.com" allows its subdomains too.
    return bool(host) and any(
        host == h.lower().lstrip(".") or (h.startswith(".") and host.endswith(h.lower()))
        for h in hosts
    )


def _keys_in(actual: Any, allowed: Sequence[str]) -> bool:
    return isinstance(actual, Mapping) and set(actual) <= set(allowed)


OPERATORS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "eq": (
        "equals",
        lambda a, b: a == b or (_decimal(a) is not None and _decimal(a) == _decimal(b)),
    ),
    "ne": (
        "differs from",
        lambda a, b: not (a == b or (_decimal(a) is not None and _decimal(a) == _decimal(b))),
    ),
    "lt": ("is below", _compare(lambda a, b: a < b)),
    "lte": ("is at most", _compare(lambda a, b: a <= b)),
    "gt": ("is above", _compare(lambda a, b: a > b)),
    "gte": ("is at least", _compare(lambda a, b: a >= b)),
    "in": ("is one of", lambda a, b: a in b),
    "not_in": ("is none of", lambda a, b: a not in b),
    "host_in": ("has its host in", _host_in),
    "keys_in": ("only sets", _keys_in),
}
_LIST_OPERATORS = {"in", "not_in", "host_in", "keys_in"}
_NUMBER_OPERATORS = {"lt", "lte", "gt", "gte"}


@dataclass(frozen=True)
class Constraint:
    path: str
    op: str
    value: Any

    def describe(self) -> str:
        return f"{self.path} {OPERATORS[self.op][0]} {json.dumps(self.value)}"

    def holds(self, arguments: Mapping[str, Any]) -> bool:
        actual = _lookup(arguments, self.path)
        if actual is _MISSING:
            return self.op != "keys_in"
        return OPERATORS[self.op][1](actual, self.value)


def _lookup(arguments: Mapping[str, Any], path: str) -> Any:
    value: Any = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def parse_constraints(raw: Any) -> list[Constraint]:
    """Constraints from their stored or submitted form; ConstraintError names the bad one."""
    if not isinstance(raw, list):
        raise ConstraintError("constraints must be a list of {path, op, value} objects")
    parsed = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or set(item) != {"path", "op", "value"}:
            raise ConstraintError(f"constraint {n} must have exactly path, op and value")
        path, op, value = item["path"], item["op"], item["value"]
        if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            raise ConstraintError(f"constraint {n}: path must be a dotted argument name")
        if op not in OPERATORS:
            raise ConstraintError(
                f"constraint {n}: unknown op {op!r} (one of {', '.join(OPERATORS)})"
            )
        if op in _LIST_OPERATORS and not (
            isinstance(value, list)
            and value
            and all(isinstance(v, str | int | float) for v in value)
        ):
            raise ConstraintError(f"constraint {n}: {op} needs a non-empty list of values")
        if op in _NUMBER_OPERATORS and _decimal(value) is None:
            raise ConstraintError(f"constraint {n}: {op} needs a number")
        parsed.append(Constraint(path, op, value))
    return parsed


def broken_constraints(
    constraints: Sequence[Constraint], arguments: Mapping[str, Any]
) -> list[str]:
    """The constraints the arguments break, described for a person."""
    return [c.describe() for c in constraints if not c.holds(arguments)]


def needs_approval(
    approval: str, conditions: Sequence[Constraint], arguments: Mapping[str, Any]
) -> str | None:
    """Why a person must approve this call under a grant's rule, or None if they need not."""
    if approval == "always":
        return "the grant asks a person for every call"
    if approval == "when" and all(c.holds(arguments) for c in conditions):
        return "the grant asks a person when " + " and ".join(c.describe() for c in conditions)
    return None


def canonical_hash(value: Any) -> str:
    """A stable hash of JSON data: keys sorted, no whitespace."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def definition_hash(
    *,
    name: str,
    description: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None,
    annotations: Mapping[str, Any],
    title: str = "",
) -> str:
    """The hash a grant is pinned to: everything the tool's source says it is and does."""
    return canonical_hash(
        {
            "name": name,
            "title": title,
            "description": description,
            "input_schema": input_schema,
            "output_schema": output_schema,
            "annotations": annotations,
        }
    )
