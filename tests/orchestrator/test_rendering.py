"""Compiled template forms: the fast render is the full Jinja render, for any person."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from orchestrator.domain.model import Channel
from orchestrator.rendering.messages import TEMPLATES_DIR, MessageRenderer

SHIPPED = [(t, c, loc) for t in ("reconsent", "reminder", "newlink") for c in Channel for loc in ("fr", "en")]
SENDER = {"name": "Boutique Lumière", "postal_address": "12 rue des Lilas, 69003 Lyon", "email": "b@x.example",
          "stop_number": "36180", "privacy_url": "https://x.example/privacy"}
DEADLINE = datetime(2026, 12, 25, 9, tzinfo=timezone.utc)
RENDERER = MessageRenderer(TEMPLATES_DIR)  # one renderer: its compiled forms are reused across examples

names = st.one_of(
    st.none(), st.just(""), st.text(max_size=30),
    st.text(alphabet="<>&\"' éà\u00a0\t\nabcZ", max_size=12),
    st.sampled_from(["Camille", "Zoé", "Jean-Pierre", "O'Brien", "<b>Bob</b>", "A & B", "李雷", "  x  "]),
)
urls = st.one_of(st.from_regex(r"https://prefs\.example\.com/[pus]/[A-Za-z0-9_.-]{1,80}", fullmatch=True),
                 st.text(min_size=1, max_size=40))


def context(first_name: str | None, page: str, unsubscribe: str, short: str) -> dict[str, object]:
    return {"first_name": first_name, "sender": SENDER, "page_url": page, "unsubscribe_url": unsubscribe,
            "short_url": short, "deadline": DEADLINE}


def _warm(renderer: MessageRenderer) -> None:
    """Compile every shipped form with ordinary values, so the examples below take the fast path."""
    for template, channel, locale in SHIPPED:
        for name in ("Camille", None):
            renderer.render(template, channel, locale, context(name, "https://p.example/p/a", "https://p.example/u/a",
                                                               "https://p.example/s/a"))
    assert len(renderer._forms) == 2 * len(SHIPPED) and all(f is not None for f in renderer._forms.values())


_warm(RENDERER)


@settings(max_examples=400, deadline=None)
@given(shipped=st.sampled_from(SHIPPED), first_name=names, page=urls, unsubscribe=urls, short=urls)
def test_fast_render_is_the_full_render(shipped: tuple[str, Channel, str], first_name: str | None, page: str,
                                        unsubscribe: str, short: str) -> None:
    template, channel, locale = shipped
    ctx = context(first_name, page, unsubscribe, short)
    assert RENDERER.render(template, channel, locale, ctx) == RENDERER.render_full(template, channel, locale, ctx)
    assert all(f is not None for f in RENDERER._forms.values())  # no form of a shipped template was dropped


@pytest.mark.parametrize(("template", "channel", "locale"), SHIPPED)
def test_shipped_templates_have_a_compiled_form(template: str, channel: Channel, locale: str) -> None:
    renderer = MessageRenderer(TEMPLATES_DIR)
    for i in range(3):
        ctx = context("Camille" if i else None, f"https://p.example/p/t{i}", f"https://p.example/u/t{i}",
                      f"https://p.example/s/c{i}")
        assert renderer.render(template, channel, locale, ctx) == renderer.render_full(template, channel, locale, ctx)
    forms = list(renderer._forms.values())
    assert len(forms) == 2 and all(f is not None for f in forms)  # with and without a first name


def _write(root: Path, body: str) -> MessageRenderer:
    folder = root / "messages" / "t" / "fr"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt").write_text("Objet {{ first_name }}")
    (folder / "body.txt").write_text(body)
    (folder / "body.html").write_text("<html><head><style>p{color:red}</style></head><body><p>" + body
                                      + "</p></body></html>")
    (folder / "sms.txt").write_text(body)
    return MessageRenderer(root)


@pytest.mark.parametrize("body", [
    "{{ first_name|upper }} {{ page_url }}",
    "{% if first_name == 'Zoé' %}Z{% else %}{{ first_name }}{% endif %} {{ page_url }}",
    "{{ (first_name or 'x')[0] }}{{ page_url|length }}",
    "{% set x = first_name %}{{ x }}{{ page_url }}",
    "{{ first_name ~ '!' }} {{ page_url }}",
    "{% for c in first_name or '' %}{{ c }}.{% endfor %}{{ page_url }}",
    "<a title=\"{{ first_name }}\" href=\"{{ page_url }}\">{{ first_name }}</a>",
])
def test_templates_that_transform_a_value_still_render_like_jinja(tmp_path: Path, body: str) -> None:
    renderer = _write(tmp_path, body)
    for name in ("Alex", "Zoé", "Bob Marley", None, "Zoé", "Alex"):  # a plain value first: forms get compiled
        for channel in Channel:
            ctx = context(name, f"https://p.example/p/{name}", "https://p.example/u/x", "https://p.example/s/y")
            assert renderer.render("t", channel, "fr", ctx) == renderer.render_full("t", channel, "fr", ctx)


def test_the_deadline_shows_its_own_day_whatever_was_rendered_before() -> None:
    from datetime import timedelta

    renderer = MessageRenderer(TEMPLATES_DIR)
    utc = datetime(2026, 12, 25, 23, 30, tzinfo=timezone.utc)
    paris = utc.astimezone(timezone(timedelta(hours=1)))  # the same instant: 26 December in Paris
    for deadline, day in ((utc, "25 décembre"), (paris, "26 décembre")):
        ctx = dict(context("Camille", "https://p.example/p/a", "https://p.example/u/a", "https://p.example/s/a"),
                   deadline=deadline)
        assert day in renderer.render("reconsent", Channel.EMAIL, "fr", ctx).text


@pytest.mark.parametrize("html", [
    '<p style="color: {{ first_name }}">x {{ page_url }}</p>',
    "<script>var n = '{{ first_name }}';</script><p>{{ page_url }}</p>",
])
def test_a_value_inside_css_or_a_script_is_never_substituted(tmp_path: Path, html: str) -> None:
    renderer = _write(tmp_path, "{{ first_name }} {{ page_url }}")
    (tmp_path / "messages" / "t" / "fr" / "body.html").write_text(
        "<html><head><style>p{margin:0}</style></head><body>" + html + "</body></html>")
    for name in ("red", "Zoé  Bob", "blue"):
        ctx = context(name, "https://p.example/p/a", "https://p.example/u/a", "https://p.example/s/a")
        assert renderer.render("t", Channel.EMAIL, "fr", ctx) == renderer.render_full("t", Channel.EMAIL, "fr", ctx)
    assert list(renderer._forms.values()) == [None]  # full render every time
