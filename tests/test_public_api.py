"""The public surface is exactly what __all__ says, sorted, and every name is importable."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

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


def test_the_reference_page_names_every_public_name_of_the_package() -> None:
    page = (Path(__file__).parent.parent / "docs" / "reference.md").read_text(encoding="utf-8")
    named = set(re.findall(r"emoji_async\.(\w+)", page))
    assert set(emoji_async.__all__) - named == set()


def _error_tree(root: type[BaseException]) -> set[type[BaseException]]:
    """``root`` and every class derived from it, at any depth."""
    found = {root}
    for derived in root.__subclasses__():
        found |= _error_tree(derived)
    return found


def test_every_error_derives_from_the_base() -> None:
    errors = [getattr(emoji_async, name) for name in emoji_async.__all__ if name.endswith("Error")]
    assert all(issubclass(err, emoji_async.EmojiError) for err in errors)
    assert issubclass(emoji_async.WaitTimeoutError, TimeoutError)
    assert issubclass(emoji_async.ValidationError, ValueError)


def test_the_error_tree_is_exactly_the_exported_errors() -> None:
    # Every module imported, so that no class of the tree is missed for being unloaded.
    for module in pkgutil.walk_packages(emoji_async.__path__, "emoji_async."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    exported = {
        value
        for name in emoji_async.__all__
        if isinstance(value := getattr(emoji_async, name), type)
        and issubclass(value, BaseException)
    }
    # A class named with a leading underscore never reaches a caller (``_batch_refusal._Unsent``
    # holds a request back inside a batch), so it is no public error.
    tree = {
        error
        for error in _error_tree(emoji_async.EmojiError)
        if error.__module__.split(".")[0] == "emoji_async" and not error.__name__.startswith("_")
    }

    def named(errors: set[type[BaseException]]) -> list[str]:
        return sorted(f"{error.__module__}.{error.__qualname__}" for error in errors)

    assert tree == exported, (
        f"in the tree, not exported: {named(tree - exported)};"
        f" exported, not in the tree: {named(exported - tree)}"
    )


def test_the_package_ships_its_type_information() -> None:
    from importlib.resources import files

    assert files("emoji_async").joinpath("py.typed").is_file()
