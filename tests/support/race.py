"""Workers for the answer-versus-sweep race test, run in processes of their own (spawned, so each
has its own engine and connections, as the web server and the scheduler do in production)."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.config import DEFAULT_CONFIG, load_config
from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import Answer, PageAnswer, Person, Shown, answer_from_page
from orchestrator.domain.clock import FixedClock
from orchestrator.errors import NotFoundError, RequestExpired
from orchestrator.runtime import Runtime, runtime_in


def _runtime(folder: str, database_url: str, now: str) -> Runtime:
    return runtime_in(Path(folder), load_config(DEFAULT_CONFIG, env={}), FixedClock(datetime.fromisoformat(now)),
                      database_url=database_url, public={"base_url": "https://prefs.example.com"})


def sweeper(folder: str, database_url: str, now: str, batch: int, go: Any) -> None:
    """Run the deadline sweep in small batches (many transactions to interleave with) once ``go`` is set."""
    from orchestrator.campaigns import sweep as sweep_module

    sweep_module.BATCH = batch
    rt = _runtime(folder, database_url, now)
    go.wait()
    sweep_module.sweep(rt)
    rt.engine.dispose()


def answerer(folder: str, database_url: str, now: str, campaign_id: int, contact_ids: list[int], out: str,
             go: Any) -> None:
    """Answer "yes" for each contact as the preference page does; write each outcome to ``out``:
    "thanks" (the page says the choice is recorded), "over" (the campaign is over) or "gone"."""
    rt = _runtime(folder, database_url, now)

    def decide(person: Person) -> PageAnswer:
        proof = Proof(source="preference_centre", campaign_id=campaign_id, locale="fr")
        return PageAnswer(Answer(channels={"email": True, "sms": True}), proof,
                          Shown("preference_page", "fr", "Souhaitez-vous toujours recevoir nos nouvelles ?"))

    outcomes: dict[int, str] = {}
    ids = list(contact_ids)
    random.Random(contact_ids[0]).shuffle(ids)
    go.wait()
    for contact_id in ids:
        try:
            answer_from_page(rt, contact_id, campaign_id, decide)
            outcomes[contact_id] = "thanks"
        except RequestExpired:
            outcomes[contact_id] = "over"
        except NotFoundError:
            outcomes[contact_id] = "gone"
    Path(out).write_text(json.dumps(outcomes), encoding="utf-8")
    rt.engine.dispose()
