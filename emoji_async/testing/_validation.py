"""The checks of a request's body, headers and query, raising the provider's 400s.

Each check reads one field of a parsed request and either returns its value or
raises ``ServiceError`` with the text the provider uses: a missing field is
named as the provider names it, a field of the wrong shape gets the one
documented message for a malformed body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._wire import BODY_INVALID, INVALID_FILE_MESSAGES, ServiceError

__all__ = [
    "body_object",
    "box_field",
    "check_model",
    "enabled",
    "invalid",
    "malformed",
    "object_field",
    "positive_param",
    "rejection_message",
    "required",
    "text_field",
]


def invalid(message: str) -> ServiceError:
    return ServiceError(400, "InvalidParameter", message)


def required(name: str) -> ServiceError:
    """A missing field, named as the provider names it: ``driven_id``, not ``input.driven_id``."""
    return invalid(f"Field required: {name}")


def malformed() -> ServiceError:
    """A body that is not the documented shape (not JSON, not an object, a field's wrong type).

    The provider documents this one message; it does not say which field.
    """
    return invalid(BODY_INVALID)


def object_field(value: object, name: str) -> dict[str, Any]:
    if value is None:
        raise required(name)
    if not isinstance(value, dict):
        raise malformed()
    return value


def body_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise malformed()
    return value


def text_field(container: dict[str, Any], name: str) -> str:
    value = container.get(name)
    if value is None or value == "":
        raise required(name)
    if not isinstance(value, str):
        raise malformed()
    return value


def box_field(container: dict[str, Any], name: str) -> list[int]:
    value = container.get(name)
    if value is None:
        raise required(name)
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise malformed()
    return value


def check_model(body: dict[str, Any], expected: str) -> None:
    model = body.get("model")
    if model is None or model == "":
        raise required("model")
    if model != expected:
        raise invalid("Model not exist.")


def rejection_message(code: str) -> str:
    return INVALID_FILE_MESSAGES.get(code, "The input image does not meet the requirements.")


def enabled(headers: Mapping[str, str], name: str) -> bool:
    return headers.get(name, "").strip().lower() == "enable"


def positive_param(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise invalid(f"{name} must be a positive integer, got {text!r}.")
    return value
