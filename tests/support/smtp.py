"""A real SMTP server (aiosmtpd) on loopback that records what it accepts, with scripted replies."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    #: replies to give to the next DATA commands instead of accepting ("451 4.3.0 try later")
    data_replies: deque[str] = field(default_factory=deque)
    #: recipient → RCPT reply ("550 5.1.1 no such user")
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    #: seconds to wait before answering DATA (to provoke client timeouts)
    data_delay: float = 0.0
    #: logins accepted by the authenticator, in order
    logins: list[str] = field(default_factory=list)
    #: the name each EHLO gave, in order
    helo_names: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        self.helo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_replies:
            return self.data_replies.popleft()
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """aiosmtpd on loopback. ``tls`` (a server-side SSLContext) enables STARTTLS, or implicit TLS with
    ``implicit_tls``; ``credentials`` (user, password) makes AUTH mandatory (after TLS)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 credentials: tuple[str, str] | None = None, smtputf8: bool = True, port: int | None = None,
                 handler: RecordingHandler | None = None) -> None:
        self.handler = handler or RecordingHandler()
        self.port = port or free_port()
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if credentials is not None:
            kwargs.update(auth_required=True, authenticator=self._authenticator(credentials),
                          auth_require_tls=tls is not None)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        handler = self.handler

        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(), auth_data.password.decode()) == credentials
            if ok:
                handler.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        return check

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> SmtpServer:
        """Drop every connection (as a relay restart would) and listen again on the same port."""
        self.controller.stop()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    @property
    def received(self) -> list[Received]:
        return self.handler.received
