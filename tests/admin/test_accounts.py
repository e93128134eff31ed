"""Console accounts (issue 15): `reconsent users …` and the Users page manage accounts through the same
service, every change in the audit log; ending access ends sessions at once; a lockout blocks only the
address that guessed, backs off, and an admin lifts it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from orchestrator.cli.main import main
from orchestrator.domain.clock import FixedClock
from orchestrator.runtime import Runtime
from orchestrator.store.models import AdminAudit, AdminSession, AdminUser
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, VIEWER, Console, csrf_of, sign_in

ATTACKER = ("203.0.113.5", 40000)
OWNER = ("198.51.100.7", 40000)


def _client(rt: Runtime, client: tuple[str, int] = OWNER) -> TestClient:
    return TestClient(create_app(rt), base_url="https://testserver", headers={"accept-language": "en"},
                      client=client)


def _attempt(client: TestClient, email: str, password: str, code: str = "") -> int:
    csrf = csrf_of(client.get("/admin/login").text)
    return client.post("/admin/login", data={"csrf": csrf, "email": email, "password": password, "code": code},
                       follow_redirects=False).status_code


def _users(rt: Runtime, *args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(main, ["users", *args], input=stdin,
                              env={"RECONSENT_DATABASE__URL": rt.config.database_url, "RECONSENT_CONFIG": "",
                                   "RECONSENT_NOW": rt.clock.now().isoformat()})


def test_a_lockout_blocks_only_the_guessing_address_and_backs_off(users: Runtime, clock: FixedClock) -> None:
    attacker, owner = _client(users, ATTACKER), _client(users, OWNER)
    after, minutes = users.config.admin.lockout_after, users.config.admin.lockout_minutes
    assert [_attempt(attacker, ADMIN[0], "wrong password!") for _ in range(after)] == [401] * after
    assert _attempt(attacker, *ADMIN) == 401  # blocked from there, even with the right password
    assert _attempt(owner, *ADMIN) == 303  # ... but the admin, elsewhere, signs in: no denial of service
    # the second block from the same address lasts twice as long
    clock.advance(timedelta(minutes=minutes, seconds=1))
    assert [_attempt(attacker, ADMIN[0], "wrong password!") for _ in range(after)] == [401] * after
    clock.advance(timedelta(minutes=minutes, seconds=1))
    assert _attempt(attacker, *ADMIN) == 401
    clock.advance(timedelta(minutes=minutes, seconds=1))
    assert _attempt(attacker, *ADMIN) == 303
    with Session(users.engine) as s:
        outcomes = [a.outcome for a in s.exec(select(AdminAudit).where(AdminAudit.action == "login")
                                              .order_by(col(AdminAudit.id)))]
    assert outcomes == (["refused:wrong password"] * after + ["refused:locked", "ok"]
                        + ["refused:wrong password"] * after + ["refused:locked", "ok"])


def test_an_admin_unlocks_a_blocked_account_from_the_console_and_the_cli(users: Runtime) -> None:
    users.config.admin.login_rate_per_minute = 100  # the per-address rate limit is another test's
    blocked = _client(users, ATTACKER)
    for _ in range(users.config.admin.lockout_after):
        _attempt(blocked, VIEWER[0], "wrong password!")
    assert _attempt(blocked, *VIEWER) == 401
    listed = _users(users, "list")
    assert listed.exit_code == 0 and "viewer@shop.example  viewer  blocked" in listed.stdout
    admin = _client(users)
    csrf = sign_in(admin, *ADMIN)
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "1 address(es)" in page.text
    viewer_id = _id_of(users, VIEWER[0])
    resp = admin.post(f"/admin/users/{viewer_id}/unlock", data={"csrf": csrf}, follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/admin/users?done=unlock")
    assert _attempt(blocked, *VIEWER) == 303
    for _ in range(users.config.admin.lockout_after):
        _attempt(blocked, VIEWER[0], "wrong password!")
    unlocked = _users(users, "unlock", VIEWER[0])
    assert unlocked.exit_code == 0 and "1 blocked address(es) lifted" in unlocked.stdout
    assert _attempt(blocked, *VIEWER) == 303
    actions = _audit(users, "users.unlock")
    assert [(a.user_email, a.target, a.detail) for a in actions] == [
        (ADMIN[0], f"user:{viewer_id}", {"addresses": 1}), ("cli", f"user:{viewer_id}", {"addresses": 1})]


def _id_of(rt: Runtime, email: str) -> int:
    with Session(rt.engine) as s:
        user = s.exec(select(AdminUser).where(AdminUser.email == email)).one()
        assert user.id is not None
        return user.id


def _audit(rt: Runtime, action: str) -> list[AdminAudit]:
    with Session(rt.engine) as s:
        return list(s.exec(select(AdminAudit).where(AdminAudit.action == action).order_by(col(AdminAudit.id))))


def _sessions(rt: Runtime, email: str) -> int:
    with Session(rt.engine) as s:
        return len(list(s.exec(select(AdminSession).where(AdminSession.user_id == _id_of(rt, email)))))


@pytest.mark.parametrize("command", [["disable"], ["remove"], ["logout-all"], ["reset-password"]])
def test_the_cli_ends_the_sessions_at_once(users: Runtime, command: list[str]) -> None:
    viewer = _client(users)
    sign_in(viewer, *VIEWER)
    assert viewer.get("/admin/contacts").status_code == 200
    result = _users(users, *command, VIEWER[0], stdin="a brand new passphrase\n")
    assert result.exit_code == 0, result.output
    resp = viewer.get("/admin/contacts", follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/admin/login")
    if command == ["disable"]:
        assert _attempt(_client(users), *VIEWER) == 401  # and no new sign-in
        assert _users(users, "enable", VIEWER[0]).exit_code == 0
        assert _attempt(_client(users), *VIEWER) == 303
    if command == ["reset-password"]:
        assert _attempt(_client(users), *VIEWER) == 401
        assert _attempt(_client(users), VIEWER[0], "a brand new passphrase") == 303


def test_the_cli_commands_and_their_refusals(users: Runtime) -> None:
    role = _users(users, "set-role", VIEWER[0], "admin")
    assert role.exit_code == 0 and role.stdout.strip() == f"{VIEWER[0]} is now admin"
    viewer = _client(users)
    csrf = sign_in(viewer, *VIEWER)
    assert viewer.post("/admin/requests", data={"csrf": csrf, "kind": "access", "address": "a@b.example"},
                       follow_redirects=False).status_code == 303  # it acts at its very next request
    assert _users(users, "set-role", VIEWER[0], "viewer").exit_code == 0
    assert _users(users, "remove", VIEWER[0]).exit_code == 0
    # the last enabled admin cannot go: the console would be gone
    for args in (["disable", ADMIN[0]], ["remove", ADMIN[0]], ["set-role", ADMIN[0], "viewer"]):
        refused = _users(users, *args)
        assert refused.exit_code == 1, args
        assert refused.stderr.strip().splitlines() == [
            f"Error: {ADMIN[0]} is the last enabled admin: " + refused.stderr.split(": ", 2)[2].strip()]
        assert "add or enable another admin first" in refused.stderr
    unknown = _users(users, "disable", "nobody@shop.example")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == (
        "Error: EMAIL: no console user nobody@shop.example (see `reconsent users list`)")
    weak = _users(users, "reset-password", ADMIN[0], stdin="short\n")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.stderr
    assert _users(users, "set-role", ADMIN[0], "owner").exit_code == 2
    listed = _users(users, "list")
    assert listed.stdout.splitlines() == [
        f"{ADMIN[0]}  admin  active  sessions 0  failed 0  2fa off  last sign-in never"]
    assert [a.action for a in _audit(users, "users.set-role")] == ["users.set-role"] * 2


def test_the_users_page_manages_accounts_with_the_audit_log(admin: Console, viewer: Console) -> None:
    rt = admin.rt
    viewer_id = _id_of(rt, VIEWER[0])
    assert viewer.client.get("/admin/users").status_code == 403  # admins only
    assert 'href="/admin/users"' not in viewer.client.get("/admin/").text
    ask = admin.post(f"/admin/users/{viewer_id}/disable")
    assert ask.status_code == 200 and "Disable this account?" in ask.text and _sessions(rt, VIEWER[0]) == 1
    done = admin.post(f"/admin/users/{viewer_id}/disable", {"confirm": "yes"})
    assert done.status_code == 303 and _sessions(rt, VIEWER[0]) == 0
    assert viewer.client.get("/admin/contacts", follow_redirects=False).headers["location"] == "/admin/login"
    assert "disabled" in admin.client.get("/admin/users").text
    assert admin.post(f"/admin/users/{viewer_id}/enable").status_code == 303
    assert admin.post(f"/admin/users/{viewer_id}/reset-password", {"password": "short"}).status_code == 400
    assert admin.post(f"/admin/users/{viewer_id}/reset-password",
                      {"password": "another good passphrase"}).status_code == 303
    assert _attempt(_client(rt), VIEWER[0], "another good passphrase") == 303
    assert admin.post(f"/admin/users/{viewer_id}/set-role", {"role": "admin"}).status_code == 303
    added = admin.post("/admin/users", {"email": "new@shop.example", "password": "twelve chars ok", "role": "viewer"})
    assert added.status_code == 303
    admin_id = _id_of(rt, ADMIN[0])
    assert admin.post(f"/admin/users/{viewer_id}/set-role", {"role": "viewer"}).status_code == 303
    last = admin.post(f"/admin/users/{admin_id}/remove", {"confirm": "yes"})
    assert last.status_code == 400 and "is the last enabled admin" in last.text
    french = admin.client.post(f"/admin/users/{admin_id}/disable", data={"csrf": admin.csrf, "confirm": "yes"},
                               headers={"accept-language": "fr"})
    assert french.status_code == 400
    assert admin.post(f"/admin/users/{viewer_id}/remove", {"confirm": "yes"}).status_code == 303
    assert admin.post(f"/admin/users/{viewer_id}/unlock").status_code == 400  # gone
    assert admin.post("/admin/users/99999999999999999999999/unlock").status_code == 404
    assert admin.post(f"/admin/users/{admin_id}/explode").status_code == 404
    with Session(rt.engine) as s:
        entries = [(a.action, a.outcome, a.user_email) for a in s.exec(
            select(AdminAudit).where(col(AdminAudit.action).startswith("users.")).order_by(col(AdminAudit.id)))]
    assert entries == [
        ("users.disable", "ok", ADMIN[0]), ("users.enable", "ok", ADMIN[0]),
        ("users.reset-password", "refused", ADMIN[0]), ("users.reset-password", "ok", ADMIN[0]),
        ("users.set-role", "ok", ADMIN[0]), ("users.add", "ok", ADMIN[0]), ("users.set-role", "ok", ADMIN[0]),
        ("users.remove", "refused", ADMIN[0]), ("users.disable", "refused", ADMIN[0]),
        ("users.remove", "ok", ADMIN[0]), ("users.unlock", "refused", ADMIN[0])]


def test_logout_all_from_the_console_ends_every_browser(users: Runtime, console_for: Callable[..., Console]) -> None:
    first, second = console_for(VIEWER), console_for(VIEWER)
    admin = console_for(ADMIN)
    assert _sessions(users, VIEWER[0]) == 2
    assert admin.post(f"/admin/users/{_id_of(users, VIEWER[0])}/logout-all").status_code == 303
    for browser in (first, second):
        assert browser.client.get("/admin/", follow_redirects=False).headers["location"] == "/admin/login"
    assert admin.client.get("/admin/").status_code == 200


def test_an_optional_second_factor(users: Runtime, clock: FixedClock) -> None:
    import pyotp

    admin = _client(users)
    sign_in(admin, *ADMIN)
    setup = _users(users, "totp", ADMIN[0])
    assert setup.exit_code == 0, setup.output
    uri = setup.stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/") and "issuer=Reconsent" in uri
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    assert admin.get("/admin/", follow_redirects=False).status_code == 303  # its sessions ended
    totp = pyotp.TOTP(secret)
    code = totp.at(clock.now())
    assert _attempt(_client(users), *ADMIN) == 401  # the password alone is no longer enough
    assert _attempt(_client(users), *ADMIN, code=f"{(int(code) + 1) % 10**6:06d}") == 401
    assert _attempt(_client(users), *ADMIN, code=code) == 303
    assert _attempt(_client(users), *ADMIN, code=code) == 401  # a code is good once
    clock.advance(timedelta(seconds=30))
    assert _attempt(_client(users), *ADMIN, code=totp.at(clock.now())) == 303
    assert "2fa on" in _users(users, "list").stdout
    off = _users(users, "totp", ADMIN[0], "--off")
    assert off.exit_code == 0 and "password only" in off.stdout
    assert _attempt(_client(users), *ADMIN) == 303
    with Session(users.engine) as s:
        outcomes = [a.outcome for a in s.exec(select(AdminAudit).where(AdminAudit.action == "login")
                                              .order_by(col(AdminAudit.id)))]
    assert outcomes == ["ok", "refused:wrong code", "refused:wrong code", "ok", "refused:wrong code", "ok", "ok"]
    assert secret not in str([a.detail for a in _audit(users, "users.totp")])
