import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON for <pre> blocks; the template still escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "–"


@register.filter
def milliseconds(value: Any) -> str:
    if value is None:
        return "–"
    value = float(value)
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60000:.1f} min"


@register.filter
def label(value: Any) -> str:
    return str(value).replace("_", " ")
