"""Issue 16 §4, every console message in French: the services' own lines shown by the console — an
import file that cannot be read, the reason after "Paused automatically", the reason of a planned
launch that failed, a refused campaign action — in French with the French console language, French
typography included; every pattern's message has its French translation."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session

from orchestrator.campaigns.schedule import launch_due, schedule_launch
from orchestrator.campaigns.service import create_campaign
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.clock import FixedClock
from orchestrator.errors import InputError
from orchestrator.store.models import Campaign, OutboxMessage
from preference_centre.admin import messages, problems
from preference_centre.admin.i18n import catalog
from tests.admin.conftest import Console
from tests.support.factories import launch, person, plan

NBSP = "\u00a0"


def words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).replace(NBSP, "~").split()).replace("~", NBSP)


def french(admin: Console) -> None:
    admin.client.cookies.set("reconsent_admin_lang", "fr")


def test_every_pattern_has_its_french_translation() -> None:
    fr = catalog("fr")
    ids = [m for _, m in messages.PATTERNS + problems.PATTERNS]
    assert sorted(m for m in ids if m not in fr) == []
    for m in ids:  # French typography: a no-break space before : ; ? ! and « », never a plain one
        assert not re.search(r" [:;?!»]|« ", fr[m]), fr[m]


def test_a_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        import_contacts_from(tmp_path / "gone.csv")
    text = str(caught.value).replace(str(tmp_path / "gone.csv"), "CSV")  # as the import page shows it
    assert text == "CSV: cannot read: No such file or directory"
    assert messages.gettext_for("fr")(text) == (f"Impossible de lire le fichier (fichier introuvable){NBSP}: "
                                                "téléversez-le à nouveau.")
    assert messages.gettext_for("en")(text) == text  # English keeps the service's own words


def import_contacts_from(path: Path) -> None:
    from orchestrator.contacts.reader import detect_encoding

    detect_encoding(path)


def test_paused_automatically_says_why_in_french(admin: Console, write_csv: Callable[..., Path]) -> None:
    rt = admin.rt
    rt.config.dispatch.failure_pause_threshold = 2
    campaign_id = launch(rt, write_csv([person(1), person(2)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    with rt.engine.begin() as conn:
        conn.execute(update(OutboxMessage).values(template="nosuch"))
    asyncio.run(asyncio.wait_for(dispatch_once(rt), 10))
    french(admin)
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    reason = re.search(r'<div class="alert" role="alert" id="paused-reason"><p>(.*?)</p>', page, re.S)
    assert reason, page
    assert words(reason.group(1)) == (
        f"Mise en pause automatiquement. 2{NBSP}message(s) n’ont pas pu être construits depuis le lancement ou la "
        "dernière reprise (la limite, dispatch.failure_pause_threshold, est de 2). Le dernier" + NBSP + ": le "
        f"message ne peut pas être construit{NBSP}: modèle «{NBSP}nosuch{NBSP}»{NBSP}: fr/sms.txt manque "
        "(ajoutez-le dans l’éditeur de modèles).")
    assert 'lang="en"' not in reason.group(1)


def test_a_failed_planned_launch_says_why_in_french(admin: Console, clock: FixedClock) -> None:
    rt = admin.rt
    campaign_id = create_campaign(rt, plan())
    schedule_launch(rt, campaign_id, clock.now() + timedelta(minutes=1))
    with Session(rt.engine) as s:  # the plan broken since scheduling (a template that no longer exists)
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        campaign.plan = {**campaign.plan, "steps": [{"day": 0, "channel": "email", "template": "gone"}]}
        s.add(campaign)
        s.commit()
    clock.advance(timedelta(minutes=1))
    assert launch_due(rt).failed
    french(admin)
    page = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    reason = re.search(r'id="launch-failed"><span>(.*?)</span>', page, re.S)
    assert reason, page
    text = words(reason.group(1))
    assert text.startswith(f"Le lancement planifié a échoué{NBSP}: steps[0] (email): template 'gone' — Manquant{NBSP}:")
    assert text.endswith("Corrigez-le, puis planifiez à nouveau le lancement.")
    admin.client.cookies.set("reconsent_admin_lang", "en")  # English: the service's line, marked as English
    english = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert re.search(r'id="launch-failed"><span lang="en">the planned launch failed: ', english)


def test_a_refused_action_and_an_unknown_campaign_in_french(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(admin.rt, write_csv([person(1)]))
    french(admin)
    again = admin.post(f"/admin/campaigns/{campaign_id}/launch", {"confirm": "yes"})
    assert again.status_code == 409
    assert (f"La campagne {campaign_id} est à l’état «{NBSP}en cours{NBSP}»{NBSP}: seul un brouillon peut être "
            "lancé.") in words(again.text)
    missing = admin.post("/admin/campaigns/999/crm-results", {"format": "csv"})
    assert missing.status_code == 404 and "Il n’y a pas de campagne 999." in words(missing.text)
    late = admin.post(f"/admin/campaigns/{campaign_id}/delete", {"confirm": "yes"})
    assert "seul un brouillon peut être supprimé (ses messages et ses réponses sont des preuves)." in words(late.text)


def test_the_failures_table_and_a_step_that_cannot_be_rendered_in_french(
        admin: Console, write_csv: Callable[..., Path]) -> None:
    """The campaign page's other service lines: the reason of the messages that could not be built,
    and a step whose template broke since (English stays the service's line, marked English)."""
    rt = admin.rt
    campaign_id = launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "sms", "template": "reconsent"}])
    with rt.engine.begin() as conn:
        conn.execute(update(OutboxMessage).values(template="nosuch"))
        broken = plan(steps=[{"day": 0, "channel": "sms", "template": "nosuch"}]).to_mapping()
        conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(plan=broken))  # type: ignore[arg-type]
    asyncio.run(asyncio.wait_for(dispatch_once(rt), 10))
    english = admin.client.get(f"/admin/campaigns/{campaign_id}").text
    assert '<code lang="en">cannot build message: template &#39;nosuch&#39;: missing fr/sms.txt</code>' in english
    french(admin)
    page = html.unescape(admin.client.get(f"/admin/campaigns/{campaign_id}").text).replace(NBSP, " ")
    assert ("<code>le message ne peut pas être construit : modèle « nosuch » : fr/sms.txt manque (ajoutez-le dans "
            "l’éditeur de modèles).</code>") in page
    assert "Impossible à afficher : <code>template 'nosuch' — Manquant : fr/sms.txt (langues disponibles" in page


