"""The console's read-only webhooks panel (issue 17 §3): each endpoint (scheme and host only: a path may
hold a token), its queue, and its failed attempts with the error and the next attempt."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.consent.ledger import Proof
from orchestrator.consent.service import record_unsubscribe
from orchestrator.delivery.worker import dispatch_once
from orchestrator.domain.model import ConsentSource
from orchestrator.runtime import Runtime
from orchestrator.webhook_settings import WebhookEndpoint
from tests.admin.conftest import Console
from tests.orchestrator.delivery.test_webhooks import dead_url, new_secret
from tests.support.factories import launch, person, run


@pytest.fixture
def rt(make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt(webhooks={"endpoints": [WebhookEndpoint(dead_url() + "?token=s3cret-path", new_secret())]})


def test_home_lists_endpoints_and_their_failures(admin: Console, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(admin.rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    record_unsubscribe(admin.rt, 1, campaign_id, "email", Proof(source=ConsentSource.ONE_CLICK))
    run(dispatch_once(admin.rt))
    home = admin.client.get("/admin/").text
    assert "s3cret" not in home and "/gone" not in home
    panel = " ".join(re.sub(r"<[^>]+>", " ", home.split('id="hooks"', 1)[1]).split())
    assert "2 waiting · 0 delivered · 0 given up" in panel  # consent.withdrawn and contact.suppressed
    # the first one posted is the first one written: the suppression (consent.service LOCK ORDER)
    assert "contact.suppressed" in panel and "ClientConnectorError" in panel and "UTC" in panel
    french = admin.client.get("/admin/", headers={"accept-language": "fr"}).text
    assert "2 en attente" in french and "Prochaine tentative" in french
