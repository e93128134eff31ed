"""A logo given as an https address, in a real browser (issue 16 §1): Chromium loads it on the
preference page from a loopback https server (a trustme certificate), because the page's CSP names
exactly that origin; an image from any other origin stays blocked."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.rendering.brand import read_brand, save_brand
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.live_server import live_server
from tests.support.smtp import free_port

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("RECONSENT_TEST_CHROMIUM") or "/usr/bin/chromium"
# a 1×1 PNG
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@contextmanager
def https_images(pem: Path) -> Iterator[tuple[str, list[str]]]:
    """An https server on a free loopback port answering every path with the PNG; yields its origin
    and the paths asked for."""
    asked: list[str] = []

    async def image(request: Any) -> Response:
        asked.append(request.url.path)
        return Response(PNG, media_type="image/png")

    app = Starlette(routes=[Route("/{path:path}", image)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None,
                                           lifespan="off", ssl_certfile=str(pem), ssl_keyfile=str(pem)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the https image server did not start")
        time.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}", asked
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_logo_address_loads_on_the_page_and_no_other_origin_does(
        make_rt: Callable[..., Runtime], write_csv: Callable[..., Path], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it or set RECONSENT_TEST_CHROMIUM")
    rt = make_rt()
    campaign_id = launch(rt, write_csv([person(1)]), steps=[{"day": 0, "channel": "email", "template": "reconsent"}])
    pem = tmp_path / "loopback.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    with https_images(pem) as (logo_origin, logo_asked), https_images(pem) as (other_origin, other_asked):
        save_brand(rt, {"sender_name": "", "logo_url": f"{logo_origin}/brand/logo.png", "colour": "",
                        "privacy_url": ""}, {})
        assert read_brand(rt, fresh=True).logo_url == f"{logo_origin}/brand/logo.png"
        token = rt.links.dumps("page", LinkClaims(1, campaign_id, "email"))
        with live_server(create_app(rt)) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(ignore_https_errors=True)  # the loopback CA is not the system's
            page = context.new_page()
            blocked: list[str] = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/p/{token}")
            logo = page.locator("img.logo")
            page.wait_for_function("() => document.querySelector('img.logo').complete")
            assert logo.get_attribute("src") == f"{logo_origin}/brand/logo.png"
            assert logo.evaluate("img => img.naturalWidth") == 1 and logo_asked == ["/brand/logo.png"]
            # the same image from another https origin: refused by the page's CSP, never requested
            loaded = page.evaluate("""src => new Promise(done => {
                const img = new Image(); img.onload = () => done(true); img.onerror = () => done(false);
                img.src = src; document.body.append(img); })""", f"{other_origin}/x.png")
            assert loaded is False and other_asked == []
            assert any(other_origin in text for text in blocked), blocked
            browser.close()
