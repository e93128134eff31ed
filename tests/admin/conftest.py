"""Console fixtures: a runtime with an admin and a viewer, and HTTPS test clients that sign in."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from orchestrator.runtime import Runtime
from orchestrator.accounts.service import add_user
from preference_centre.app import create_app

ADMIN = ("admin@shop.example", "correct horse battery staple")
VIEWER = ("viewer@shop.example", "viewer password 12345")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@dataclass
class Console:
    rt: Runtime
    client: TestClient
    csrf: str

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf": self.csrf, **(data or {})}, follow_redirects=False, **kwargs)  # type: ignore[arg-type]


def sign_in(client: TestClient, email: str, password: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    page = client.get("/admin/login")
    resp = client.post("/admin/login", data={"csrf": csrf_of(page.text), "email": email, "password": password},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return csrf_of(client.get("/admin/").text)


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with small cost parameters: the defaults take ~1 s a hash on a busy CI runner."""
    from argon2 import PasswordHasher

    from orchestrator.accounts import service as auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def users(rt: Runtime) -> Runtime:
    add_user(rt, ADMIN[0], ADMIN[1], "admin")
    add_user(rt, VIEWER[0], VIEWER[1], "viewer")
    return rt


@pytest.fixture
def console_for(users: Runtime) -> Callable[[tuple[str, str]], Console]:
    def make(who: tuple[str, str] = ADMIN) -> Console:
        client = TestClient(create_app(users), base_url="https://testserver", headers={"accept-language": "en"})
        return Console(users, client, sign_in(client, *who))

    return make


@pytest.fixture
def admin(console_for: Callable[[tuple[str, str]], Console]) -> Console:
    return console_for(ADMIN)


@pytest.fixture
def viewer(console_for: Callable[[tuple[str, str]], Console]) -> Console:
    return console_for(VIEWER)
