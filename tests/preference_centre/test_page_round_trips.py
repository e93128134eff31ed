"""The preference page reads what it shows in one statement on one connection, and records an
answer on one connection: whether the person is under a B2B notice, and the topics they grant, are
read with the rest (or not at all when the config offers no topic), not by extra round trips.

Measured under 64 connections (bench/RESULTS.md, "the preference page after issue 18"), each extra
connection of a request cost about a millisecond of server CPU; these tests keep them from coming back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from orchestrator.campaigns.service import create_campaign, launch_campaign
from orchestrator.contacts.service import import_contacts
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.factories import person, plan


@contextmanager
def counted(rt: Runtime) -> Iterator[dict[str, int]]:
    """Connections checked out of the pool and SQL statements run while the block runs."""
    seen = {"checkouts": 0, "statements": 0}

    def checkout(*_: Any) -> None:
        seen["checkouts"] += 1

    def statement(*_: Any) -> None:
        seen["statements"] += 1

    event.listen(rt.engine.pool, "checkout", checkout)
    event.listen(rt.engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(rt.engine.pool, "checkout", checkout)
        event.remove(rt.engine, "before_cursor_execute", statement)


def _pages(rt: Runtime, write_csv: Callable[..., Path], regime: str) -> tuple[TestClient, dict[int, str]]:
    import_contacts(rt, write_csv([person(1), person(2, b2b="true"), person(3), person(4, b2b="true")]))
    campaign_id = create_campaign(rt, plan(audience={"b2b_regime": regime}))
    launch_campaign(rt, campaign_id)
    pages = {i: "/p/" + rt.links.dumps("page", LinkClaims(i, campaign_id, "email")) for i in (1, 2, 3, 4)}
    client = TestClient(create_app(rt))
    client.get(pages[3])  # warm: the brand and the shown wording are read once per process
    return client, pages


def test_the_page_is_one_statement_for_a_consumer_and_for_a_professional_under_notice(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    client, pages = _pages(rt, write_csv, "notice")
    for contact_id, shows in ((1, 'name="sms"'), (2, "continuera de vous écrire")):
        with counted(rt) as seen:
            page = client.get(pages[contact_id])
        assert page.status_code == 200 and shows in page.text
        assert seen == {"checkouts": 1, "statements": 1}, (contact_id, seen)


def test_an_answer_is_recorded_on_one_connection(make_rt: Callable[..., Runtime],
                                                 write_csv: Callable[..., Path]) -> None:
    rt = make_rt()
    client, pages = _pages(rt, write_csv, "notice")
    client.post(pages[3], data={"action": "confirm", "email": "yes"})  # the wording is stored once
    client.post(pages[4], data={"action": "confirm"})
    for contact_id, data in ((1, {"action": "confirm", "email": "yes"}), (2, {"action": "decline"})):
        with counted(rt) as seen:
            done = client.post(pages[contact_id], data=data)
        assert done.status_code == 200 and "Merci" in done.text
        assert seen["checkouts"] == 1, (contact_id, seen)