def test_the_editor_preview_says_what_cannot_be_rendered_in_french(admin: Console) -> None:
    french(admin)
    resp = admin.post("/admin/templates/reconsent/fr/preview", {"sms": "Bonjour {{ frist_name }} {{ short_url }}"})
    assert resp.status_code == 200
    page = html.unescape(resp.text)
    problem = re.search(r"\(sms\)</strong> <code([^>]*)>([^<]*)</code>", page)
    assert problem, page
    assert problem.group(1) == "" and "Variable inconnue" in problem.group(2), problem.group(0)


@pytest.mark.parametrize(("change", "said"), [
    ({"name": " "}, "Donnez un nom à la campagne."),
    ({"deadline_days": "0"}, f"Délai{NBSP}: un nombre entier de jours, de 1 à 730."),
    ({"kinds": None}, "Cochez les clients, les prospects ou les deux."),
    ({"customer_inactive_months": "x"}, f"Clients, mois sans activité{NBSP}: un nombre entier de 1 à "),
    ({"step0_template": "", "step1_template": ""}, f"Ajoutez au moins une étape{NBSP}: une ligne avec un modèle."),
    ({"step1_day": "40"}, f"L’étape du jour 40 n’arrive pas avant la fin du délai (30 jours){NBSP}: avancez-la"),
    ({"step0_day": "-1"}, "Le jour d’une étape est un nombre entier, 0 ou plus."),
    ({"step0_day": "12"}, "Rangez les étapes dans l’ordre de leur jour."),
])
def test_the_campaign_form_s_refusals_in_french(admin: Console, change: dict[str, str | None], said: str) -> None:
    """Issue 16 §4: what a marketer gets wrong in the campaign form is said in the console's language."""
    form = {"name": "Hiver", "deadline_days": "30", "default_locale": "fr", "kinds": "customer",
            "customer_inactive_months": "12", "prospect_inactive_months": "36",
            "step0_day": "0", "step0_channel": "email", "step0_template": "reconsent",
            "step1_day": "10", "step1_channel": "sms", "step1_template": "reconsent"}
    posted = {k: v for k, v in {**form, **change}.items() if v is not None}
    french(admin)
    refused = admin.post("/admin/campaigns", posted)
    assert refused.status_code == 400
    assert said in words(refused.text), words(refused.text)[:600]
    assert "form:" not in words(refused.text)
