"""The pages rendered once per shape with per-person slots filled in == Jinja rendering every value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import DictLoader, Environment, select_autoescape

from orchestrator.config import SenderConfig
from orchestrator.consent.service import Answer
from preference_centre import templating

#: values that test escaping and formatting: markup, quotes, ampersands, percent signs, non-ASCII
word = st.text(alphabet=st.sampled_from(list("ab<>&\"'%()sé• \n{}")), min_size=1, max_size=12)
text = st.one_of(st.just(""), st.none(), word)
masked = st.fixed_dictionaries({"email": st.one_of(st.just(""), word), "sms": st.one_of(st.just(""), word)})
langs = st.sampled_from(["fr", "en"])
qs = st.sampled_from(["", "?lang=en", "?lang=fr"])
channel_sets = st.sampled_from([["email"], ["sms"], ["email", "sms"]])
senders = st.sampled_from([SenderConfig(), SenderConfig(name="Boutique <Lumière> & Cie", postal_address="1 rue « % »")])


@settings(max_examples=300, deadline=None)
@given(lang=langs, q=qs, channels=channel_sets, current=st.fixed_dictionaries({"email": st.booleans(), "sms": st.booleans()}),
       state=st.sampled_from([None, "pending", "confirmed", "declined", "expired"]), sender=senders,
       action=word, first_name=text, rights=st.one_of(st.none(), word), masked=masked)
def test_preference_page_equals_the_jinja_render(lang: str, q: str, channels: list[str], current: dict[str, bool],
                                                  state: str | None, sender: SenderConfig, action: str,
                                                  first_name: str | None, rights: str | None,
                                                  masked: dict[str, str]) -> None:
    context = {"channels": channels, "current": current, "enrolment_state": state, "q": q}
    personal = {"action": action, "masked": masked, "first_name": first_name, "rights_url": rights}
    for _ in range(2):  # the first call renders the shape, the second fills it
        assert templating.render("preference.html", lang, sender, context, personal) == \
            templating.jinja_render("preference.html", lang, sender, context, personal)


@settings(max_examples=200, deadline=None)
@given(lang=langs, q=qs, channels=channel_sets, ticks=st.fixed_dictionaries({"email": st.booleans(), "sms": st.booleans()}),
       partners=st.booleans(), sender=senders, action=word, masked=masked, day=word,
       rights=word)
def test_done_page_equals_the_jinja_render(lang: str, q: str, channels: list[str], ticks: dict[str, bool],
                                           partners: bool, sender: SenderConfig, action: str, masked: dict[str, str],
                                           day: str, rights: str) -> None:
    answer = Answer(channels={c: ticks[c] for c in channels}, partners=partners)
    context = {"answer": answer, "channels": channels, "state": "confirmed", "q": q}
    personal = {"action": action, "masked": masked, "rights_url": rights, "recorded_on": day}
    for _ in range(2):
        assert templating.render("done.html", lang, sender, context, personal) == \
            templating.jinja_render("done.html", lang, sender, context, personal)


def test_a_template_that_transforms_a_slot_is_rendered_by_jinja_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    env = Environment(loader=DictLoader({
        "upper.html": "<p>{{ name|upper }}</p>", "cut.html": "<p>{{ name[:3] }}</p>",
    }), autoescape=select_autoescape(default=True))
    monkeypatch.setattr(templating, "_env", env)
    monkeypatch.setattr(templating, "_shapes", {})
    sender: dict[str, Any] = {}
    assert templating.render("upper.html", "fr", sender, {}, {"name": "zoé"}) == "<p>ZOÉ</p>"
    assert templating.render("upper.html", "fr", sender, {}, {"name": "<b>"}) == "<p>&lt;B&gt;</p>"
    assert templating.render("cut.html", "fr", sender, {}, {"name": "abcdef"}) == "<p>abc</p>"
    assert templating.render("cut.html", "fr", sender, {}, {"name": "xyzuvw"}) == "<p>xyz</p>"
    assert templating._shapes == {}  # both detected in the syntax tree, never compiled


def test_a_template_comparing_a_slot_or_transforming_it_out_of_sight_is_rendered_by_jinja(
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = Environment(loader=DictLoader({
        "cmp.html": "<p>{% if name == 'Zoé' %}hi Zoé{% else %}{{ name }}{% endif %}</p>",
        "set.html": "{% set s = _('%(n)s!', n=name) %}<p>{{ s|upper }}</p>",
        "ok.html": "<p>{% if name %}{{ _('Hi %(n)s', n=name) }}{% endif %} {{ masked.email }} {{ masked['sms'] }}</p>",
    }), autoescape=select_autoescape(default=True))
    monkeypatch.setattr(templating, "_env", env)
    monkeypatch.setattr(templating, "_shapes", {})
    sender: dict[str, Any] = {}
    for first in ("Léa", "Zoé", "Léa"):
        assert templating.render("cmp.html", "fr", sender, {}, {"name": first}) == \
            templating.jinja_render("cmp.html", "fr", sender, {}, {"name": first})
    assert templating._shapes == {}  # the comparison is seen in the syntax tree
    for first in ("Léa", "Zoé"):  # passing it to _() is allowed, the filter is caught by the second render
        assert templating.render("set.html", "fr", sender, {}, {"name": first}) == f"<p>{first.upper()}!</p>"
    assert list(templating._shapes.values()) == [None]
    for first, email in (("Léa", "l•••@x.fr"), ("<Zoé>", "z&z@x.fr")):
        personal = {"name": first, "masked": {"email": email, "sms": "+33•••12"}}
        assert templating.render("ok.html", "fr", sender, {}, personal) == \
            templating.jinja_render("ok.html", "fr", sender, {}, personal)
    assert len(templating._shapes) == 2 and list(templating._shapes.values())[1] is not None


def test_a_context_value_it_cannot_compare_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "_shapes", {})
    context: dict[str, Any] = {"channels": {"email"}, "current": {}, "enrolment_state": None, "q": ""}  # a set: no key
    personal = {"action": "/p/x", "masked": {"email": "a", "sms": ""}, "first_name": "Zoé", "rights_url": None}
    html = templating.render("preference.html", "fr", SenderConfig(), context, personal)
    assert html == templating.jinja_render("preference.html", "fr", SenderConfig(), context, personal)
    assert templating._shapes == {}


def test_the_shipped_pages_with_personal_values_have_a_compiled_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "_shapes", {})
    sender = SenderConfig()
    preference = ({"channels": ["email", "sms"], "current": {"email": True, "sms": False}, "enrolment_state": None, "q": ""},
                  {"action": "/p/x", "masked": {"email": "z•••@x.fr", "sms": "+33•••12"}, "first_name": "Zoé",
                   "rights_url": "/r/x"})
    done = ({"answer": Answer(channels={"email": True}, partners=False), "channels": ["email"], "state": "confirmed",
             "q": ""},
            {"action": "/p/x", "masked": {"email": "z•••@x.fr", "sms": ""}, "rights_url": "/r/x", "recorded_on": "1 mai"})
    for name, (context, personal) in (("preference.html", preference), ("done.html", done)):
        assert templating.render(name, "fr", sender, context, personal) == \
            templating.jinja_render(name, "fr", sender, context, personal)
    assert len(templating._shapes) == 2 and all(f is not None for f in templating._shapes.values())
