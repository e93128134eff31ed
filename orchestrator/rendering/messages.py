"""Message templates: ``templates/messages/<template>/<locale>/{subject.txt,body.txt,body.html,sms.txt}``.

Rendered with Jinja2 (HTML autoescaped). Each rendering returns the version of the wording it used:
a SHA-256 over the template sources (:func:`wording_version`), stored with the message and with
consent events [R2].

Imported templates. A template imported with ``reconsent templates import`` lives in the database
(:mod:`orchestrator.rendering.template_store`), one row per part and version. The renderer is handed the
sources of a *version* (``render(..., version=V)``): it gets them once from ``fetch`` and keeps them
under the Jinja name ``@V/<template>/<locale>/<part>`` — a version's sources never change, so no
cache is ever stale and no message costs a query. ``version=None`` is the shipped template of that
name (files under ``templates/messages``). Imported HTML bodies may extend the shipped
``_layout.html``. The version of an imported template is computed exactly as the shipped one's, from
the sources rendered.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from babel.dates import format_date
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    FunctionLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from orchestrator.domain.model import Channel
from orchestrator.errors import InputError
from orchestrator.rendering.compiled import PRINT, Form, add_form, freeze, uses
from orchestrator.resources import TEMPLATES

TEMPLATES_DIR = TEMPLATES
EMAIL_PARTS = ("subject.txt", "body.txt", "body.html")
SMS_PARTS = ("sms.txt",)
#: the parts of a template, per channel
PARTS = {Channel.EMAIL: EMAIL_PARTS, Channel.SMS: SMS_PARTS}
#: the brand a context without one renders with (the shipped look; see orchestrator.rendering.brand)
DEFAULT_BRAND = {"colour": "#0b5cad", "logo_url": ""}
#: (template, locale, version) → {part: source} of that stored version, or None when there is none
FetchWording = Callable[[str, str, str], Mapping[str, str] | None]


def wording_version(sources: Iterable[tuple[str, bytes | None]]) -> str:
    """The version of a wording: SHA-256 over each part's name and bytes, first 16 hex digits.

    The same for a shipped template (bytes of its files) and an imported one (its stored sources,
    UTF-8): importing an unchanged copy of a shipped template gives the shipped version.

    >>> wording_version([("sms.txt", b"Hello {{ short_url }}")])
    '2e7465b71118ef18'
    """
    digest = hashlib.sha256()
    for part, data in sources:
        digest.update(part.encode() + b"\0")
        if data is not None:
            digest.update(data)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    locale: str
    version: str  # sha256 of the sources, first 16 hex digits
    text: str
    subject: str | None = None
    html: str | None = None


class MessageRenderer:
    """Renders shipped templates (``version=None``) and stored versions of imported ones.

    ``fetch`` gives the sources of a stored version (the runtime reads them from the database); a
    renderer without it knows shipped templates only.
    """

    def __init__(self, root: Path = TEMPLATES_DIR, *, fetch: FetchWording | None = None) -> None:
        self.root = root / "messages"
        self.fetch = fetch
        #: Jinja name (``@version/template/locale/part``) → source, of the stored versions seen so far
        self._stored: dict[str, str] = {}
        self._loaded: set[tuple[str, str, str]] = set()  # (template, locale, version) in _stored
        self.env = Environment(
            # a stored version first; anything else (shipped parts, _layout.html) from the files
            loader=ChoiceLoader([FunctionLoader(self._stored.get), FileSystemLoader(str(self.root))]),
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
        return PARTS[channel]

    def available_locales(self, template: str) -> list[str]:
        """The locales of the shipped template of that name."""
        folder = self.root / template
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def check(self, template: str, channel: Channel, locale: str, version: str | None = None) -> None:
        """Raise InputError when a part of the template is missing for this locale."""
        if version is not None:
            self.load(template, locale, version, channel)
            return
        for part in self.parts(channel):
            if not (self.root / template / locale / part).is_file():
                raise InputError(
                    f"template {template!r}: missing {locale}/{part} under {self.root} "
                    f"(available locales: {', '.join(self.available_locales(template)) or 'none'})"
                )

    def version(self, template: str, channel: Channel, locale: str, version: str | None = None) -> str:
        """The wording version a render records: a stored version is its own."""
        return version if version is not None else _version(self.root, template, locale, self.parts(channel))

    def source_of(self, template: str, channel: Channel, locale: str, version: str | None, part: str) -> str | None:
        """The source of one part of a wording version (the shipped file when the version is the
        shipped one, else the stored version), or None when this version is nowhere any more (a
        shipped wording of an earlier release). For proof: what a person was sent."""
        try:
            if version is None or version == self.version(template, channel, locale):
                path = self.root / template / locale / part
                return path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, InputError):
            return None
        sources = self.fetch(template, locale, version) if self.fetch is not None else None
        return sources.get(part) if sources else None

    def load(self, template: str, locale: str, version: str, channel: Channel,
             sources: Mapping[str, str] | None = None) -> None:
        """Make a stored version renderable: its ``sources`` ({part: text}), or what ``fetch`` gives.

        Refused (InputError) when a part of ``channel`` is missing or the sources are not that
        version: what is rendered is always the wording its version names.
        """
        if (template, locale, version) in self._loaded:
            return
        parts = self.parts(channel)
        names = [_stored_name(template, locale, part, version) for part in parts]
        if sources is None and self.fetch is not None:
            sources = self.fetch(template, locale, version)
        where = f"template {template!r} ({locale}, version {version})"
        if not sources:
            raise InputError(f"{where}: not in the template store")
        missing = [part for part in parts if part not in sources]
        if missing:
            raise InputError(f"{where}: no {', '.join(missing)} (not a {channel.value} template)")
        if wording_version((part, sources[part].encode("utf-8")) for part in parts) != version:
            raise InputError(f"{where}: the stored sources are not this version")
        for name, part in zip(names, parts, strict=True):
            self._stored[name] = sources[part]
        self._loaded.add((template, locale, version))

    def render(self, template: str, channel: Channel, locale: str, context: dict[str, Any],
               version: str | None = None) -> RenderedMessage:
        """``version``: a stored version of an imported template; None: the shipped template."""
        ctx = {"brand": DEFAULT_BRAND, **context, "locale": locale}
        if version is not None:
            self.load(template, locale, version, channel)
        try:
            staged = self._fast(template, channel, locale, ctx, version)
            if staged is None:
                staged = self._staged(template, channel, locale, ctx, version)
        except TemplateNotFound as exc:
            raise InputError(f"template {template!r}: {exc.name} not found under {self.root}") from None
        return self._finish(template, channel, locale, staged, version)

    def render_full(self, template: str, channel: Channel, locale: str, context: dict[str, Any],
                    version: str | None = None) -> RenderedMessage:
        """Always the full Jinja render (the reference the compiled forms are checked against)."""
        ctx = {"brand": DEFAULT_BRAND, **context, "locale": locale}
        if version is not None:
            self.load(template, locale, version, channel)
        try:
            staged = self._staged(template, channel, locale, ctx, version)
        except TemplateNotFound as exc:
            raise InputError(f"template {template!r}: {exc.name} not found under {self.root}") from None
        return self._finish(template, channel, locale, staged, version)

    def _staged(self, template: str, channel: Channel, locale: str, ctx: dict[str, Any],
                version: str | None) -> tuple[str, ...]:
        """Each part as Jinja writes it, the HTML with its CSS inlined (what compiled forms store)."""
        out = []
        for part in self.parts(channel):
            text = self._render(_jinja_name(template, locale, part, version), ctx)
            out.append(inline_css(text) if part.endswith(".html") else text)
        return tuple(out)

    def _finish(self, template: str, channel: Channel, locale: str, staged: tuple[str, ...],
                version: str | None) -> RenderedMessage:
        version = self.version(template, channel, locale, version)
        if channel is Channel.SMS:
            return RenderedMessage(template, locale, version, _one_line(staged[0]))
        subject, text, html = staged
        return RenderedMessage(template, locale, version, text.strip() + "\n", _one_line(subject), html)

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        return self.env.get_template(name).render(ctx)

    # -- compiled forms (the mechanism: orchestrator.rendering.compiled) -----------------------------
    def _fast(self, template: str, channel: Channel, locale: str, ctx: dict[str, Any],
              version: str | None) -> tuple[str, ...] | None:
        misused = self._misused_names(template, channel, locale, version)
        if misused is None:
            return None
        slots = tuple(name for name, value in ctx.items()
                      if name != "locale" and type(value) is str and value)
        if not slots or any(name in misused for name in slots):
            return None  # nothing to gain, or a slot used in a way substitution cannot reproduce
        values = [ctx[name] for name in slots]
        if any(_UNSAFE.search(v) or not v.isprintable() for v in values):
            return None
        key = (template, version, channel, locale, slots,
               tuple([(k, freeze(v)) for k, v in ctx.items() if k not in slots]))
        try:
            form = self._forms.get(key, _MISSING)
        except TypeError:  # a context value that cannot be hashed: no form
            return None
        if form is _MISSING:
            form = self._new_form(template, channel, locale, version, ctx, key, slots, values)
        return form.join(values) if form is not None else None

    def _new_form(self, template: str, channel: Channel, locale: str, version: str | None, ctx: dict[str, Any],
                  key: Any, slots: tuple[str, ...], values: list[str]) -> Form | None:
        parts = self.parts(channel)

        def render(marks: Sequence[str]) -> tuple[str, ...]:
            return self._staged(template, channel, locale, dict(ctx, **dict(zip(slots, marks, strict=False))), version)

        def guard(staged: tuple[str, ...], marks: list[str]) -> bool:
            # a value inside CSS or a script: the inliner may rewrite it
            return not any(m in block.group(0)
                           for part, text in zip(parts, staged, strict=False) if part.endswith(".html")
                           for block in _CSS_OR_SCRIPT.finditer(text) for m in marks)

        return add_form(self._forms, key, values, render,
                        lambda: self._staged(template, channel, locale, ctx, version), guard)

    def _misused_names(self, template: str, channel: Channel, locale: str,
                       version: str | None) -> frozenset[str] | None:
        """Names some part uses other than by printing or testing them (None: cannot be analysed)."""
        key = (template, version, channel, locale)
        if key not in self._misused:
            found = uses(self.env, [_jinja_name(template, locale, part, version) for part in self.parts(channel)])
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
    paths = [(part, root / template / locale / part) for part in parts]
    return wording_version((part, path.read_bytes() if path.is_file() else None) for part, path in paths)


def _jinja_name(template: str, locale: str, part: str, version: str | None) -> str:
    """``reconsent/fr/sms.txt`` (shipped file) or ``@<version>/reconsent/fr/sms.txt`` (stored)."""
    return f"{template}/{locale}/{part}" if version is None else _stored_name(template, locale, part, version)


def _stored_name(template: str, locale: str, part: str, version: str) -> str:
    return f"@{version}/{template}/{locale}/{part}"


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
    r"""The text on one line: each run of white space becomes one space, except a no-break space, which
    French typography puts before : ; ? ! (« Boutique Lumière : souhaitez-vous… ? ») and which a
    subject must keep.

    >>> _one_line(" Boutique\u00a0: un\n  sujet\u00a0? ")
    'Boutique\xa0: un sujet\xa0?'
    """
    return re.sub(r"[^\S\u00a0\u202f]+", " ", text).strip()


def _long_date(value: datetime, locale: str = "fr") -> str:
    # A campaign's messages all show the same deadline: format it once per locale, not per message.
    # Cached by the wall-clock date it shows (two equal instants in two time zones are equal
    # datetimes, but may fall on different days).
    return _long_date_of(value.date() if isinstance(value, datetime) else value, locale)


@lru_cache(maxsize=1024)
def _long_date_of(day: date, locale: str) -> str:
    return format_date(day, format="long", locale=locale)
