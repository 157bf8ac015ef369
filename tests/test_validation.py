"""The checks' building blocks: each says what it allows, as an attrs validator and on its own."""

from __future__ import annotations

import math

import attrs
import pytest

from emoji_async import ValidationError
from emoji_async._validation import instance_of, is_finite_number, number, optional, whole

_POSITIVE = number("a finite number > 0", lambda value: value > 0)


@attrs.frozen
class _Holder:
    wait: float = attrs.field(validator=_POSITIVE)
    slots: object = attrs.field(
        default=None, validator=optional(whole("", lambda v: v >= 1), "None or an int >= 1")
    )


def test_is_finite_number_takes_ints_and_floats_but_not_bools_strings_or_infinities() -> None:
    assert is_finite_number(1)
    assert is_finite_number(0.5)
    for value in (True, "1", None, math.inf, math.nan, 10**400):
        assert not is_finite_number(value)


def test_a_check_used_as_an_attrs_validator_names_the_attribute_and_what_it_allows() -> None:
    assert _Holder(0.1).wait == 0.1
    with pytest.raises(ValidationError) as caught:
        _Holder(0)
    assert caught.value.field == "wait"
    assert caught.value.allowed == "a finite number > 0"


def test_optional_lets_none_through_and_says_its_own_allowed_text() -> None:
    assert _Holder(1, slots=None).slots is None
    assert _Holder(1, slots=2).slots == 2
    for bad in (0, 1.0, True, "2"):
        with pytest.raises(ValidationError) as caught:
            _Holder(1, slots=bad)
        assert (caught.value.field, caught.value.allowed) == ("slots", "None or an int >= 1")


def test_a_check_validates_an_argument_under_the_field_given() -> None:
    flag = instance_of(bool, "True or False")
    flag.validate(False, field="fallback")
    with pytest.raises(ValidationError) as caught:
        flag.validate(1, field="fallback")
    assert caught.value.field == "fallback"
    assert caught.value.value == 1
