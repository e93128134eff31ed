"""A loopback HTTP server speaking the parts of Twilio's REST API we use (Messages create).

Driven through the real ``twilio`` client by pointing ``client.api.base_url`` at it. Numbers listed in
``errors`` get Twilio's error body for that code (e.g. 21610 unsubscribed, 21211 invalid).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

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
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def start(self) -> TwilioStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
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
                sid = f"SM{next(standin._ids):032x}"
                standin.created.append({**form, "sid": sid})
                self._reply(201, {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From"),
                                  "body": form.get("Body"), "account_sid": standin.account_sid,
                                  "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1",
                                  "uri": f"/2010-04-01/Accounts/{standin.account_sid}/Messages/{sid}.json"})

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
