"""Message templates: ``templates/messages/<template>/<locale>/{subject.txt,body.txt,body.html,sms.txt}``.

Rendered with Jinja2 (HTML autoescaped). Each rendering returns the version of the wording it used:
a SHA-256 over the template sources, stored with the message and with consent events [R2].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

from orchestrator import PROJECT_ROOT
from orchestrator.domain.model import Channel
from orchestrator.errors import InputError

TEMPLATES_DIR = PROJECT_ROOT / "templates"
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
            if channel is Channel.SMS:
                text = self._render(f"{template}/{locale}/sms.txt", ctx)
                return RenderedMessage(template, locale, self.version(template, channel, locale), _one_line(text))
            subject = _one_line(self._render(f"{template}/{locale}/subject.txt", ctx))
            text = self._render(f"{template}/{locale}/body.txt", ctx).strip() + "\n"
            html = inline_css(self._render(f"{template}/{locale}/body.html", ctx))
        except TemplateNotFound as exc:
            raise InputError(f"template {template!r}: {exc.name} not found under {self.root}") from None
        return RenderedMessage(template, locale, self.version(template, channel, locale), text, subject, html)

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        return self.env.get_template(name).render(ctx)


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


@lru_cache(maxsize=1024)
def _long_date(value: datetime, locale: str = "fr") -> str:
    # A campaign's messages all show the same deadline: format it once per locale, not per message.
    return format_date(value, format="long", locale=locale)
