"""Canonical forms of Nautobot REST values, shared by the catalog, the planner and the checks."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any


def ref_id(value: Any) -> str | None:
    """The UUID of a depth-0 reference ({"id", "object_type", "url"}), a bare UUID string, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value.get("id")
    return str(value)


def content_type_label(value: Any) -> str | None:
    if isinstance(value, dict):  # some serializers nest the content type
        return value.get("app_label", "") + "." + value.get("model", "") if "model" in value else value.get("id")
    return value or None


def choice_value(value: Any) -> Any:
    """A choice field's value ({"value", "label"} on reads); any other value as it is."""
    if isinstance(value, dict) and set(value) == {"value", "label"}:
        return value["value"]
    return value


def normalize(value: Any, *, unordered: bool = False, decimal: bool = False) -> Any:
    """A hashable, canonical form: equal values from either side compare equal.

    Choice fields arrive as {"value", "label"}; blank strings and nulls mean the same to Nautobot forms;
    decimal fields may render with or without trailing zeros; JSON fields compare by content, not key
    order; lists whose order means nothing compare as sorted.
    """
    if isinstance(value, dict) and set(value) == {"value", "label"}:
        value = value["value"]
    if value is None or value == "":
        return None
    if decimal and not isinstance(value, bool):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return str(value)
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        items = [normalize(item) for item in value]
        if unordered:
            items.sort(key=lambda item: json.dumps(item, sort_keys=True, default=str))
        return json.dumps(items, sort_keys=True, default=str)
    return json.dumps(value, sort_keys=True, default=str)
