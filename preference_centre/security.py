"""What every answer of the web server carries and every request must respect: security headers, a
request body limit and a per-client rate limit. One middleware (:class:`Guard`) applies them; the
public pages, the /twilio webhooks and the /admin console each configure one.

- Headers: added to every response that does not set its own (a view may, e.g. the console's
  sandboxed email preview); ``cache-control: public, max-age=86400`` on a 200 under ``static_prefix``.
  ``headers`` may be a function, read per response (the public pages' CSP names the origin of the
  brand's logo when it is an https address, and the brand can change while the server runs).
- Body limit: a ``content-length`` above ``max_body`` is refused before the app runs, and a body that
  grows past it while read (chunked) is refused as soon as it does.
- Body timeout: the whole body must arrive within ``body_timeout`` seconds, with no pause longer than
  that inside it, else 408 and the connection is closed (a slow-body client holds no socket for long).
  A gate may set other limits for one request in ``scope["state"]["body_limits"]`` = (max_body,
  seconds): the console gives signed-in operators its upload limit and the time to send it.
- Rate limit: :class:`RateLimit` keeps, per client address, the times of its requests in the last
  60 s; the guard asks it for the requests ``rate_limited(scope)`` selects (public POSTs). A request
  ``rate_key(scope)`` names (a genuine one-click unsubscribe link) is counted under that name
  instead of its address: a mailbox provider posting for thousands of people from one address is
  never refused for the others' unsubscribes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

SECURITY_HEADERS: Headers = [
    (b"content-security-policy", (b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                  b"frame-ancestors 'none'; base-uri 'none'")),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"permissions-policy", b"interest-cohort=()"),
]

#: The public pages' headers, with the CSP opened to frames from the console itself (only its own
#: sandboxed email previews), to its own script files (the template editor's live preview; every
#: form works without them) and a same-origin opener policy.
CONSOLE_HEADERS: Headers = [
    (name, value + b"; frame-src 'self'; script-src 'self'" if name == b"content-security-policy" else value)
    for name, value in SECURITY_HEADERS
] + [(b"cross-origin-opener-policy", b"same-origin")]

STATIC_CACHE = (b"cache-control", b"public, max-age=86400")
HSTS = (b"strict-transport-security", b"max-age=31536000")


def headers_for(base_url: str, base: Headers, *, img_origins: Sequence[str] = ()) -> Headers:
    """``base``, plus ``Strict-Transport-Security`` when the public URL is https (a browser that saw
    it never tries plain http again; on an http instance it would mean nothing, so it is left out);
    the CSP's ``img-src`` also allows ``img_origins`` (each an :func:`image_origin`: the brand's logo
    given as an address).

    >>> [n for n, _ in headers_for("https://prefs.example.com", [])], headers_for("http://127.0.0.1:8000", [])
    ([b'strict-transport-security'], [])
    >>> headers_for("http://x", SECURITY_HEADERS, img_origins=["https://cdn.example.com"])[0][1].split(b"; ")[2]
    b"img-src 'self' https://cdn.example.com"
    """
    headers = [*base, HSTS] if base_url.lower().startswith("https://") else list(base)
    origins = [o for o in img_origins if image_origin(o) == o]
    if not origins:
        return headers
    extra = (" " + " ".join(origins)).encode("ascii")
    return [(name, value.replace(b"img-src 'self'", b"img-src 'self'" + extra, 1)
             if name == b"content-security-policy" else value) for name, value in headers]


def image_origin(url: str | None) -> str | None:
    """The origin (``https://host[:port]``) of an https address, for the CSP's ``img-src``; None for
    anything else (plain http, a wildcard, a host no CSP source can name).

    >>> image_origin("https://CDN.example.com/a/logo.png?v=2"), image_origin("https://127.0.0.1:8443/l.png")
    ('https://cdn.example.com', 'https://127.0.0.1:8443')
    >>> image_origin("http://cdn.example.com/l.png"), image_origin("https://*.example.com/l.png")
    (None, None)
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not host or not _HOST.fullmatch(host):
        return None
    return f"https://{host}" + (f":{port}" if port else "")


_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")

#: builds the answer for a refused request (413, 429, or a gate's own refusal)
Refusal = Callable[[Request], Response]


def add_headers(response: Response, headers: Headers) -> Response:
    """The headers a response lacks, for answers made outside a :class:`Guard` (Starlette's 500s).

    >>> from starlette.responses import PlainTextResponse
    >>> r = add_headers(PlainTextResponse("x", headers={"cache-control": "no-cache"}), SECURITY_HEADERS)
    >>> r.headers["cache-control"], r.headers["x-frame-options"]
    ('no-cache', 'DENY')
    """
    for name, value in headers:
        response.headers.setdefault(name.decode(), value.decode())
    return response


class RateLimit:
    """At most ``per_minute`` requests per client address in any 60 s; ``now`` gives seconds.

    >>> t = [0.0]
    >>> limit = RateLimit(2, lambda: t[0])
    >>> [limit.allow("a") for _ in range(3)], limit.allow("b")
    ([True, True, False], True)
    >>> t[0] = 60.0; limit.allow("a")
    True
    """

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self.hits: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str) -> bool:
        now = self.now()
        window = self.hits[client]
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        if len(self.hits) > 10_000:  # forget idle clients so the table cannot grow without bound
            for ip in [ip for ip, w in self.hits.items() if not w or now - w[-1] >= 60]:
                del self.hits[ip]
        return True


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def too_slow(request: Request) -> Response:
    """408, and the connection closed: the client was sending its body too slowly."""
    return PlainTextResponse("Request timeout: the request took too long to arrive.", status_code=408,
                             headers={"connection": "close"})


