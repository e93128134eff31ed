"""The shipped email layout in the mail clients French recipients use (issue 16 §1; caniemail data,
checked here as structural rules on every shipped email as sent, CSS inlined):

- the button is a table cell with the padding and the background (``bgcolor`` too): Outlook for
  Windows ignores a link's padding and background;
- the font is set on the wrapper and on every text element, not only on <body> (Yahoo, Outlook for
  Mac, SFR and La Poste webmails drop <body>'s styles);
- Outlook for Windows gets a fixed-width table (it ignores max-width);
- links printed as text wrap (word-break / overflow-wrap), so a 100-character link never widens the
  message on a phone.
"""

from __future__ import annotations

from html.parser import HTMLParser
from datetime import UTC, datetime

import pytest

from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.domain.model import Channel
from orchestrator.rendering.checks import sample_contexts
from orchestrator.rendering.messages import MessageRenderer

TEMPLATES = [(name, locale) for name in ("reconsent", "reminder", "newlink", "notice") for locale in ("fr", "en")]
TEXT_TAGS = {"p", "li", "td", "h2"}


class Tree(HTMLParser):
    """Elements with their attributes and their ancestors."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.elements: list[tuple[str, dict[str, str], list[tuple[str, dict[str, str]]]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = (tag, {k: v or "" for k, v in attrs})
        self.elements.append((tag, element[1], list(self.stack)))
        if tag not in {"meta", "br", "img", "hr", "link"}:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def style(attrs: dict[str, str]) -> dict[str, str]:
    out = {}
    for decl in attrs.get("style", "").split(";"):
        if ":" in decl:
            key, value = decl.split(":", 1)
            out[key.strip().lower()] = value.strip()
    return out


def rendered(name: str, locale: str) -> str:
    config = load_config(DEFAULT_CONFIG, env={"RECONSENT_PUBLIC__BASE_URL": "https://prefs.example.com"})
    ctx = sample_contexts(config, locale, datetime(2026, 11, 30, tzinfo=UTC))[0]
    html = MessageRenderer().render_full(name, Channel.EMAIL, locale, ctx).html
    assert html
    return html


@pytest.mark.parametrize(("name", "locale"), TEMPLATES)
def test_the_button_keeps_its_padding_in_outlook(name: str, locale: str) -> None:
    tree = Tree()
    tree.feed(rendered(name, locale))
    buttons = [(attrs, parents) for tag, attrs, parents in tree.elements if tag == "a" and "btn" in attrs.get("class", "")]
    assert len(buttons) == 1
    attrs, parents = buttons[0]
    cell_tag, cell = parents[-1]
    assert cell_tag == "td" and "btn-cell" in cell["class"]
    assert style(cell)["padding"] == "12px 20px" and cell["bgcolor"] == "#0b5cad"
    assert style(cell)["background-color"] == "#0b5cad"
    assert "padding" not in style(attrs)  # the link's padding would be lost in Outlook for Windows
    table = [p for p in parents if p[0] == "table"][-1][1]
    assert table["role"] == "presentation" and table["cellpadding"] == "0"


@pytest.mark.parametrize(("name", "locale"), TEMPLATES)
def test_fonts_sit_on_the_wrapper_and_every_text_element(name: str, locale: str) -> None:
    tree = Tree()
    tree.feed(rendered(name, locale))
    wrappers = [attrs for tag, attrs, _ in tree.elements if tag == "div" and "wrap" in attrs.get("class", "")]
    assert wrappers and "Arial" in style(wrappers[0])["font-family"]
    for tag, attrs, _ in tree.elements:
        if tag in TEXT_TAGS:
            assert "font-family" in style(attrs), (tag, attrs)
    assert any("[if mso]" in c and 'width="560"' in c for c in tree.comments)  # Outlook's fixed width


@pytest.mark.parametrize(("name", "locale"), TEMPLATES)
def test_links_written_out_wrap(name: str, locale: str) -> None:
    tree = Tree()
    html = rendered(name, locale)
    tree.feed(html)
    url_links = [(attrs, parents) for tag, attrs, parents in tree.elements
                 if tag == "a" and attrs.get("href", "").startswith("https://prefs.example.com/p/")
                 and "btn" not in attrs.get("class", "")]
    assert url_links
    for attrs, parents in url_links:
        wraps = [style(a) for _, a in [*parents, ("a", attrs)]]
        assert any(s.get("word-break") == "break-all" or s.get("overflow-wrap") == "anywhere" for s in wraps)
