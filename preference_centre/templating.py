"""Rendering the pages: Jinja, and a cache of rendered pages with the per-person values left as slots.

A page such as the preference page is the same for everyone who shares its *shape* (language, which
channels, which boxes are ticked, …) except a few per-person strings (the masked address, the first
name, the links). :func:`render` renders each shape once with markers in place of those strings and
then only fills the markers, escaping each value exactly as Jinja's autoescape does; this is what
makes the page cheap under load. The Jinja render stays the reference: a page whose template does
more with a slot value than print it (a filter, a comparison) is detected and rendered by Jinja
every time, and tests compare both outputs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape

from orchestrator import PROJECT_ROOT
from preference_centre.i18n import gettext_for

PAGES_DIR = PROJECT_ROOT / "templates" / "pages"

_env = Environment(loader=FileSystemLoader(str(PAGES_DIR)), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)

MESSAGES = {
    "invalid": "This link is not valid. It may have been copied incompletely.",
    "expired": "This link has expired.",
    "not_found": "This page does not exist.",
    "too_many": "Too many attempts from your connection. Please wait a minute and try again.",
    "server": "Something went wrong on our side. Nothing was changed. Please try again later.",
    "not_allowed": "This action is not allowed here.",
    "too_large": "This request is too large.",
    "gone": "We no longer hold data about you.",
}

#: titles of the page shown after "send me a new link", by outcome (see self_service.send_fresh_link)
NEWLINK_TITLES = {
    "sent": "A new link is on its way",
    "rate_limited": "A new link was already sent",
    "failed": "The new link could not be sent",
    "refused": "We cannot send a new link",
}

#: marks a slot in a page rendered once per shape: private-use characters no value or template holds
_OPEN, _CLOSE = "\ue000", "\ue001"
_SLOT = re.compile(f"{_OPEN}([^{_OPEN}{_CLOSE}]*){_CLOSE}")
_MAX_SHAPES = 1024
#: shape → the page split at its slots (even indexes literal text, odd indexes slot paths), or None
#: when the template does more than print a slot (then Jinja renders every time)
_shapes: dict[tuple[Any, ...], list[str] | None] = {}


def jinja_render(name: str, lang: str, sender: Any, context: Mapping[str, Any], personal: Mapping[str, Any]) -> str:
    """The reference: the template rendered by Jinja with every value in place."""
    return _env.get_template(name).render(_=gettext_for(lang), lang=lang, sender=sender, messages=MESSAGES,
                                          titles=NEWLINK_TITLES, **context, **personal)


def render(name: str, lang: str, sender: Any, context: Mapping[str, Any], personal: Mapping[str, Any]) -> str:
    """Same text as :func:`jinja_render`. ``personal`` holds the per-person values (strings, or
    dicts of strings): the template may print them and test whether they are empty, nothing else."""
    if not personal:
        return jinja_render(name, lang, sender, context, personal)
    try:
        key = (name, lang, _freeze(sender), _freeze(context), _freeze({k: _shape(v) for k, v in personal.items()}))
    except TypeError:  # a context value we cannot compare: no caching
        return jinja_render(name, lang, sender, context, personal)
    if key in _shapes:
        parts = _shapes[key]
    else:
        parts = _split(name, lang, sender, context, personal)
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        _shapes[key] = parts
    if parts is None:
        return jinja_render(name, lang, sender, context, personal)
    out = parts[:]
    for i in range(1, len(out), 2):
        name_, _, sub = out[i].partition(".")
        value = personal[name_][sub] if sub else personal[name_]
        out[i] = str(escape(value))
    return "".join(out)


def _split(name: str, lang: str, sender: Any, context: Mapping[str, Any], personal: Mapping[str, Any]) -> list[str] | None:
    marked: dict[str, Any] = {}
    paths: set[str] = set()
    for key, value in personal.items():
        if isinstance(value, Mapping):
            marked[key] = {sub: _mark(f"{key}.{sub}") if v else v for sub, v in value.items()}
            paths.update(f"{key}.{sub}" for sub, v in value.items() if v)
        else:
            marked[key] = _mark(key) if value else value
            if value:
                paths.add(key)
    html = jinja_render(name, lang, sender, context, marked)
    parts = _SLOT.split(html)
    literal_ok = all(_OPEN not in p and _CLOSE not in p for p in parts[0::2])
    if not literal_ok or not set(parts[1::2]) <= paths:
        return None  # a slot was transformed (filtered, cut, re-cased): Jinja must see the real value
    return parts


def _mark(path: str) -> str:
    return f"{_OPEN}{path}{_CLOSE}"


def _shape(value: Any) -> Any:
    """What a template may depend on in a per-person value: only whether it is empty (and, when it
    is, which empty value it is).

    >>> _shape({"email": "j•••@exemple.fr", "sms": ""}), _shape(None)
    ({'email': True, 'sms': ('empty', '')}, ('empty', None))
    """
    if isinstance(value, Mapping):
        return {k: _shape(v) for k, v in value.items()}
    if not isinstance(value, str | None):
        raise TypeError("personal values are strings")
    return True if value else ("empty", value)


_SCALARS = (str, int, float, bool, type(None))


def _freeze(value: Any) -> Any:
    """A hashable, comparable copy of a context value; TypeError for anything else.

    >>> _freeze({"channels": ["email"], "first": True}) == _freeze({"first": True, "channels": ["email"]})
    True
    >>> _freeze({"x": 1}) == _freeze({"x": True})
    False
    """
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if isinstance(value, Mapping):
        return (dict, tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return (tuple, tuple(_freeze(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (kind, _freeze(vars(value)))
    raise TypeError(f"cannot key a page on {kind.__name__}")
