"""The checks' building blocks: each says what it allows, as an attrs validator and on its own."""

from __future__ import annotations

import enum
import math
import re

import attrs
import pytest

from emoji_async import ValidationError
from emoji_async._checks import (
    Check,
    at_least,
    count,
    in_range,
    instance_of,
    is_finite_number,
    matches,
    member_of,
    number,
    optional,
    positive,
    whole,
)

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


def test_the_range_blocks_say_what_they_allow_in_the_words_the_values_always_used() -> None:
    assert positive().allowed == "a finite number > 0"
    assert optional(positive()).allowed == "a finite number > 0, or None"
    assert at_least(0).allowed == "a finite number >= 0"
    assert at_least(1).allowed == "a finite number >= 1"
    assert in_range(0, 1).allowed == "a number from 0 to 1"
    assert in_range(0, 1, high_open=True).allowed == "a number in [0, 1)"
    assert count(1).allowed == "an int >= 1"


def test_the_range_blocks_keep_their_bounds_and_refuse_what_is_not_a_finite_number() -> None:
    assert in_range(0, 1).test(1)
    assert not in_range(0, 1, high_open=True).test(1)
    assert at_least(1).test(1)
    assert not at_least(1).test(0.999)
    assert not positive().test(0)
    assert positive().test(1e-9)
    assert count(1).test(1)
    assert not count(1).test(0)
    assert not count(1).test(True)
    for bad in (True, "1", None, math.inf, math.nan, 10**400):
        assert not at_least(0).test(bad)
        assert not in_range(0, 1e300).test(bad)


class _Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def test_member_of_names_every_member_and_matches_wants_a_whole_match() -> None:
    colour = member_of(_Colour)
    assert colour.allowed == "one of _Colour.RED, _Colour.BLUE"
    assert colour.test(_Colour.RED)
    assert not colour.test("red")
    word = matches(re.compile(r"[a-z]+"), "lower-case letters")
    assert word.test("abc")
    assert not word.test("abc1")
    assert not word.test(b"abc")


def test_a_check_shows_the_value_as_its_shown_function_gives_it() -> None:
    secret = Check("a short string", lambda value: len(value) < 3, shown=lambda value: len(value))
    with pytest.raises(ValidationError) as caught:
        secret.validate("hunter2", field="password")
    assert caught.value.value == 7
    assert "hunter2" not in str(caught.value)
