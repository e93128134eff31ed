"""The one log scrubber (orchestrator/ops/logs.py): what it removes and, as much, what it keeps.

Before issue 13 two scrubbers disagreed (one left ``/r/`` rights tokens in place, the other swallowed
a token's sub-path) and both turned IP addresses and dates into ``[phone]``.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import date, datetime, time

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.ops.logs import IP_POLICIES, Scrub, install_log_scrubber, scrub_text
from orchestrator.ops.server import ScrubTokens
from orchestrator.resources import DEFAULT_CONFIG

_TOKEN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=8, max_size=60)
_REGIONS = ["FR", "BE", "CH", "DE", "GB", "ES", "IT", "NL", "US", "CA"]
_FORMATS = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL]


@given(kind=st.sampled_from("purs"), token=_TOKEN, tail=st.sampled_from(["", "/renew", "/erase", "/export", "?lang=en"]))
def test_every_link_token_is_masked_and_its_sub_path_kept(kind: str, token: str, tail: str) -> None:
    line = f'127.0.0.1:58340 - "GET /{kind}/{token}{tail} HTTP/1.1" 200'
    out = scrub_text(line, ip_addresses="full")
    assert out == f'127.0.0.1:58340 - "GET /{kind}/[token]{tail} HTTP/1.1" 200'


@given(day=st.dates(), moment=st.datetimes(), at=st.times(), n=st.integers(min_value=0, max_value=10**12),
       x=st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"))
def test_dates_times_and_plain_numbers_are_kept(day: date, moment: datetime, at: time, n: int, x: str) -> None:
    line = f"due {day.isoformat()} sent {moment.isoformat()} at {at.isoformat()}, {n} rows in {x} s"
    for policy in IP_POLICIES:
        assert scrub_text(line, ip_addresses=policy) == line


def test_the_asctime_of_a_text_line_and_a_json_timestamp_are_kept() -> None:
    for line in ("2026-12-30 09:15:02,120 reconsent.dispatch INFO 3 sent", "2026-12-30T09:15:02.120+00:00",
                 "deadline 30/12/2026, 12:30", "row 1234567890 retried 3 times"):
        assert scrub_text(line) == line


@given(ip=st.ip_addresses(v=4))
def test_ipv4_addresses_follow_the_policy(ip: ipaddress.IPv4Address) -> None:
    assume(not (ip.is_loopback or ip.is_unspecified))  # the machine's own: always kept (test below)
    line = f"client {ip}:58340 asked"
    assert scrub_text(line, ip_addresses="full") == line
    network = ipaddress.ip_network(f"{ip}/24", strict=False).network_address
    assert scrub_text(line, ip_addresses="truncated") == f"client {network}:58340 asked"
    assert scrub_text(line, ip_addresses="none") == "client [ip]:58340 asked"


@given(ip=st.ip_addresses(v=6))
def test_ipv6_addresses_follow_the_policy(ip: ipaddress.IPv6Address) -> None:
    assume(not (ip.is_loopback or ip.is_unspecified))  # the machine's own: always kept (test below)
    line = f"client [{ip}]:443 asked"
    assert scrub_text(line, ip_addresses="full") == line
    network = ipaddress.ip_network(f"{ip}/48", strict=False).network_address
    assert scrub_text(line, ip_addresses="truncated") == f"client [{network}]:443 asked"
    assert scrub_text(line, ip_addresses="none") == "client [[ip]]:443 asked"


@given(local=st.from_regex(r"[a-z][a-z0-9._+-]{0,20}", fullmatch=True),
       domain=st.sampled_from(["example.org", "exemple.fr", "mail.example.co.uk"]))
def test_email_addresses_are_masked(local: str, domain: str) -> None:
    out = scrub_text(f"bounce for {local}@{domain} (5.1.1)")
    assert out == "bounce for [email] (5.1.1)"


@settings(max_examples=60)
@given(region=st.sampled_from(_REGIONS), fmt=st.sampled_from(_FORMATS),
       kind=st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
def test_phone_numbers_are_masked_in_every_usual_form(region: str, fmt: int, kind: int) -> None:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    text = phonenumbers.format_number(number, fmt)
    out = scrub_text(f"SMS to {text} queued")
    assert out == "SMS to [phone] queued", text


def test_message_ids_and_secrets() -> None:
    assert scrub_text("Message-ID <rc.abc123@exemple.example> ok") == "Message-ID <rc.abc123@exemple.example> ok"
    assert scrub_text("GET /twilio/status?signature=abcdef&x=1") == "GET /twilio/status?signature=[secret]&x=1"


def test_the_access_log_filter_is_the_one_scrubber_and_keeps_arguments() -> None:
    """``ops.server``'s filter is ``ops.logs.Scrub``: rights tokens, addresses and dates are treated alike."""
    assert ScrubTokens is Scrub
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("203.0.113.77:58340", "GET", "/r/eyJjIjo3fQ.abc.def/erase?d=2026-12-30", "1.1", 200),
                               None)
    assert Scrub("truncated", keep_args=True).filter(record)
    assert record.args == ("203.0.113.0:58340", "GET", "/r/[token]/erase?d=2026-12-30", "1.1", 200)
    assert record.getMessage() == '203.0.113.0:58340 - "GET /r/[token]/erase?d=2026-12-30 HTTP/1.1" 200'


def test_install_log_scrubber_uses_the_setting() -> None:
    logger = logging.getLogger("reconsent.web")
    install_log_scrubber("none")
    try:
        record = logger.makeRecord("reconsent.web", logging.INFO, __file__, 1, "from %s", ("192.0.2.1",), None)
        for f in logger.filters:
            assert not isinstance(f, logging.Filter) or f.filter(record)
        assert record.getMessage() == "from [ip]"
    finally:
        for name in ("uvicorn.access", "uvicorn.error", "reconsent", "reconsent.web"):
            for f in [f for f in logging.getLogger(name).filters if isinstance(f, Scrub)]:
                logging.getLogger(name).removeFilter(f)


def test_the_setting_is_checked() -> None:
    assert load_config(DEFAULT_CONFIG, env={}).logging.ip_addresses == "truncated"
    assert load_config(DEFAULT_CONFIG, env={"RECONSENT_LOGGING__IP_ADDRESSES": "none"}).logging.ip_addresses == "none"
    with pytest.raises(ConfigError, match="IP_ADDRESSES: expected one of full, none, truncated"):
        load_config(DEFAULT_CONFIG, env={"RECONSENT_LOGGING__IP_ADDRESSES": "half"})
    with pytest.raises(ValueError, match="ip_addresses"):
        Scrub("half")


def test_the_machines_own_addresses_stay_so_a_server_says_where_it_listens() -> None:
    from orchestrator.ops.logs import scrub_text

    for policy in ("full", "truncated", "none"):
        line = "Uvicorn running on http://127.0.0.1:8000 and [::1]:8000, bound to 0.0.0.0"
        assert scrub_text(line, ip_addresses=policy) == line
    assert scrub_text("client 192.0.2.77:5000", ip_addresses="truncated") == "client 192.0.2.0:5000"


def test_database_urls_lose_their_password_in_log_lines() -> None:
    """Issue 15: a URL's password stayed in a log line (an exception's text) when its host had no dot."""
    line = scrub_text("OperationalError for postgresql+psycopg://app:Secr3t@localhost/crm?password=Other1 x")
    assert line == "OperationalError for postgresql+psycopg://app:***@localhost/crm?password=[secret] x"
