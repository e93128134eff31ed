"""The preference page's topics and named partners (issue 18 §1–§2): what it offers, what a form chose,
and the words it showed (stored as proof with the answer).

Form fields (the page works without JavaScript): ``topic`` (one value per ticked topic id), ``partner``
(one value per ticked partner id) and ``partners=yes`` — "all listed partners", which ticks each
partner on the server (an old page's single ``partners=yes`` box means the same). With no partner
configured nothing is recorded for partners: consent to unnamed partners is not valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from orchestrator.choices_settings import Partner, Topic, partners_version
from orchestrator.config import Config
from orchestrator.consent.service import Answer
from orchestrator.runtime import Runtime
from preference_centre.i18n import gettext_for

WORDING_NAME = "preference_page"


@dataclass(frozen=True)
class Offered:
    """What the page shows for one topic or partner, in the page's language."""

    id: str
    label: str
    checked: bool
    purpose: str = ""
    privacy_url: str = ""


def offered(config: Config, lang: str, granted: frozenset[str]) -> dict[str, Any]:
    """The template's ``topics``, ``partners`` and ``partners_version``: ticked only what the person
    grants now [R1]."""
    return {
        "topics": [Offered(t.id, t.label(lang), t.purpose in granted) for t in config.topics],
        "partners": [Offered(p.id, p.name, p.purpose in granted, p.purpose_text(lang), p.privacy_url)
                     for p in config.partners],
        "partners_version": partners_version(config.partners),
    }


def chosen(config: Config, form: FormData | None) -> dict[str, bool]:
    """Purpose → ticked for every topic and partner offered (``form`` None: a refusal of everything)."""
    topics = set(form.getlist("topic")) if form is not None else set()
    partners = set(form.getlist("partner")) if form is not None else set()
    every = form is not None and form.get("partners") == "yes"
    return {**{t.purpose: t.id in topics for t in config.topics},
            **{p.purpose: every or p.id in partners for p in config.partners}}


def recorded(config: Config, lang: str, choices: dict[str, bool]) -> list[tuple[str, bool]]:
    """(label, ticked) of each topic and partner the answer spoke of, for the done page (none after the
    B2B notice, which shows none)."""
    items: list[Topic | Partner] = [*config.topics, *config.partners]
    return [(i.label(lang) if isinstance(i, Topic) else i.name, bool(choices[i.purpose])) for i in items
            if i.purpose in choices]


def wording_name(config: Config) -> str:
    """The stored wording's name: the partner list version is part of it when partners are listed,
    so each partner event's proof names the list it was given on.

    >>> wording_name(Config())
    'preference_page'
    """
    version = partners_version(config.partners)
    return f"{WORDING_NAME};partners={version}" if version else WORDING_NAME


def wording(config: Config, lang: str) -> str:
    """The lines the page adds for topics and partners, exactly as shown (with the list's version)."""
    _ = gettext_for(lang)
    lines = []
    if config.topics:
        lines.append(_("The topics that interest you"))
        lines += [f"- {t.label(lang)}" for t in config.topics]
    if config.partners:
        lines.append(_("Sharing your details with our partners (optional)"))
        lines.append(_("Nothing is ticked for you: a partner receives your details only if you tick it."))
        lines += [f"- {p.name}: {p.purpose_text(lang)} ({p.privacy_url})" for p in config.partners]
        lines.append(_("All the partners listed"))
        lines.append(_("Partner list, version %(version)s", version=partners_version(config.partners)))
    return "\n".join(lines)


def answer_of(form: FormData, channels: list[str], link_channel: str | None, rt: Runtime) -> Answer | None:
    """The answer the consent page's form gives (None: no valid button). Partners are the named ones only
    (the B2B notice's answer: :func:`preference_centre.public.notice.answer_of`)."""
    choice = str(form.get("action", ""))
    if choice not in ("confirm", "decline"):
        return None
    if choice == "decline":  # "unsubscribe me from everything": topics and partners too
        return Answer(channels={c: False for c in channels}, choices=chosen(rt.config, None))
    ticked = {c: form.get(c) == "yes" for c in channels}
    if not any(ticked.values()):
        # "Yes" with nothing ticked: the explicit act applies to the channel the link came by,
        # as the page says next to the boxes.
        ticked[link_channel if link_channel in channels else channels[0]] = True
    return Answer(channels=ticked, choices=chosen(rt.config, form))
