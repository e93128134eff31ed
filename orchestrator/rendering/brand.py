"""The brand of the messages and of the preference centre, edited in the console (issue 16 §1):
sender name, logo (uploaded, or a URL), primary colour, privacy URL, and per locale the preference
page's title, introduction and button text.

Stored in ``brand_setting`` (one row per setting and locale). What is not set keeps its default: the
``[sender]`` settings of the config, the shipped colour, the shipped French and English texts. The
message layout (``templates/messages/_layout.html``: ``brand.colour``, ``brand.logo_url``,
``sender.name``, ``sender.privacy_url``) and the public pages read :func:`read_brand`; a process
keeps what it read for :data:`TTL` seconds, so a dispatcher sees a change within that time.

The primary colour is checked for contrast (WCAG 2.1 AA, 4.5:1) against white: it is the
background of white button text and the colour of links on white.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from orchestrator.rendering.messages import DEFAULT_BRAND
from orchestrator.store.db import table_of
from orchestrator.store.models import BrandSetting

if TYPE_CHECKING:
    from orchestrator.runtime import Runtime

DEFAULT_COLOUR = DEFAULT_BRAND["colour"]
GLOBAL_KEYS = ("sender_name", "logo_url", "colour", "privacy_url")
LOCALE_KEYS = ("page_title", "page_intro", "button")
LOGO_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8"}
MAX_LOGO_BYTES = 200_000
MIN_CONTRAST = 4.5
TTL = 5.0
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_cache: dict[int, tuple[float, Brand]] = {}


@dataclass(frozen=True)
class Brand:
    """What the brand is now (defaults filled in). ``logo`` is an uploaded image (type, bytes)."""

    sender_name: str
    privacy_url: str
    colour: str = DEFAULT_COLOUR
    logo_url: str | None = None
    logo: tuple[str, bytes] | None = None
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # locale → key → text

    def text(self, locale: str, key: str) -> str | None:
        """A page text set for ``locale``, or None (the shipped text applies)."""
        return self.texts.get(locale, {}).get(key) or None

    @property
    def logo_hash(self) -> str | None:
        return hashlib.sha256(self.logo[1]).hexdigest()[:16] if self.logo else None

    def logo_src(self, base_url: str) -> str | None:
        """The logo's address for a message: the uploaded one as served by the preference centre
        (``/brand/logo/<hash>``), else the URL given, else None."""
        if self.logo_hash:
            return f"{base_url.rstrip('/')}/brand/logo/{self.logo_hash}"
        return self.logo_url


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``.

    >>> round(relative_luminance("#ffffff"), 3), round(relative_luminance("#000000"), 3)
    (1.0, 0.0)
    """
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours.

    >>> round(contrast("#0b5cad", "#ffffff"), 2), round(contrast("#ffcc00", "#ffffff"), 2)
    (6.67, 1.51)
    """
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def brand_problems(values: Mapping[str, str], logo: tuple[str, bytes] | None) -> dict[str, str]:
    """{field: problem in English} of a brand form (none: it can be saved)."""
    problems = {}
    colour = values.get("colour", "").strip()
    if colour and not _HEX.fullmatch(colour):
        problems["colour"] = "a colour is written #rrggbb (for example #0b5cad)"
    elif colour and contrast(colour, "#ffffff") < MIN_CONTRAST:
        problems["colour"] = (f"contrast with white is {contrast(colour, '#ffffff'):.2f}:1, below the "
                              f"{MIN_CONTRAST}:1 of WCAG AA: choose a darker colour")
    for key in ("logo_url", "privacy_url"):
        url = values.get(key, "").strip()
        if url and (urlsplit(url).scheme != "https" or not urlsplit(url).netloc
                    or (key == "logo_url" and not _HOST.fullmatch(_hostname(url)))):
            problems[key] = "an address starting with https://"
    if logo is not None:
        kind, data = logo
        if kind not in LOGO_TYPES or not data.startswith(LOGO_TYPES[kind]):
            problems["logo"] = "a logo is a PNG, JPEG or GIF image"
        elif len(data) > MAX_LOGO_BYTES:
            problems["logo"] = f"a logo is at most {MAX_LOGO_BYTES // 1000} kB"
    if len(values.get("sender_name", "")) > 120:
        problems["sender_name"] = "at most 120 characters"
    return problems


def _hostname(url: str) -> str:
    """The host of an address ("" when it has none or cannot be read): a logo's host is named in the
    public pages' CSP, so it must be a plain host name or address (no wildcard)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def read_brand(rt: Runtime, *, fresh: bool = False) -> Brand:
    """The brand now (kept :data:`TTL` seconds per engine unless ``fresh``)."""
    key = id(rt.engine)
    now = time.monotonic()
    cached = _cache.get(key)
    if cached is not None and cached[0] > now and not fresh:
        return cached[1]
    try:
        with rt.engine.connect() as conn:
            rows = conn.execute(select(col(BrandSetting.key), col(BrandSetting.locale),
                                       col(BrandSetting.value))).all()
    except SQLAlchemyError:
        # the database is down: an error page still renders, with the brand last read (or the defaults)
        return cached[1] if cached is not None else _brand(rt, {})
    brand = _brand(rt, {(k, loc): v for k, loc, v in rows})
    _cache[key] = (now + TTL, brand)
    return brand


