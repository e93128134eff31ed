"""Issue 15, the web server: no redirect built from the request, the security headers on every
answer (redirects and errors too), HSTS on https, and no serving with the public development keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from orchestrator.accounts.service import add_user
from orchestrator.cli.main import main
from orchestrator.proof.receipt_keys import new_key
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.admin.conftest import ADMIN, csrf_of, sign_in
from tests.support.factories import launch, person

HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options",
           "cache-control")
EVIL = {"host": "evil.example"}


@pytest.fixture
def page_token(rt: Runtime, write_csv: Callable[..., Path]) -> str:
    campaign_id = launch(rt, write_csv([person(1)]))
    return rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))


def _secured(resp: object, *, hsts: bool = True) -> None:
    headers = resp.headers  # type: ignore[attr-defined]
    missing = [h for h in HEADERS if h not in headers]
    assert not missing, (resp.status_code, resp.url, missing)  # type: ignore[attr-defined]
    assert ("strict-transport-security" in headers) is hsts, (resp.status_code, resp.url)  # type: ignore[attr-defined]
    if hsts:
        assert headers["strict-transport-security"] == "max-age=31536000"


def test_a_trailing_slash_is_a_404_never_a_redirect_built_from_host(rt: Runtime, page_token: str) -> None:
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    client = TestClient(create_app(rt), base_url="https://testserver", follow_redirects=False)
    for path in (f"/p/{page_token}/", f"/u/{page_token}/", "/healthz/", "/metrics/", "/twilio/status/",
                 "/twilio/inbound/", "/admin/login/", "/admin/audit/", "/nowhere/"):
        for method in ("GET", "POST"):
            resp = client.request(method, path, headers=EVIL)
            assert resp.status_code in (403, 404), (method, path, resp.status_code)  # 403: the console's CSRF
            assert "location" not in resp.headers, (method, path)
            _secured(resp)
    # /admin is the console's home, served as such: its redirect to sign in is a path, not a URL
    resp = client.get("/admin", headers=EVIL)
    assert (resp.status_code, resp.headers["location"]) == (303, "/admin/login")
    _secured(resp)
    sign_in(client, *ADMIN)
    home = client.get("/admin", headers=EVIL)
    assert home.status_code == 200 and "evil.example" not in home.text
    _secured(home)


def test_every_answer_carries_the_security_headers(make_rt: Callable[..., Runtime], page_token: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rt = make_rt(server={"post_rate_per_minute": 1, "max_body_bytes": 400}, admin={"login_rate_per_minute": 1})
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    client = TestClient(create_app(rt), base_url="https://testserver", follow_redirects=False,
                        raise_server_exceptions=False)
    answers = {
        "public 404": client.get("/nowhere"),
        "public 405": client.delete(f"/p/{page_token}"),
        "public 413": client.post("/p/x", content=b"a" * 500, headers={"content-type": "text/plain"}),
        "public 200": client.post(f"/p/{page_token}", data={"action": "confirm", "email": "yes"}),
        "public 429": client.post(f"/p/{page_token}", data={"action": "confirm", "email": "yes"}),
        "console 303": client.get("/admin/"),
        "console 404": client.get("/admin/nowhere"),
        "console 405": client.delete("/admin/login"),
        "console 413": client.post("/admin/login", content=b"a" * 20_000, headers={"content-type": "text/plain"}),
    }
    csrf = csrf_of(client.get("/admin/login").text)
    form = {"csrf": csrf, "email": "nobody@shop.example", "password": "x" * 12}
    answers["console 401"] = client.post("/admin/login", data=form)
    answers["console 429"] = client.post("/admin/login", data=form)
    from preference_centre.admin import views_auth

    def broken(_rt: Runtime) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(views_auth, "list_campaigns", broken)
    rt.config.admin.login_rate_per_minute = 100
    other = TestClient(create_app(rt), base_url="https://testserver", raise_server_exceptions=False)
    sign_in(other, *ADMIN)
    answers["console 500"] = other.get("/admin/")
    engine = rt.engine
    rt.__dict__["engine"] = create_engine("sqlite:////nonexistent-folder/reconsent.db")  # the database is gone
    answers["public 500"] = client.get(f"/p/{page_token}")
    rt.__dict__["engine"] = engine
    codes = {name: resp.status_code for name, resp in answers.items()}
    assert codes == {name: int(name.split()[1]) for name in answers}
    for resp in answers.values():
        _secured(resp)
    assert "boom" not in answers["console 500"].text


def test_hsts_only_when_the_public_url_is_https(make_rt: Callable[..., Runtime]) -> None:
    http = TestClient(create_app(make_rt(public={"base_url": "http://127.0.0.1:8000"})))
    _secured(http.get("/healthz"), hsts=False)
    _secured(http.get("/nowhere"), hsts=False)


def _serve(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args], env={"RECONSENT_CONFIG": "", **env})
    return result.exit_code, result.stderr


@pytest.mark.parametrize("setting", [
    {"RECONSENT_PUBLIC__BASE_URL": "https://prefs.example.com"},
    {"RECONSENT_EMAIL__TRANSPORT": "smtp"},
    {"RECONSENT_SMS__TRANSPORT": "twilio", "RECONSENT_SMS__ACCOUNT_SID": "AC1", "RECONSENT_SMS__AUTH_TOKEN": "t"},
])
@pytest.mark.parametrize("command", ["serve", "run"])
def test_no_serving_with_a_development_key(setting: dict[str, str], command: str, rt: Runtime) -> None:
    env = {"RECONSENT_DATABASE__URL": rt.config.database_url, **setting}
    code, err = _serve(command, "--port", "1", **env)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "security.signing_keys, security.suppression_key: the development key is public" in err
    # one development key is enough to refuse; the message names only that one
    code, err = _serve(command, "--port", "1", RECONSENT_SECURITY__SIGNING_KEYS="a-real-random-secret-0123456789",
                       RECONSENT_RECEIPTS__SIGNING_KEY=new_key()[0], **env)
    assert code == 1 and err.startswith("Error: security.suppression_key: the development key") and "," not in \
        err.split(":")[1]
