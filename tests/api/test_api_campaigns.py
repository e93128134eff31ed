"""Tokens, bearer auth, problems and the campaign endpoints (issue 17 §2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
from click.testing import CliRunner
from sqlmodel import Session, select

from orchestrator.accounts.api_tokens import digest
from orchestrator.cli.main import main
from orchestrator.store.models import AdminAudit, ApiToken
from tests.api.conftest import Api, cli, new_token
from tests.support.factories import launch, person


def problem_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and str(body["type"]).startswith("urn:")
    return body


def test_tokens_are_stored_hashed_listed_and_revoked_by_the_cli(api: Api) -> None:
    token = new_token(api.rt, "read")
    with Session(api.rt.engine) as s:
        row = s.exec(select(ApiToken)).one()
    assert row.token_hash == digest(token) and token not in row.token_hash and row.prefix == token[:12]
    assert len(token) >= 4 + 43  # 256 random bits
    listed = cli(api.rt, "api-tokens", "list")
    assert f"{row.id}  crm-sync  read  active  {token[:12]}" in listed.stdout and token not in listed.stdout
    with api.client(token) as http:
        assert http.get("/campaigns").status_code == 200
        assert cli(api.rt, "api-tokens", "revoke", str(row.id)).exit_code == 0
        problem_of(http.get("/campaigns"), 401)
    assert "revoked" in cli(api.rt, "api-tokens", "list").stdout
    with Session(api.rt.engine) as s:
        actions = [a.action for a in s.exec(select(AdminAudit))]
    assert actions == ["api_token.create", "api_token.revoke"]


def test_without_a_valid_token_401_and_a_read_token_cannot_write(api: Api) -> None:
    read = new_token(api.rt, "read")
    with api.client(None) as anonymous:
        response = anonymous.get("/campaigns")
        problem_of(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    with api.client("rct_" + "x" * 43) as forged:
        problem_of(forged.get("/campaigns"), 401)
    with api.client(read) as http:
        problem_of(http.post("/suppression", json={"value": "a@example.org", "reason": "crm"}), 403)
        problem_of(http.get("/nowhere"), 404)
        problem_of(httpx2.get(api.url + "/api/v1"), 404)  # JSON, not the public HTML 404
        problem_of(http.delete("/campaigns"), 405)
        problem_of(http.get("/campaigns/99"), 404)
        problem_of(http.get("/campaigns?limit=0"), 422)
        problem_of(http.get("/contacts/%0A0"), 404)  # a line break in the path once escaped the mount: 500
        problem_of(http.get("/campaigns/99999999999999999999"), 404)
        problem_of(http.get("/campaigns?after=3000000000"), 422)  # beyond the 32-bit ids: once a 500 on PostgreSQL


def test_the_rate_is_limited_per_token(api: Api) -> None:
    first, second = new_token(api.rt, "read", "a"), new_token(api.rt, "read", "b")
    api_app_limit = 600
    with api.client(first) as http:
        codes = [http.get("/campaigns").status_code for _ in range(api_app_limit)]
        assert set(codes) == {200}
        refused = http.get("/campaigns")
        problem_of(refused, 429)
        assert refused.headers["retry-after"] == "60"
    with api.client(second) as other:
        assert other.get("/campaigns").status_code == 200  # another token is not refused


def test_campaign_status_is_the_cli_json_and_results_page_with_a_cursor(
        api: Api, write_csv: Callable[..., Path]) -> None:
    campaign_id = launch(api.rt, write_csv([person(i) for i in range(1, 6)]))
    token = new_token(api.rt, "read")
    status = CliRunner().invoke(main, ["campaign", "status", str(campaign_id), "--json"],
                                env={"RECONSENT_DATABASE__URL": api.rt.config.database_url, "RECONSENT_CONFIG": "",
                                     "RECONSENT_NOW": api.rt.clock.now().isoformat()})
    with api.client(token) as http:
        listed = http.get("/campaigns").json()
        assert [c["id"] for c in listed["data"]] == [campaign_id] and listed["next"] is None
        assert listed["data"][0]["launched_at"].endswith("Z")
        assert http.get(f"/campaigns/{campaign_id}").json() == json.loads(status.stdout)
        first = http.get(f"/campaigns/{campaign_id}/results", params={"limit": 3}).json()
        assert [r["external_id"] for r in first["data"]] == ["C-1", "C-2", "C-3"] and first["next"]
        second = http.get(f"/campaigns/{campaign_id}/results", params={"limit": 3, "after": first["next"]}).json()
        assert [r["external_id"] for r in second["data"]] == ["C-4", "C-5"] and second["next"] is None
        assert first["data"][0]["state"] == "pending" and first["data"][0]["email_consent"] == "none"