def _brand(rt: Runtime, rows: Mapping[tuple[str, str], str]) -> Brand:
    sender = rt.config.sender
    texts: dict[str, dict[str, str]] = {}
    for (key, locale), value in rows.items():
        if locale and key in LOCALE_KEYS:
            texts.setdefault(locale, {})[key] = value
    logo = None
    if ("logo_data", "") in rows and ("logo_type", "") in rows:
        logo = (rows[("logo_type", "")], base64.b64decode(rows[("logo_data", "")]))
    return Brand(sender_name=rows.get(("sender_name", "")) or sender.name,
                 privacy_url=rows.get(("privacy_url", "")) or sender.privacy_url,
                 colour=rows.get(("colour", "")) or DEFAULT_COLOUR, logo_url=rows.get(("logo_url", "")) or None,
                 logo=logo, texts=texts)


def save_brand(rt: Runtime, values: Mapping[str, str], texts: Mapping[str, Mapping[str, str]], *,
               logo: tuple[str, bytes] | None = None, remove_logo: bool = False) -> Brand:
    """Store the form: an empty value removes the setting (its default applies again). Raises
    ValueError with the problems when :func:`brand_problems` finds any."""
    problems = brand_problems(values, logo)
    if problems:
        raise ValueError(problems)
    now = rt.clock.now()
    rows: dict[tuple[str, str], str] = {}
    for key in GLOBAL_KEYS:
        value = values.get(key, "").strip()
        if value:
            rows[(key, "")] = value.lower() if key == "colour" else value
    for locale, by_key in texts.items():
        for key in LOCALE_KEYS:
            value = by_key.get(key, "").strip()
            if value:
                rows[(key, locale)] = value
    with rt.engine.begin() as conn:
        kept = {} if remove_logo else {(k, loc): v for k, loc, v in conn.execute(
            select(col(BrandSetting.key), col(BrandSetting.locale), col(BrandSetting.value))
            .where(col(BrandSetting.key).in_(["logo_data", "logo_type"])))}
        if logo is not None:
            kept = {("logo_type", ""): logo[0], ("logo_data", ""): base64.b64encode(logo[1]).decode("ascii")}
        rows.update(kept)
        conn.execute(delete(BrandSetting))
        if rows:
            conn.execute(table_of(BrandSetting).insert(), [
                {"key": k, "locale": loc, "value": v, "updated_at": now} for (k, loc), v in rows.items()])
    _cache.pop(id(rt.engine), None)
    return read_brand(rt, fresh=True)
