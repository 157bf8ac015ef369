"""The public surface is exactly what __all__ says, sorted, and every name is importable."""

from __future__ import annotations

import emoji_async
import emoji_async.events
import emoji_async.testing

PUBLIC = (emoji_async, emoji_async.events, emoji_async.testing)


def test_all_is_sorted_and_unique() -> None:
    for module in PUBLIC:
        names = list(module.__all__)
        assert names == sorted(names), module.__name__
        assert len(set(names)) == len(names), module.__name__


def test_every_public_name_exists_and_every_public_object_is_listed() -> None:
    for module in PUBLIC:
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        defined = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and getattr(value, "__module__", "").startswith(module.__name__)
        }
        assert defined <= set(module.__all__), defined - set(module.__all__)


def test_every_error_derives_from_the_base() -> None:
    errors = [getattr(emoji_async, name) for name in emoji_async.__all__ if name.endswith("Error")]
    assert len(errors) > 20
    assert all(issubclass(err, emoji_async.EmojiError) for err in errors)
    assert issubclass(emoji_async.WaitTimeoutError, TimeoutError)
    assert issubclass(emoji_async.ValidationError, ValueError)


def test_the_package_ships_its_type_information() -> None:
    from importlib.resources import files

    assert files("emoji_async").joinpath("py.typed").is_file()
