"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

The package's docstrings cross-reference with reST roles (``:class:`Task```,
``:meth:`PollPolicy.for_batches```, ``:mod:`title <emoji_async.events>```).
Markdown has no such roles, so each is rewritten, once the package is loaded,
into an optional cross-reference: a link where the target is rendered on the
site, plain code where it is not (a private helper), never a broken link.
A paragraph's closing ``::`` (reST for "a literal block follows") becomes ``:``.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(?P<text>[^`]+)`")
_TITLED = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>")
#: reST's "paragraph::" before an indented block: Markdown shows the block as code already.
_LITERAL = re.compile(r"(?<=\S)::$(?=\n\s*\n)", re.MULTILINE)


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            assert isinstance(member, griffe.Object)
            yield from _objects(member)


def _resolve(name: str, obj: griffe.Object, package: griffe.Module) -> str | None:
    """The canonical path ``name`` means in ``obj``'s docstring, if it names anything."""
    scopes: list[griffe.Object | griffe.Alias] = []
    here: griffe.Object | None = obj
    while here is not None:
        scopes.append(here)
        here = here.parent
    if "testing" in package.members:
        scopes.append(package["testing"])
    if name.startswith(package.name + "."):
        name = name[len(package.name) + 1 :]
        scopes = [package]
    for scope in scopes:
        try:
            found = scope[name]
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
        try:
            return str(found.canonical_path)
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return str(found.path)
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in the package's docstrings as optional cross-references."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "emoji_async":
            return
        for obj in _objects(pkg):
            docstring = obj.docstring
            if docstring is not None and ":" in docstring.value:
                link = functools.partial(self._link, obj=obj, package=pkg)
                docstring.value = _LITERAL.sub(":", _ROLE.sub(link, docstring.value))

    @staticmethod
    def _link(match: re.Match[str], *, obj: griffe.Object, package: griffe.Module) -> str:
        text = match["text"].strip()
        titled = _TITLED.fullmatch(text)
        if titled:
            title, target = titled["title"], titled["target"]
        else:
            target = text.lstrip("~")
            title = target.rsplit(".", 1)[-1] if text.startswith("~") else target
        path = _resolve(target, obj, package)
        code = f"<code>{html.escape(title)}</code>"
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'
