"""JSON Schema checks of tool arguments and results, with validators kept per schema."""

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def schema_problems(schema: dict[str, Any], value: Any) -> list[str]:
    """What in ``value`` breaks ``schema``, one line per problem, in path order."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
    return [f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}" for e in errors]


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a usable JSON Schema, or None if it is."""
    if not isinstance(schema, dict):
        return "a schema must be a JSON object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return error.message
    return None
