"""The console shows the B2B notice's outcome (issue 18 §3): after the sweep, the campaign's funnel
and its results page count the professionals kept under the opt-out regime, in French and English."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from orchestrator.campaigns.sweep import sweep
from orchestrator.domain.clock import FixedClock
from tests.admin.conftest import Console
from tests.support.factories import launch, person


def test_the_console_counts_the_kept_professionals(console_for: Callable[[], Console],
                                                   write_csv: Callable[..., Path], clock: FixedClock) -> None:
    admin = console_for()
    rt = admin.rt
    campaign_id = launch(rt, write_csv([person(1), person(2, b2b="true")]), audience={"b2b_regime": "notice"})
    before = admin.client.get(f"/admin/campaigns/{campaign_id}/results").text
    assert 'value="kept"' not in before  # no outcome to filter on before anyone is kept
    clock.advance(timedelta(days=31))
    sweep(rt)
    admin = console_for()  # signed in again: the first session ran out with the 31 days
    results = admin.client.get(f"/admin/campaigns/{campaign_id}/results").text
    assert 'data-key="kept">1<' in results and 'value="kept"' in results
    kept = admin.client.get(f"/admin/campaigns/{campaign_id}/results?outcome=kept").text
    assert "C-2" in kept and "C-1" not in kept
    funnel = admin.client.get(f"/admin/campaigns/{campaign_id}/funnel").text
    assert "kept (B2B notice, no objection)" in funnel
    french = admin.client.get(f"/admin/campaigns/{campaign_id}/funnel", headers={"accept-language": "fr"}).text
    assert "conservés (information B2B, sans opposition)" in french


def test_the_console_test_send_of_a_notice_campaign_sends_the_notice_too(
        console_for: Callable[[], Console], write_csv: Callable[..., Path]) -> None:
    """**Send a test** on a notice campaign: each email step as the request and as the notice."""
    from orchestrator.campaigns.service import create_campaign
    from orchestrator.contacts.service import import_contacts
    from tests.support.factories import plan

    admin = console_for()
    rt = admin.rt
    import_contacts(rt, write_csv([person(1), person(2, b2b="true")]))
    campaign_id = create_campaign(rt, plan("Pros", audience={"b2b_regime": "notice"}))
    sent = admin.post(f"/admin/campaigns/{campaign_id}/test-send", data={"to": "moi@exemple.fr", "step": "0"})
    assert sent.status_code == 200 and 'id="test-results"' in sent.text
    assert "[TEST] Boutique Lumière\u00a0: nous continuerons de vous écrire à votre adresse professionnelle" in sent.text
    assert len(list(Path(rt.config.email.outbox_dir).glob("*.eml"))) == 2  # step 0: the request and the notice
    # each result line names its template, so the marketer tells the request from the notice
    assert "Step 1 · email · reconsent · fr: " in sent.text and "Step 1 · email · notice · fr: " in sent.text
