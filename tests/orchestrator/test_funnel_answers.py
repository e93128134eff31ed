"""A channel left unticked by someone who confirms another is "not granted", not an unsubscribe
(issue 14 §7): the funnel keeps unsubscribed (withdrawn), declined and not-granted apart, in the
status JSON, the console's funnel and the person's export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from orchestrator.campaigns.reports import funnel_table
from orchestrator.campaigns.service import campaign_status
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.consent.suppression import check
from orchestrator.proof.rights import export_person
from preference_centre.admin.views_campaigns import funnel_rows
from preference_centre.app import create_app
from tests.support.factories import launch, person


def test_unticked_declined_and_unsubscribed_are_counted_apart(rt: Runtime, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 5)]))
    client = TestClient(create_app(rt))

    def page(i: int) -> str:
        return "/p/" + rt.links.dumps("page", LinkClaims(i, campaign_id, "email"))

    # 1 and 2 say yes by email and leave SMS unticked; 3 says "no thanks"; 4 one-click unsubscribes.
    for i in (1, 2):
        assert client.post(page(i), data={"action": "confirm", "email": "yes"}).status_code == 200
    assert client.post(page(3), data={"action": "decline"}).status_code == 200
    one_click = "/u/" + rt.links.dumps("unsubscribe", LinkClaims(4, campaign_id, "email"))
    assert client.post(one_click, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    status = campaign_status(rt, campaign_id)
    assert (status["confirmed"], status["declined"], status["pending"]) == (2, 2, 0)
    sms, email = status["channels"]["sms"], status["channels"]["email"]
    assert (sms["unsubscribed"], sms["declined"], sms["not_granted"]) == (0, 1, 2)
    assert (email["unsubscribed"], email["declined"], email["not_granted"]) == (1, 1, 0)

    rows = {label: n for label, n, _ in funnel_rows(status, lambda s, **kw: s % kw if kw else s)}
    assert rows["unsubscribed"] == 1 and rows["not granted (channel left unticked)"] == 2
    table = funnel_table(status)
    assert "not granted" in table.splitlines()[3]

    events = export_person(rt, email="person1@example.org")["people"][0]["consent_events"]
    assert [(e["channel"], e["action"]) for e in events] == [("email", "confirmed"), ("sms", "not_granted")]
    # the phone stays out of SMS campaigns, under a reason of its own
    assert [(e.channel, e.reason) for e in check(rt, "+33612340001")] == [("sms", "not_granted")]
