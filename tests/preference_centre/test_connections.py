"""Connection hygiene (issue 15), on a real uvicorn server started with the options `reconsent serve`
and `reconsent run` use (:func:`orchestrator.ops.server.uvicorn_options`), driven by raw sockets: slow
headers and slow bodies are cut off, idle keep-alive connections close, a cap on connections holds.
Before, 1,500 slow-body connections each stayed open 30 s, and a connection that sent nothing stayed
open for ever."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from orchestrator.ops.server import uvicorn_options
from orchestrator.rendering.links import LinkClaims
from orchestrator.runtime import Runtime
from preference_centre.app import create_app
from tests.support.factories import launch, person
from tests.support.smtp import free_port


@contextmanager
def served(rt: Runtime) -> Iterator[int]:
    port = free_port()
    options = {**uvicorn_options(rt), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, lifespan="off", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> tuple[bytes, float]:
    """Everything until the server closes the connection, and how long that took."""
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def test_headers_that_do_not_arrive_in_time_close_the_connection(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(server={"header_timeout_seconds": 0.5})
    with served(rt) as port:
        silent, half = _connect(port), _connect(port)
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: prefs.example.com\r\nX-Slow: ")
        for sock in (silent, half):
            data, took = _read_all(sock)
            assert data == b"" and took < 3, took
            sock.close()
        fine = _connect(port)  # a request sent at once is not affected
        fine.sendall(b"GET /healthz HTTP/1.1\r\nHost: prefs.example.com\r\nConnection: close\r\n\r\n")
        assert _read_all(fine)[0].startswith(b"HTTP/1.1 200")
        fine.close()


def test_a_slow_body_gets_a_408_and_the_connection_closes(make_rt: Callable[..., Runtime],
                                                          write_csv: Callable[..., Path]) -> None:
    rt = make_rt(server={"body_timeout_seconds": 0.8})
    token = rt.links.dumps("unsubscribe", LinkClaims(1, launch(rt, write_csv([person(1)])), "email"))
    head = (f"POST /u/{token} HTTP/1.1\r\nHost: prefs.example.com\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n")
    with served(rt) as port:
        stalled = _connect(port)
        stalled.sendall(head + b"List-Unsubscribe=One")
        data, took = _read_all(stalled)
        assert data.startswith(b"HTTP/1.1 408") and took < 4, (data[:40], took)
        assert b"x-frame-options: DENY" in data and b"connection: close" in data
        stalled.close()
        # a trickle (one byte every 0.3 s: no single pause is too long) is cut off by the total time
        trickle = _connect(port)
        trickle.sendall(head)
        started, answer = time.monotonic(), b""
        trickle.settimeout(0.3)
        while not answer and time.monotonic() - started < 10:
            try:
                trickle.sendall(b"a")
                answer = trickle.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
        assert answer.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 4
        trickle.close()


def test_idle_keep_alive_connections_close(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(server={"keep_alive_seconds": 1})
    with served(rt) as port:
        sock = _connect(port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: prefs.example.com\r\n\r\n")
        data, took = _read_all(sock)
        assert data.startswith(b"HTTP/1.1 200") and 0.5 < took < 4, took
        sock.close()


def test_connections_beyond_the_cap_get_503_and_huge_headers_400(make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(server={"max_connections": 4, "max_header_bytes": 2048, "header_timeout_seconds": 30})
    with served(rt) as port:
        held = [_connect(port) for _ in range(4)]
        time.sleep(0.2)
        extra = _connect(port)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: prefs.example.com\r\nConnection: close\r\n\r\n")
        assert _read_all(extra)[0].startswith(b"HTTP/1.1 503")
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.2)
        big = _connect(port)
        big.sendall(b"GET /healthz HTTP/1.1\r\nHost: prefs.example.com\r\nX-Big: " + b"a" * 4096)
        time.sleep(0.2)  # headers still incomplete past the limit: refused without waiting for the rest
        big.sendall(b"\r\n\r\n")
        assert _read_all(big)[0].startswith(b"HTTP/1.1 400")
        big.close()
