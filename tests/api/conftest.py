"""The API as an integrator drives it: a real uvicorn server on a free port, a real HTTP client, and
tokens created by the CLI (``reconsent api-tokens create``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import main
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.live_server import live_server


def cli(rt: Runtime, *args: str) -> Result:
    return CliRunner().invoke(main, list(args),
                              env={"RECONSENT_DATABASE__URL": rt.config.database_url, "RECONSENT_CONFIG": "",
                                   "RECONSENT_NOW": rt.clock.now().isoformat()})


def new_token(rt: Runtime, scope: str, name: str = "crm-sync") -> str:
    result = cli(rt, "api-tokens", "create", "--name", name, "--scope", scope)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("rct_")
    return token


@dataclass
class Api:
    url: str
    rt: Runtime

    def client(self, token: str | None) -> httpx2.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx2.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)


@pytest.fixture
def api(rt: Runtime) -> Iterator[Api]:
    with live_server(create_app(rt)) as url:
        yield Api(url, rt)
