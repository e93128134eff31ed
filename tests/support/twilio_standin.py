"""A loopback HTTP server speaking the parts of Twilio's REST API we use (Messages create and list).

Driven through the real ``twilio`` client by pointing ``client.api.base_url`` at it. Numbers listed in
``errors`` get Twilio's error body for that code (e.g. 21610 unsubscribed, 21211 invalid). The list
(``GET …/Messages.json``) answers as Twilio does: newest first, filtered by ``To``, ``From`` and
``DateSent``/``DateSent>``/``DateSent<`` (GMT dates, ``YYYY-MM-DD``, or a full timestamp), one page of
``PageSize`` (default 50). Every request is counted in ``requests`` (method, path without the query).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERROR_TEXT = {
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21614: (400, "'To' number is not a valid mobile number"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
}


@dataclass
class TwilioStandIn:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "test-auth-token"
    errors: dict[str, int] = field(default_factory=dict)
    #: codes to answer to the next requests whatever the number (429, 500 … then success)
    next_errors: deque[int] = field(default_factory=deque)
    created: list[dict[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def resource(self, form: dict[str, str]) -> dict[str, Any]:
        """A created message as Twilio's API shows it."""
        return {"sid": form["sid"], "status": form.get("status", "queued"), "to": form.get("To"),
                "from": form.get("From"), "body": form.get("Body"), "account_sid": self.account_sid,
                "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1",
                "date_created": form["date_created"], "date_sent": form["date_created"],
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{form['sid']}.json"}

    def listed(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """The messages a list request with these parameters returns (newest first, one page)."""
        def day(value: str) -> str:
            return value[:10]

        found = []
        for form in reversed(self.created):
            sent = form["date_created_iso"]
            if "To" in query and form.get("To") != query["To"]:
                continue
            if "From" in query and form.get("From") != query["From"]:
                continue
            if "DateSent" in query and sent[:10] != day(query["DateSent"]):
                continue
            if "DateSent>" in query and sent[:10] < day(query["DateSent>"]):
                continue
            if "DateSent<" in query and sent[:10] > day(query["DateSent<"]):
                continue
            found.append(self.resource(form))
        return found[:int(query.get("PageSize", "50"))]

    def start(self) -> TwilioStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                standin.requests.append(("GET", url.path))
                expected = f"/2010-04-01/Accounts/{standin.account_sid}/Messages.json"
                if url.path != expected:
                    return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                if "Authorization" not in self.headers:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with standin._lock:
                    messages = standin.listed(query)
                self._reply(200, {"messages": messages, "end": max(0, len(messages) - 1), "first_page_uri": url.path,
                                  "next_page_uri": None, "page": 0, "page_size": int(query.get("PageSize", "50")),
                                  "previous_page_uri": None, "start": 0, "uri": url.path})

            def do_POST(self) -> None:  # noqa: N802
                standin.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                expected = f"/2010-04-01/Accounts/{standin.account_sid}/Messages.json"
                if self.path != expected:
                    return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                if "Authorization" not in self.headers:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                code = standin.next_errors.popleft() if standin.next_errors else standin.errors.get(form.get("To", ""))
                if code:
                    status, text = ERROR_TEXT.get(code, (400, "error"))
                    return self._reply(status, {"code": code, "message": text, "status": status,
                                                "more_info": f"https://www.twilio.com/docs/errors/{code}"})
                now = datetime.now(UTC)
                with standin._lock:
                    sid = f"SM{next(standin._ids):032x}"
                    created = {**form, "sid": sid, "date_created": format_datetime(now, usegmt=True),
                               "date_created_iso": now.isoformat()}
                    standin.created.append(created)
                self._reply(201, standin.resource(created))

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
