"""Access to the console at the HTTP level: disabled without an admin, argon2 hashes, cookie flags,
sign-in rate limit and lockout, sign-out, CSRF on every form, roles, and the audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select
from starlette.routing import Route
from starlette.testclient import TestClient

from orchestrator.campaigns.service import create_campaign
from orchestrator.domain.clock import FixedClock, as_utc
from orchestrator.runtime import Runtime
from orchestrator.store.models import AdminAudit, AdminSession, AdminUser, BrandSetting, Campaign, MessageTemplate
from preference_centre.admin.app import routes
from orchestrator.accounts.service import add_user
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, VIEWER, Console, csrf_of, sign_in
from tests.support.factories import plan

# Every state-changing route of the console, with a body that would succeed given a valid token.
POSTS = {
    "/admin/logout": {},
    "/admin/lang": {"lang": "en"},
    "/admin/contacts/import": {},
    "/admin/contacts/lookup": {"address": "person1@example.org"},
    "/admin/contacts/export": {"address": "person1@example.org"},
    "/admin/contacts/erase": {"address": "person1@example.org", "confirm": "yes"},
    "/admin/suppression/check": {"address": "person1@example.org"},
    "/admin/suppression/import": {},
    "/admin/requests": {"kind": "access", "address": "person1@example.org"},
    "/admin/campaigns": {"name": "x", "deadline_days": "30", "step0_day": "0", "step0_channel": "email",
                         "step0_template": "reconsent", "kinds": "customer"},
    "/admin/campaigns/{campaign_id:int}/{action}": {"confirm": "yes"},
    "/admin/users": {"email": "new@shop.example", "password": "a long enough passphrase", "role": "admin"},
    "/admin/users/{user_id:int}/{action}": {"confirm": "yes"},
    "/admin/api-tokens": {"name": "crm-sync", "scope": "write"},
    "/admin/api-tokens/{token_id:int}/revoke": {"confirm": "yes"},
    "/admin/campaigns/{campaign_id:int}/results.csv": {},
    "/admin/campaigns/{campaign_id:int}/crm-results": {"format": "csv"},
    "/admin/templates/{name}/{locale}": {"intent": "save", "sms": "x {{ short_url }} STOP au {{ sender.stop_number }}"},
    "/admin/templates/{name}/{locale}/preview": {"sms": "x"},
    "/admin/brand": {"sender_name": "Other"},
    "/admin/campaigns/{campaign_id:int}/test-send": {"to": "me@example.org"},
    "/admin/campaigns/{campaign_id:int}/edit": {"name": "renamed", "deadline_days": "30", "step0_day": "0",
                                                "step0_channel": "email", "step0_template": "reconsent",
                                                "kinds": "customer"},
    "/admin/contacts/import/mapped": {"upload": "0" * 32, "map_external_id": "id"},
}


def _url(path: str, campaign_id: int) -> str:
    """A POST route with real ids: the campaign's launch, or disabling the viewer (user 2)."""
    action = "disable" if path.startswith("/admin/users/") else "launch"
    return (path.replace("{campaign_id:int}", str(campaign_id)).replace("{user_id:int}", "2").replace("{token_id:int}", "1").replace("{action}", action)
            .replace("{name}", "reconsent").replace("{locale}", "fr"))


def test_console_is_a_plain_404_until_an_admin_exists(rt: Runtime) -> None:
    client = TestClient(create_app(rt), base_url="https://testserver")
    public_404 = client.get("/nowhere")
    for path in ("/admin", "/admin/", "/admin/login", "/admin/static/admin.css"):
        resp = client.get(path)
        assert resp.status_code == 404 and _no_links(resp.text) == _no_links(public_404.text)
    add_user(rt, "v@shop.example", "viewer password 12345", "viewer")
    assert client.get("/admin/login").status_code == 404  # a viewer alone does not enable it
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    assert client.get("/admin/login").status_code == 200
    assert client.get("/admin/", follow_redirects=False).headers["location"] == "/admin/login"


def _no_links(html: str) -> str:
    return re.sub(r'href="[^"]*"', "", html)


