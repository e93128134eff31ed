"""Rendering the pages: Jinja, and a cache of rendered pages with the per-person values left as slots.

A page such as the preference page is the same for everyone who shares its *shape* (language, which
channels, which boxes are ticked, …) except a few per-person strings (the masked address, the first
name, the links). :func:`render` renders each shape once with markers in place of those strings and
then only fills the markers, escaping each value exactly as Jinja's autoescape does; this is what
makes the page cheap under load. The mechanism and its checks (syntax-tree analysis, a second
render with other markers, the first real page rendered by Jinja too) are those of the message
templates: :mod:`orchestrator.rendering.compiled`. The Jinja render stays the reference: a page
whose template does more with a slot value than print it, test it or pass it to ``_()`` (a filter,
a comparison) is detected and rendered by Jinja every time, and tests compare both outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape

from orchestrator.rendering.compiled import ITEM, PRINT, Form, add_form, freeze, uses
from orchestrator.resources import TEMPLATES
from preference_centre.i18n import gettext_for

PAGES_DIR = TEMPLATES / "pages"

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
    "over": "This campaign is over: your answer arrived after its deadline and was not recorded.",
}

#: titles of the page shown after "send me a new link", by outcome (see self_service.send_fresh_link)
NEWLINK_TITLES = {
    "sent": "A new link is on its way",
    "rate_limited": "A new link was already sent",
    "failed": "The new link could not be sent",
    "refused": "We cannot send a new link",
}

#: the brand of a page rendered without one: the shipped texts and look (preference_centre.public.brand)
NO_BRAND = {"title": "", "intro": "", "button": "", "logo": "", "css": ""}
#: shape → the page's compiled form (:mod:`orchestrator.rendering.compiled`), or None when a check
#: failed (then Jinja renders every time)
_shapes: dict[tuple[Any, ...], Form | None] = {}
#: (environment, template) → how it uses each name (None: cannot be analysed)
_uses: dict[tuple[Environment, str], dict[str, set[str]] | None] = {}


def jinja_render(name: str, lang: str, sender: Any, context: Mapping[str, Any], personal: Mapping[str, Any]) -> str:
    """The reference: the template rendered by Jinja with every value in place."""
    return _env.get_template(name).render(_=gettext_for(lang), lang=lang, sender=sender, messages=MESSAGES,
                                          titles=NEWLINK_TITLES, **{"brand": NO_BRAND, **context}, **personal)


def render(name: str, lang: str, sender: Any, context: Mapping[str, Any], personal: Mapping[str, Any]) -> str:
    """Same text as :func:`jinja_render`. ``personal`` holds the per-person values (strings, or
    dicts of strings): the template may print them, test whether they are empty and pass them to
    ``_()``, nothing else (a template that does more is rendered by Jinja every time)."""
    if not personal:
        return jinja_render(name, lang, sender, context, personal)
    env = _env
    if (env, name) not in _uses:
        _uses[(env, name)] = uses(env, [name], calls=("_",))
    found = _uses[(env, name)]
    try:
        key = (name, lang, freeze(sender), freeze(context), freeze({k: _shape(v) for k, v in personal.items()}))
        hash(key)
    except TypeError:  # a personal value that is not a string, a context value that cannot be hashed
        return jinja_render(name, lang, sender, context, personal)
    if found is None or any(found.get(k, {_WAY[type(v) is dict]}) - {_WAY[type(v) is dict]}
                            for k, v in personal.items()):
        return jinja_render(name, lang, sender, context, personal)  # a slot is used otherwise
    paths = [(k, sub) for k, v in personal.items() if type(v) is dict for sub, x in v.items() if x] + \
            [(k, None) for k, v in personal.items() if type(v) is not dict and v]
    if not paths:
        return jinja_render(name, lang, sender, context, personal)
    values = [personal[k][sub] if sub is not None else personal[k] for k, sub in paths]
    fill = [str(escape(v)) for v in values]

    def with_values(marks: Sequence[str]) -> tuple[str, ...]:
        filled: dict[str, Any] = {k: dict(v) if type(v) is dict else v for k, v in personal.items()}
        for (k, sub), mark in zip(paths, marks, strict=False):
            if sub is None:
                filled[k] = mark
            else:
                filled[k][sub] = mark
        return (jinja_render(name, lang, sender, context, filled),)

    form = _shapes[key] if key in _shapes else \
        add_form(_shapes, key, fill, with_values, lambda: (jinja_render(name, lang, sender, context, personal),))
    return form.join(fill)[0] if form is not None else jinja_render(name, lang, sender, context, personal)


#: how a personal value may be used: a string printed or tested, a dict through ``.key``/``[key]``
_WAY = {False: PRINT, True: ITEM}


def _shape(value: Any) -> Any:
    """What a template may depend on in a per-person value: only whether it is empty (and, when it
    is, which empty value it is).

    >>> _shape({"email": "j•••@exemple.fr", "sms": ""}), _shape(None)
    ({'email': True, 'sms': ('empty', '')}, ('empty', None))
    """
    if type(value) is dict:
        return {k: _shape(v) for k, v in value.items()}
    if not isinstance(value, str | None):
        raise TypeError("personal values are strings")
    return True if value else ("empty", value)
