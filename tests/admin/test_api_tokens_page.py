"""The API tokens page (issue 17 §2): admins create a token (shown once) and revoke it after a
confirmation, through the service `reconsent api-tokens` uses; viewers do not see it; the token
created in the console works on the API and stops working once revoked."""

from __future__ import annotations

import re

from sqlmodel import Session, select
from starlette.testclient import TestClient

from orchestrator.store.models import AdminAudit, ApiToken
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, Console


def test_an_admin_creates_a_token_shown_once_and_revokes_it(admin: Console) -> None:
    made = admin.post("/admin/api-tokens", {"name": "crm-sync", "scope": "write"})
    assert made.status_code == 200
    token = re.search(r'<code id="token">(rct_[A-Za-z0-9_-]+)</code>', made.text)
    assert token is not None
    api = TestClient(create_app(admin.rt), base_url="https://testserver")
    bearer = {"authorization": f"Bearer {token.group(1)}"}
    assert api.post("/api/v1/suppression", json={"value": "a@example.org", "reason": "unsubscribed"},
                    headers=bearer).status_code == 201
    listing = admin.client.get("/admin/api-tokens").text
    assert token.group(1) not in listing and token.group(1)[:12] in listing and "crm-sync" in listing
    with Session(admin.rt.engine) as s:
        token_id = s.exec(select(ApiToken)).one().id
    ask = admin.post(f"/admin/api-tokens/{token_id}/revoke")
    assert ask.status_code == 200 and "Revoke this API token?" in ask.text
    assert api.get("/api/v1/campaigns", headers=bearer).status_code == 200  # not yet: only asked
    done = admin.post(f"/admin/api-tokens/{token_id}/revoke", {"confirm": "yes"})
    assert done.status_code == 303
    assert api.get("/api/v1/campaigns", headers=bearer).status_code == 401
    with Session(admin.rt.engine) as s:
        audit = [(a.action, a.user_email) for a in s.exec(select(AdminAudit)) if "api" in a.action]
    assert audit == [("api_token.create", ADMIN[0]), ("api.suppression.add", "api:crm-sync"),
                     ("api_token.revoke", ADMIN[0])]


def test_viewers_do_not_see_the_page_and_french_is_complete(viewer: Console, admin: Console) -> None:
    assert viewer.client.get("/admin/api-tokens").status_code == 403
    assert "/admin/api-tokens" not in viewer.client.get("/admin/").text
    assert "/admin/api-tokens" in admin.client.get("/admin/").text
    admin.post("/admin/lang", {"lang": "fr"})
    french = admin.client.get("/admin/api-tokens").text
    for words in ("Jetons d’API", "Créer un jeton", "Portée", "Commence par", "lecture", "écriture"):
        assert words in french, words
