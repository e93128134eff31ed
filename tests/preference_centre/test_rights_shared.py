"""Rights act on one person (issue 14 §4): a rights link names one contact. Its download holds that
contact only; its erasure erases that contact only, and an address another contact also uses is
suppressed only when the person asks (the page says it stops messages to everyone at it). The
operator's ``dsr`` commands keep working by address, on every contact with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.cli.main import main
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, SuppressionEntry
from preference_centre.app import create_app
from tests.support.factories import launch, person

SHARED_EMAIL = "famille@example.org"
SHARED_PHONE = "+33612349999"


def _people(rt: Runtime, write_csv: Callable[..., Path]) -> tuple[int, TestClient]:
    """1 and 2 share an email (own phones); 3 has only a phone, which 4 also has (4 has its own email)."""
    rows = [person(1, email=SHARED_EMAIL), person(2, email=SHARED_EMAIL),
            person(3, email="", phone=SHARED_PHONE), person(4, phone=SHARED_PHONE)]
    return launch(rt, write_csv(rows)), TestClient(create_app(rt))


def _rights(rt: Runtime, contact_id: int, campaign_id: int) -> str:
    return "/r/" + rt.links.dumps("rights", LinkClaims(contact_id, campaign_id, "email"))


def _suppressed(rt: Runtime) -> dict[tuple[str, str], str]:
    with Session(rt.engine) as s:
        return {(e.key, e.channel): e.reason for e in s.exec(select(SuppressionEntry))}


def _contact(rt: Runtime, contact_id: int) -> Contact:
    with Session(rt.engine) as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None
        return contact


def test_download_my_data_holds_only_the_link_s_contact(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id, client = _people(rt, write_csv)
    resp = client.post(_rights(rt, 1, campaign_id) + "/export")
    assert resp.status_code == 200
    data = json.loads(resp.text)
    assert [p["profile"]["external_id"] for p in data["people"]] == ["C-1"]
    assert "C-2" not in resp.text and "+33612340002" not in resp.text


def test_erasing_a_contact_that_shares_its_address_erases_it_alone_and_asks_about_the_address(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id, client = _people(rt, write_csv)
    link = _rights(rt, 3, campaign_id)
    confirm = client.get(link + "/erase")
    assert "Une autre personne de notre fichier utilise aussi +336••••••99" in confirm.text
    assert 'name="stop_sms" value="yes">' in confirm.text  # asked, not ticked
    done = client.post(link + "/erase", data={"confirm": "yes"})
    assert done.status_code == 200 and "nous n’avons donc rien bloqué" in done.text
    assert _contact(rt, 3).erased_at is not None
    other = _contact(rt, 4)
    assert other.erased_at is None and other.phone == SHARED_PHONE
    assert (rt.key_for(SHARED_PHONE), "sms") not in _suppressed(rt)
    with Session(rt.engine) as s:
        assert not list(s.exec(select(ConsentEvent).where(ConsentEvent.contact_id == 4)))

    # The other one, erasing in turn and asking to stop the shared email: only their record goes, and
    # the address is suppressed as an unsubscribe, not as an erasure of the person still using it.
    link1 = _rights(rt, 1, campaign_id)
    done = client.post(link1 + "/erase", data={"confirm": "yes", "stop_email": "yes"})
    assert "nous n’enverrons plus aucun message à cette adresse, à personne" in done.text
    assert _contact(rt, 1).erased_at is not None and _contact(rt, 2).erased_at is None
    suppressed = _suppressed(rt)
    assert suppressed[(rt.key_for(SHARED_EMAIL), "email")] == "unsubscribed"
    assert suppressed[(rt.key_for("+33612340001"), "sms")] == "erased"  # 1's own phone
    assert (rt.key_for("+33612340002"), "sms") not in suppressed


def test_dsr_keeps_working_by_address_and_names_each_contact_erased(
        rt: Runtime, write_csv: Callable[..., Path], database_url: str) -> None:
    _people(rt, write_csv)
    env = {"RECONSENT_DATABASE__URL": database_url, "RECONSENT_NOW": "2026-11-25T09:00:00Z"}
    export = CliRunner().invoke(main, ["dsr", "export", "--email", SHARED_EMAIL], env=env)
    assert export.exit_code == 0
    assert [p["profile"]["external_id"] for p in json.loads(export.output)["people"]] == ["C-1", "C-2"]
    erase = CliRunner().invoke(main, ["dsr", "erase", "--phone", SHARED_PHONE], env=env)
    assert erase.exit_code == 0
    assert erase.output.splitlines() == [
        "2 contact(s) erased; suppression entries kept so a re-import is refused", "  erased: C-3", "  erased: C-4"]
    assert _contact(rt, 3).erased_at is not None and _contact(rt, 4).erased_at is not None


def test_download_my_data_leaves_out_what_the_staff_wrote_about_a_shared_address(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    """The register is kept per address: a request another person at a shared address made shows in
    both people's downloads. Its dates, kind and state concern the address; the operator's name and
    free-text note do not go out through a link (they may name the other person)."""
    from orchestrator.proof import requests as dsr
    from orchestrator.proof.rights import export_person, subject_of

    campaign_id, client = _people(rt, write_csv)
    dsr.register(rt, "access", subject_of(rt, email=SHARED_EMAIL), note="asked by Mme Martin (contact C-2)")
    export_person(rt, email=SHARED_EMAIL, handled_by="dpo@company.example")
    data = json.loads(client.post(_rights(rt, 1, campaign_id) + "/export").text)
    assert [(r["kind"], r["state"]) for r in data["requests"]] == [("access", "done")]
    assert "Martin" not in json.dumps(data) and "dpo@company.example" not in json.dumps(data)
    assert all("note" not in r and "handled_by" not in r for r in data["requests"])
