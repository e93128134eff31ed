"""One-click unsubscribes are never thrown away (issue 14 §2): mailbox providers post RFC 8058
one-click unsubscribes for many people from one address. A genuine signed link is counted per link,
not per client address; forged links and the other forms keep the per-address limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, SuppressionEntry
from preference_centre.app import create_app
from tests.support.factories import launch, person

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_200_one_click_unsubscribes_from_one_address_within_a_minute_are_all_recorded(
        rt: Runtime, write_csv: Callable[..., Path]) -> None:
    assert rt.config.server.post_rate_per_minute == 30  # the shipped per-address limit
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, 201)]))
    client = TestClient(create_app(rt))  # every request comes from the same client address
    started = time.monotonic()
    codes = [client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(i, campaign_id, 'email'))}",
                         data=ONE_CLICK).status_code for i in range(1, 201)]
    assert time.monotonic() - started < 60
    assert codes == [200] * 200
    with Session(rt.engine) as s:
        withdrawn = {e.contact_id for e in s.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn"))}
        suppressed = {e.key for e in s.exec(select(SuppressionEntry).where(SuppressionEntry.channel == "email"))}
    assert withdrawn == set(range(1, 201))
    assert suppressed == {rt.key_for(f"person{i}@example.org") for i in range(1, 201)}

    # The same link posted again (a provider's retry) is idempotent: 200, nothing new.
    again = client.post(f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, campaign_id, 'email'))}", data=ONE_CLICK)
    assert again.status_code == 200
    with Session(rt.engine) as s:
        assert len(list(s.exec(select(ConsentEvent).where(ConsentEvent.action == "withdrawn")))) == 200

    # The per-address limit still holds for forged links and the other forms, untouched by the above.
    forged = [client.post("/u/not-a-real-token", data=ONE_CLICK).status_code for _ in range(31)]
    assert forged == [400] * 30 + [429]
    page = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
    assert client.post(f"/p/{page}", data={"action": "confirm"}).status_code == 429


def test_one_link_is_still_limited_per_minute(make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    """A genuine link hammered in a loop gets the same per-minute allowance as an address."""
    rt = make_rt(server={"post_rate_per_minute": 3})
    campaign_id = launch(rt, write_csv([person(1), person(2)]))
    client = TestClient(create_app(rt))
    one = f"/u/{rt.links.dumps('unsubscribe', LinkClaims(1, campaign_id, 'email'))}"
    assert [client.post(one, data=ONE_CLICK).status_code for _ in range(4)] == [200, 200, 200, 429]
    other = f"/u/{rt.links.dumps('unsubscribe', LinkClaims(2, campaign_id, 'email'))}"
    assert client.post(other, data=ONE_CLICK).status_code == 200
