"""No answer is lost to the deadline sweep (issue 14 §3): people answer from their own processes while
the sweep runs in another. Each answer either wins — the page thanks them, they stay confirmed, the
sweep skips them — or loses — the page says the campaign is over and nothing of the answer is written.
Never "thank you" followed by expired, suppressed and anonymised. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from orchestrator.consent import ledger
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import ConsentEvent, Contact, Enrolment, SuppressionEntry
from tests.support import race
from tests.support.factories import launch, person

PEOPLE = 400
ANSWERERS = 3


def test_answers_and_the_sweep_in_concurrent_processes_never_lose_an_answer(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], clock: FixedClock, tmp_path: Path,
        database_url: str) -> None:
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(i) for i in range(1, PEOPLE + 1)]))
    clock.advance(timedelta(days=31))
    now = clock.now().isoformat()
    # Three people in four answer, spread over three processes; the sweep runs in 10 batches of 40.
    answering = [i for i in range(1, PEOPLE + 1) if i % 4]
    shares = [answering[k::ANSWERERS] for k in range(ANSWERERS)]
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    outs = [tmp_path / f"answers{k}.json" for k in range(ANSWERERS)]
    procs = [ctx.Process(target=race.answerer, args=(str(tmp_path), database_url, now, campaign_id, share, str(out), go))
             for share, out in zip(shares, outs, strict=True)]
    procs.append(ctx.Process(target=race.sweeper, args=(str(tmp_path), database_url, now, 40, go)))
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    outcome: dict[int, str] = {}
    for out in outs:
        outcome.update({int(k): v for k, v in json.loads(out.read_text()).items()})
    assert sorted(outcome) == answering

    with Session(rt.engine) as s:
        states = {e.contact_id: e.state for e in s.exec(select(Enrolment))}
        actions: dict[int, set[str]] = {}
        for e in s.exec(select(ConsentEvent)):
            actions.setdefault(e.contact_id, set()).add(e.action)
        contacts = {c.id: c for c in s.exec(select(Contact))}
        suppressed = {e.key for e in s.exec(select(SuppressionEntry))}
        assert ledger.verify(s).broken_at is None

    thanked = [i for i, o in outcome.items() if o == "thanks"]
    refused = [i for i, o in outcome.items() if o != "thanks"]
    lost = [i for i in thanked if states[i] != "confirmed" or "expired" in actions.get(i, set())
            or contacts[i].erased_at is not None or rt.key_for(f"person{i}@example.org") in suppressed]
    assert lost == [], f"thanked, then expired/suppressed/anonymised: {lost[:10]}"
    recorded_anyway = [i for i in refused if states[i] != "expired" or "confirmed" in actions.get(i, set())]
    assert recorded_anyway == [], f"told the campaign is over, yet the answer was recorded: {recorded_anyway[:10]}"
    # the silent quarter all expired
    assert {states[i] for i in range(1, PEOPLE + 1) if i % 4 == 0} == {"expired"}
    # each side won some: the processes really overlapped (else this test proves nothing)
    assert thanked and refused, (len(thanked), len(refused))
