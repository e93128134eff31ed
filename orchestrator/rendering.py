"""Message templates: ``templates/messages/<template>/<locale>/{subject.txt,body.txt,body.html,sms.txt}``.

Rendered with Jinja2 (HTML autoescaped). Each rendering returns the version of the wording it used:
a SHA-256 over the template sources, stored with the message and with consent events [R2].

Compiled forms. A campaign renders the same templates for every person; only a few context values
differ (first name, links). Those "slots" are the context's non-empty strings that the templates
only print (``{{ first_name }}``) or test (``{% if first_name %}``), found in the templates' syntax
tree. A template is rendered once with placeholder values in the slots (CSS inlined once), split on
the placeholders, and each message joins the literal pieces with its own values. The key of a
compiled form holds everything else (template, locale, the other context values, which slots are
empty), so ``{% if first_name %}`` picks its branch as Jinja would. A form is checked before use:
rendered again with other placeholders, and the first message rendered fully too, both compared
with the joined result; a form that fails, a template that uses a slot otherwise (a filter, a
comparison) and a value that escaping or the HTML serializer would change (``&<>"'``, control
characters) all take the full Jinja render. tests/orchestrator/test_rendering.py pins fast == full.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

from orchestrator.resources import TEMPLATES
from orchestrator.compiled_templates import PRINT, Form, add_form, freeze, uses
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError

TEMPLATES_DIR = TEMPLATES
EMAIL_PARTS = ("subject.txt", "body.txt", "body.html")
SMS_PARTS = ("sms.txt",)


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    locale: str
    version: str  # sha256 of the sources, first 16 hex digits
    text: str
    subject: str | None = None
    html: str | None = None


class MessageRenderer:
    def __init__(self, root: Path = TEMPLATES_DIR) -> None:
        self.root = root / "messages"
        self.env = Environment(
            loader=FileSystemLoader(str(self.root)),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates are read once per process: no stat() of every file on every render.
            auto_reload=False,
        )
        self.env.filters["longdate"] = _long_date
        self._forms: dict[Any, Form | None] = {}
        self._misused: dict[Any, frozenset[str] | None] = {}

    def parts(self, channel: Channel) -> tuple[str, ...]:
        return EMAIL_PARTS if channel is Channel.EMAIL else SMS_PARTS

    def available_locales(self, template: str) -> list[str]:
        folder = self.root / template
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def check(self, template: str, channel: Channel, locale: str) -> None:
        """Raise InputError when a part of the template is missing for this locale."""
        for part in self.parts(channel):
            if not (self.root / template / locale / part).is_file():
                raise InputError(
                    f"template {template!r}: missing {locale}/{part} under {self.root} "
                    f"(available locales: {', '.join(self.available_locales(template)) or 'none'})"
                )

    def version(self, template: str, channel: Channel, locale: str) -> str:
        return _version(self.root, template, locale, self.parts(channel))

    def render(self, template: str, channel: Channel, locale: str, context: dict[str, Any]) -> RenderedMessage:
        ctx = dict(context, locale=locale)
        try:
            staged = self._fast(template, channel, locale, ctx)
            if staged is None:
                staged = self._staged(template, channel, locale, ctx)
        except TemplateNotFound as exc:
            raise InputError(f"template {template!r}: {exc.name} not found under {self.root}") from None
        return self._finish(template, channel, locale, staged)

    def render_full(self, template: str, channel: Channel, locale: str, context: dict[str, Any]) -> RenderedMessage:
        """Always the full Jinja render (the reference the compiled forms are checked against)."""
        ctx = dict(context, locale=locale)
        try:
            staged = self._staged(template, channel, locale, ctx)
        except TemplateNotFound as exc:
            raise InputError(f"template {template!r}: {exc.name} not found under {self.root}") from None
        return self._finish(template, channel, locale, staged)

    def _staged(self, template: str, channel: Channel, locale: str, ctx: dict[str, Any]) -> tuple[str, ...]:
        """Each part as Jinja writes it, the HTML with its CSS inlined (what compiled forms store)."""
        out = []
        for part in self.parts(channel):
            text = self._render(f"{template}/{locale}/{part}", ctx)
            out.append(inline_css(text) if part.endswith(".html") else text)
        return tuple(out)

    def _finish(self, template: str, channel: Channel, locale: str, staged: tuple[str, ...]) -> RenderedMessage:
        version = self.version(template, channel, locale)
        if channel is Channel.SMS:
            return RenderedMessage(template, locale, version, _one_line(staged[0]))
        subject, text, html = staged
        return RenderedMessage(template, locale, version, text.strip() + "\n", _one_line(subject), html)

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        return self.env.get_template(name).render(ctx)

    # -- compiled forms (the mechanism: orchestrator.compiled_templates) -----------------------------
    def _fast(self, template: str, channel: Channel, locale: str, ctx: dict[str, Any]) -> tuple[str, ...] | None:
        misused = self._misused_names(template, channel, locale)
        if misused is None:
            return None
        slots = tuple(name for name, value in ctx.items()
                      if name != "locale" and type(value) is str and value)
        if not slots or any(name in misused for name in slots):
            return None  # nothing to gain, or a slot used in a way substitution cannot reproduce
        values = [ctx[name] for name in slots]
        if any(_UNSAFE.search(v) or not v.isprintable() for v in values):
            return None
        key = (template, channel, locale, slots,
               tuple([(k, freeze(v)) for k, v in ctx.items() if k not in slots]))
        try:
            form = self._forms.get(key, _MISSING)
        except TypeError:  # a context value that cannot be hashed: no form
            return None
        if form is _MISSING:
            form = self._new_form(template, channel, locale, ctx, key, slots, values)
        return form.join(values) if form is not None else None

    def _new_form(self, template: str, channel: Channel, locale: str, ctx: dict[str, Any], key: Any,
                  slots: tuple[str, ...], values: list[str]) -> Form | None:
        parts = self.parts(channel)

        def render(marks: Sequence[str]) -> tuple[str, ...]:
            return self._staged(template, channel, locale, dict(ctx, **dict(zip(slots, marks))))

        def guard(staged: tuple[str, ...], marks: list[str]) -> bool:
            # a value inside CSS or a script: the inliner may rewrite it
            return not any(m in block.group(0) for part, text in zip(parts, staged) if part.endswith(".html")
                           for block in _CSS_OR_SCRIPT.finditer(text) for m in marks)

        return add_form(self._forms, key, values, render, lambda: self._staged(template, channel, locale, ctx), guard)

    def _misused_names(self, template: str, channel: Channel, locale: str) -> frozenset[str] | None:
        """Names some part uses other than by printing or testing them (None: cannot be analysed)."""
        key = (template, channel, locale)
        if key not in self._misused:
            found = uses(self.env, [f"{template}/{locale}/{part}" for part in self.parts(channel)])
            self._misused[key] = (None if found is None
                                  else frozenset(name for name, ways in found.items() if ways != {PRINT}))
        return self._misused[key]


_MISSING: Any = object()
#: characters that autoescaping or the HTML serializer of the CSS inliner write differently
_UNSAFE = re.compile("[&<>\"'\u00a0]")
#: places of an HTML part where the CSS inliner parses text rather than copying it
_CSS_OR_SCRIPT = re.compile(r"<(style|script)\b.*?</\1\s*>|\bstyle\s*=\s*(\"[^\"]*\"|'[^']*')", re.S | re.I)


@lru_cache(maxsize=256)
def _version(root: Path, template: str, locale: str, parts: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        path = root / template / locale / part
        digest.update(part.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    """Move <style> rules into style="" attributes (webmails drop <style>); @media rules stay.

    >>> inline_css('<html><head><style>.b{color:red}</style></head><body><p class="b">x</p></body></html>')
    '<html><head></head><body><p class="b" style="color: red;">x</p></body></html>'
    """
    return _inliner().inline(html)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _long_date(value: datetime, locale: str = "fr") -> str:
    # A campaign's messages all show the same deadline: format it once per locale, not per message.
    # Cached by the wall-clock date it shows (two equal instants in two time zones are equal
    # datetimes, but may fall on different days).
    return _long_date_of(value.date() if isinstance(value, datetime) else value, locale)


@lru_cache(maxsize=1024)
def _long_date_of(day: date, locale: str) -> str:
    return format_date(day, format="long", locale=locale)
