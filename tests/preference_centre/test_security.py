"""Security of the preference centre [P5, T2]: headers everywhere, no redirects, error pages that leak
nothing, friendly limits, and tokens scrubbed from uvicorn's real access log."""

from __future__ import annotations

import io
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient
from uvicorn.logging import AccessFormatter

from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from orchestrator.ops.server import ScrubTokens, install_log_scrubber
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.live_server import live_server

EXPECTED = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
}


@pytest.fixture
def links(rt: Runtime, write_csv: Callable[..., Path]) -> dict[str, str]:
    campaign_id = launch(rt, write_csv([person(1)]))
    claims = LinkClaims(1, campaign_id, "email")
    return {p: rt.links.dumps(p, claims) for p in ("page", "unsubscribe", "rights")}


def _check_headers(resp: object, *, static: bool = False) -> None:
    headers = resp.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "unsafe-inline" not in csp
    for name, value in EXPECTED.items():
        if name == "cache-control" and static:  # the stylesheet holds no token: cacheable
            value = "public, max-age=86400"
        assert headers[name] == value, name
    assert "location" not in headers and "set-cookie" not in headers


def test_every_response_has_the_security_headers_and_none_redirects(rt: Runtime, links: dict[str, str]) -> None:
    client = TestClient(create_app(rt), follow_redirects=False)
    p, u, r = links["page"], links["unsubscribe"], links["rights"]
    responses = [
        client.get(f"/p/{p}"), client.get(f"/p/{p}?lang=en"), client.get(f"/u/{u}"), client.get(f"/r/{r}"),
        client.get(f"/r/{r}/erase"), client.post(f"/r/{r}/export"), client.get("/static/style.css"),
        client.get("/p/bad"), client.get("/nowhere"), client.get("//evil.example/x"),
        client.get(f"/p/{p}?next=https://evil.example/"), client.delete(f"/p/{p}"), client.get("/healthz"),
        client.post(f"/p/{p}", data={"action": "confirm", "email": "yes"}),
        client.post(f"/u/{u}", data={"List-Unsubscribe": "One-Click"}),
    ]
    assert [x.status_code for x in responses] == [200, 200, 200, 200, 200, 200, 200, 400, 404, 404, 200, 405,
                                                 200, 200, 200]
    for resp in responses:
        _check_headers(resp, static=resp is responses[6])
        assert "evil.example" not in resp.text
        assert "<script" not in resp.text and "@import" not in resp.text and "@font-face" not in resp.text
        # no third-party resource: the only absolute URL a page carries is the privacy notice link
        assert set(re.findall(r'(?:src|href)="(https?:[^"]+)"', resp.text)) <= {rt.config.sender.privacy_url}


def test_language_switch_is_a_query_only_link(rt: Runtime, links: dict[str, str]) -> None:
    client = TestClient(create_app(rt))
    html = client.get("//evil.example/x").text
    assert 'href="?lang=en"' in html and "//evil" not in html
    assert 'href="?lang=fr"' in client.get(f"/p/{links['page']}?lang=en").text


def test_error_pages_leak_nothing(rt: Runtime, links: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    rt.__dict__["engine"] = create_engine("sqlite:////nonexistent-folder/reconsent.db")  # database down
    client = TestClient(create_app(rt), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="reconsent.web"):
        resp = client.get(f"/p/{links['page']}", headers={"Accept-Language": "en"})
    assert resp.status_code == 500 and "Nothing was changed" in resp.text
    for leak in ("Traceback", "sqlite", "OperationalError", "nonexistent", links["page"]):
        assert leak not in resp.text
    _check_headers(resp)
    assert links["page"] not in caplog.text


def test_limits_answer_with_friendly_pages(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(server={"post_rate_per_minute": 2, "max_body_bytes": 500})
    client = TestClient(create_app(rt))
    big = client.post("/p/x", content=b"a=" + b"b" * 1000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413 and "trop volumineuse" in big.text
    _check_headers(big)
    codes = [client.post("/p/x", data={"a": "b"}, headers={"Accept-Language": "en"}) for _ in range(3)]
    assert [c.status_code for c in codes] == [400, 400, 429]
    assert "Too many attempts" in codes[-1].text and codes[-1].headers["retry-after"] == "60"
    _check_headers(codes[-1])
    assert client.get("/healthz").status_code == 200  # GETs are not rate-limited


def test_tokens_never_reach_uvicorn_access_log(rt: Runtime, links: dict[str, str]) -> None:
    """The production order (`reconsent serve`): install the scrubber, then uvicorn configures logging."""
    install_log_scrubber()
    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access = logging.getLogger("uvicorn.access")
    try:
        with live_server(create_app(rt), configure_logging=True) as base:
            access.addHandler(capture)
            paths = [f"/p/{links['page']}?lang=en", f"/u/{links['unsubscribe']}", f"/r/{links['rights']}",
                     f"/r/{links['rights']}/erase", f"/p/{links['page'][:-4]}AAAA"]
            for path in paths:
                try:
                    urllib.request.urlopen(base + path, timeout=10).read()
                except urllib.error.HTTPError as exc:  # the tampered one: 400
                    assert exc.code == 400
    finally:
        access.removeHandler(capture)
        for name in ("uvicorn.access", "uvicorn.error", "reconsent", "reconsent.web"):
            logger = logging.getLogger(name)
            for f in [f for f in logger.filters if isinstance(f, ScrubTokens)]:
                logger.removeFilter(f)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == len(paths)
    assert '"GET /p/[token]?lang=en HTTP/1.1" 200' in lines[0]
    assert '"GET /r/[token]/erase HTTP/1.1" 200' in lines[3]
    for token in links.values():
        assert token not in buffer.getvalue() and token.split(".")[0] not in buffer.getvalue()
