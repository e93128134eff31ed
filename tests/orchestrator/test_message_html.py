"""Message templates as mailbox providers and phones see them [E1, R6, S7].

HTML: CSS inlined (webmails drop <style>), readable in light and dark mode (checked in real
Chromium), the answer link visible as text, sender identity and postal address in the footer.
SMS: every shipped template fits one GSM-7 segment with its short link and "STOP au <number>".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest

from orchestrator.campaigns.service import sample_context
from orchestrator.domain.model import Channel
from orchestrator.domain.segments import count_segments
from orchestrator.runtime import Runtime

TEMPLATES = [(t, loc) for t in ("reconsent", "reminder") for loc in ("fr", "en")]


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.unstyled: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        if tag in ("a", "p", "div", "body", "hr") and not dict(attrs).get("style"):
            self.unstyled.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style and data.strip():
            self.texts.append(data.strip())


@pytest.mark.parametrize(("template", "locale"), TEMPLATES)
def test_html_is_inlined_and_shows_link_sender_and_address(rt: Runtime, template: str, locale: str) -> None:
    ctx = sample_context(rt, locale)
    html = rt.renderer.render(template, Channel.EMAIL, locale, ctx).html or ""
    parsed = _Texts()
    parsed.feed(html)
    assert parsed.unstyled == []  # every element styled inline, not through <style> classes
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    assert styles and all(s.strip().startswith("@media (prefers-color-scheme: dark)") for s in styles)
    assert ctx["page_url"] in parsed.texts  # the link itself, readable and copyable as text
    footer = " ".join(parsed.texts[-4:])
    assert rt.config.sender.name in footer and rt.config.sender.postal_address in footer
    assert f'href="{ctx["unsubscribe_url"]}"' in html


def _contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    def lum(rgb: tuple[float, ...]) -> float:
        c = [v / 255 for v in rgb[:3]]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("RECONSENT_TEST_CHROMIUM") or "/usr/bin/chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        yield b
        b.close()


_MEASURE = """() => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const bgOf = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
      if (!c.startsWith('rgba(0, 0, 0, 0)')) return rgb(c); } return [255, 255, 255]; };
  return [...document.querySelectorAll('p, a')].filter(el => el.textContent.trim())
    .map(el => ({text: el.textContent.trim().slice(0, 30), fg: rgb(getComputedStyle(el).color), bg: bgOf(el)}));
}"""


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_is_readable_in_light_and_dark_mode(rt: Runtime, browser: object, scheme: str) -> None:
    page = browser.new_page(color_scheme=scheme)  # type: ignore[attr-defined]
    try:
        for template, locale in TEMPLATES:
            html = rt.renderer.render(template, Channel.EMAIL, locale, sample_context(rt, locale)).html
            page.set_content(html)
            measured = page.evaluate(_MEASURE)
            assert len(measured) >= 6
            body_bg = measured[0]["bg"]
            assert (sum(body_bg) < 150) == (scheme == "dark")  # the dark rules did apply
            for m in measured:
                ratio = _contrast(tuple(m["fg"]), tuple(m["bg"]))
                assert ratio >= 4.5, f"{template}/{locale} {scheme}: {m['text']!r} contrast {ratio:.2f}"
    finally:
        page.close()


@pytest.mark.parametrize("template", ["reconsent", "reminder"])
@pytest.mark.parametrize("locale", ["fr", "en"])
def test_sms_templates_fit_one_gsm7_segment_with_link_and_stop(make_rt: object, template: str, locale: str) -> None:
    # A production-like worst case: a long sender name and base URL, the longest short code.
    rt = make_rt(sender={"name": "Boutique Lumière Lyon", "stop_number": "36111"},  # type: ignore[operator]
                 public={"base_url": "https://preferences.boutique-lumiere.fr"})
    ctx = sample_context(rt, locale)
    ctx["short_url"] = "https://preferences.boutique-lumiere.fr/s/" + "Z" * 14
    text = rt.renderer.render(template, Channel.SMS, locale, ctx).text
    seg = count_segments(text)
    assert (seg.encoding, seg.segments) == ("GSM-7", 1), (text, seg)
    assert ctx["short_url"] in text
    stop = "STOP au 36111" if locale == "fr" else "STOP to 36111"
    assert text.endswith(stop)
    assert "Boutique Lumière Lyon" in text


def test_preview_names_the_characters_that_forced_ucs2(make_rt: object) -> None:
    from orchestrator.campaigns.service import create_campaign, preview_campaign
    from tests.support.factories import plan

    rt = make_rt(sender={"name": "Maison Garçon"}, sms={"segment_budget": 3})  # type: ignore[operator]
    campaign_id = create_campaign(rt, plan(steps=[{"day": 0, "channel": "sms", "template": "reconsent"}]))
    fr = next(p for p in preview_campaign(rt, campaign_id) if p.locale == "fr")
    assert (fr.encoding, fr.ucs2_chars) == ("UCS-2", ("ç",))
    assert fr.segments == 2  # the same text in GSM-7 would have fitted in one