def test_passwords_are_argon2id_and_weak_ones_refused(users: Runtime) -> None:
    from orchestrator.errors import InputError

    with Session(users.engine) as s:
        hashes = [u.password_hash for u in s.exec(select(AdminUser))]
    assert all(h.startswith("$argon2id$") for h in hashes) and ADMIN[1] not in "".join(hashes)
    with pytest.raises(InputError, match="at least 12"):
        add_user(users, "short@shop.example", "short", "admin")
    with pytest.raises(InputError, match="already exists"):
        add_user(users, ADMIN[0].upper(), ADMIN[1], "admin")


def test_session_cookie_flags_and_logout(users: Runtime) -> None:
    client = TestClient(create_app(users), base_url="https://testserver")
    page = client.get("/admin/login")
    resp = client.post("/admin/login", data={"csrf": csrf_of(page.text), "email": ADMIN[0], "password": ADMIN[1]},
                       follow_redirects=False)
    cookie = next(v for k, v in resp.headers.multi_items() if k == "set-cookie" and v.startswith("reconsent_admin="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"secure", "httponly", "path", "samesite"} <= attrs and "samesite=strict" in cookie.lower()
    csrf = csrf_of(client.get("/admin/").text)
    assert client.get("/admin/contacts").status_code == 200
    assert client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    with Session(users.engine) as s:
        assert list(s.exec(select(AdminSession))) == []
    client.cookies.set("reconsent_admin", cookie.split(";")[0].split("=", 1)[1], domain="testserver")
    assert client.get("/admin/contacts", follow_redirects=False).headers["location"] == "/admin/login"


def test_cookie_is_not_secure_only_on_plain_http_loopback(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(public={"base_url": "http://127.0.0.1:8000"})
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    client = TestClient(create_app(rt), base_url="http://127.0.0.1:8000")
    resp = client.get("/admin/login")
    assert "secure" not in resp.headers["set-cookie"].lower() and "httponly" in resp.headers["set-cookie"].lower()
    sign_in(client, *ADMIN)  # and the whole sign-in works over http there


def test_wrong_password_then_lockout_then_unlock(users: Runtime, clock: FixedClock) -> None:
    client = TestClient(create_app(users), base_url="https://testserver")
    csrf = csrf_of(client.get("/admin/login").text)

    def attempt(password: str) -> int:
        return client.post("/admin/login", data={"csrf": csrf, "email": ADMIN[0], "password": password},
                           follow_redirects=False).status_code

    assert [attempt("wrong password!") for _ in range(users.config.admin.lockout_after)] == [401] * 5
    assert attempt(ADMIN[1]) == 401  # locked: even the right password is refused
    clock.advance(timedelta(minutes=users.config.admin.lockout_minutes, seconds=1))
    assert attempt(ADMIN[1]) == 303
    with Session(users.engine) as s:
        outcomes = [a.outcome for a in s.exec(select(AdminAudit).where(AdminAudit.action == "login").order_by(col(AdminAudit.id)))]
    assert outcomes == ["refused:wrong password"] * 5 + ["refused:locked", "ok"]


def test_sign_in_rate_limit_per_address(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(admin={"login_rate_per_minute": 3})
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    client = TestClient(create_app(rt), base_url="https://testserver")
    csrf = csrf_of(client.get("/admin/login").text)
    codes = [client.post("/admin/login", data={"csrf": csrf, "email": "nobody@shop.example", "password": "x" * 12},
                         follow_redirects=False).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_login_needs_its_csrf_token(users: Runtime) -> None:
    client = TestClient(create_app(users), base_url="https://testserver")
    client.get("/admin/login")
    resp = client.post("/admin/login", data={"csrf": "forged", "email": ADMIN[0], "password": ADMIN[1]},
                       follow_redirects=False)
    assert resp.status_code == 403 and "reconsent_admin=" not in resp.headers.get("set-cookie", "")


def test_every_post_route_is_covered_by_this_test() -> None:
    posted = {r.path for r in routes() if isinstance(r, Route) and "POST" in (r.methods or set())} - {"/login"}
    assert {"/admin" + p for p in posted} == set(POSTS)


@pytest.mark.parametrize("path", sorted(POSTS))
def test_csrf_refused_on_every_form_and_nothing_changes(admin: Console, path: str) -> None:
    campaign_id = create_campaign(admin.rt, plan())
    url = _url(path, campaign_id)
    before = _state(admin.rt)
    for token in (None, "forged-token"):
        data = {k: v for k, v in POSTS[path].items()}
        if token:
            data["csrf"] = token
        resp = admin.client.post(url, data=data, follow_redirects=False)
        assert resp.status_code == 403, (url, resp.status_code)
    assert _state(admin.rt) == before
    assert admin.client.get("/admin/contacts").status_code == 200  # still signed in
    with Session(admin.rt.engine) as s:  # the refusals themselves are in the audit log
        denied = [(a.target, a.outcome) for a in s.exec(select(AdminAudit).where(AdminAudit.action == "denied"))]
    # the language switch is no console action (it also works before sign-in): refused, not audited
    assert denied == ([] if path == "/admin/lang" else [(url, "refused:csrf")] * 2)


def _state(rt: Runtime) -> tuple[object, ...]:
    with Session(rt.engine) as s:
        return ([(c.id, c.state) for c in s.exec(select(Campaign))],
                len(list(s.exec(select(AdminSession)))),
                [(u.id, u.role, u.disabled_at) for u in s.exec(select(AdminUser))],
                [a.action for a in s.exec(select(AdminAudit)) if a.action not in ("login", "denied")],
                len(list(s.exec(select(MessageTemplate)))), len(list(s.exec(select(BrandSetting)))))


ADMIN_ONLY = ["/admin/contacts/import", "/admin/contacts/export", "/admin/contacts/erase",
              "/admin/suppression/import", "/admin/requests", "/admin/campaigns",
              "/admin/campaigns/{campaign_id:int}/{action}", "/admin/users", "/admin/users/{user_id:int}/{action}",
              "/admin/brand", "/admin/templates/{name}/{locale}", "/admin/campaigns/{campaign_id:int}/test-send",
              "/admin/campaigns/{campaign_id:int}/edit", "/admin/contacts/import/mapped",
              "/admin/api-tokens"]


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_viewers_read_but_cannot_act(viewer: Console, path: str) -> None:
    campaign_id = create_campaign(viewer.rt, plan())
    url = _url(path, campaign_id)
    resp = viewer.post(url, POSTS[path])
    assert resp.status_code == 403 and "can view but not act" in resp.text
    with Session(viewer.rt.engine) as s:
        (denied,) = s.exec(select(AdminAudit).where(AdminAudit.action == "denied"))
    assert (denied.user_email, denied.target, denied.outcome) == (VIEWER[0], url, "refused:role")
    with Session(viewer.rt.engine) as s:
        assert s.get(Campaign, campaign_id).state == "draft"  # type: ignore[union-attr]
    for page in ("/admin/", "/admin/contacts", "/admin/suppression", "/admin/requests", "/admin/audit",
                 f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/funnel"):
        assert viewer.client.get(page).status_code == 200, page
    assert viewer.client.get("/admin/campaigns/new").status_code == 403
    assert viewer.post("/admin/contacts/lookup", {"address": "nobody@example.org"}).status_code == 200


def test_actions_are_audited_with_who_what_when(admin: Console) -> None:
    campaign_id = create_campaign(admin.rt, plan())
    assert admin.post(f"/admin/campaigns/{campaign_id}/launch", {"confirm": "yes"}).status_code == 303
    with Session(admin.rt.engine) as s:
        entry = s.exec(select(AdminAudit).where(AdminAudit.action == "campaign.launch")).one()
    assert (entry.user_email, entry.target, entry.outcome, as_utc(entry.at), entry.detail) == (
        ADMIN[0], f"campaign:{campaign_id}", "ok", admin.rt.clock.now(), {"enrolled": 0})
    page = admin.client.get("/admin/audit").text
    assert "campaign.launch" in page and ADMIN[0] in page


def test_security_headers_and_no_open_redirect(admin: Console) -> None:
    resp = admin.client.get("/admin/")
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY" and resp.headers["cache-control"] == "no-store"
    resp = admin.post("/admin/lang", {"lang": "en", "next": "//evil.example/admin"})
    assert resp.headers["location"] == "/admin/"
    assert VIEWER[0] not in resp.text