class Guard:
    """Headers, body limit and (optionally) rate limit around an ASGI app; see the module docstring.

    ``gate(request)`` runs first and may answer instead of the app (the console's 404 before any
    admin exists) or prepare the scope (the console's session); ``too_large`` and ``too_many`` build
    the refusals.
    """

    def __init__(self, app: ASGIApp, *, headers: Headers | Callable[[], Headers], max_body: int, too_large: Refusal,
                 rate_limit: RateLimit | None = None, too_many: Refusal | None = None,
                 rate_limited: Callable[[Scope], bool] = lambda scope: False,
                 rate_key: Callable[[Scope], str | None] | None = None,
                 static_prefix: str | None = None,
                 gate: Callable[[Request], Response | None] | None = None,
                 body_timeout: float | None = None) -> None:
        self.app = app
        self.headers = headers
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.too_large = too_large
        self.rate_limit = rate_limit
        self.too_many = too_many
        self.rate_limited = rate_limited
        #: what a limited request is counted under: ``rate_key(scope)`` when it names something (a
        #: genuine signed link), else the client address
        self.rate_key = rate_key
        self.static_prefix = static_prefix
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Static files carry no token: let phones keep them a day instead of re-fetching them per page.
        static_ok = self.static_prefix is not None and scope["path"].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present: list[Any] = list(message.get("headers", []))
                names = {k.lower() for k, _ in present}
                if static_ok and message.get("status") == 200:
                    names.add(STATIC_CACHE[0])
                    present.append(STATIC_CACHE)
                ours = self.headers() if callable(self.headers) else self.headers
                message["headers"] = present + [(k, v) for k, v in ours if k not in names]
            await send(message)

        async def answer(refusal: Refusal) -> None:
            await refusal(Request(scope, receive))(scope, receive, send_with_headers)

        if self.gate is not None:
            early = self.gate(Request(scope, receive))
            if early is not None:
                await early(scope, receive, send_with_headers)
                return
        max_body, total = (scope.get("state") or {}).get("body_limits") or (self.max_body, self.body_timeout)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            await answer(self.too_large)
            return
        if self.rate_limit is not None and self.rate_limited(scope):
            key = self.rate_key(scope) if self.rate_key is not None else None
            client = key if key is not None else (scope.get("client") or ("?", 0))[0]
            if not self.rate_limit.allow(client):
                assert self.too_many is not None
                await answer(self.too_many)
                return

        received = 0
        complete = False
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        pause = self.body_timeout

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete or deadline is None or pause is None:  # once the body is in, only the disconnect is awaited
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, min(pause, deadline - loop.time())))
                except TimeoutError:
                    raise _TooSlow() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > max_body:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except _TooLarge:
            await answer(self.too_large)
        except _TooSlow:
            await answer(too_slow)
