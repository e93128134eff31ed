#!/usr/bin/env python3
"""A small bridge from Reconsent to a CRM or sending tool (docs/integrations.md). Standard library only.

Two ways in, one translation:

* ``serve``: receive Reconsent's signed webhooks, check the Standard Webhooks signature and timestamp,
  drop a ``webhook-id`` already seen (deliveries are at least once), and translate the event;
* ``results FILE.csv``: translate every row of ``reconsent campaign results ID`` (a nightly batch, or
  a first full sync).

Each translation is the HTTP request the target's API expects — HubSpot (communication preferences),
Salesforce (ContactPointTypeConsent), Brevo (``emailBlacklisted`` / ``smsBlacklisted``), Mailchimp
(list member status) — printed as one JSON line. With ``--send`` (and ``CRM_TOKEN`` in the
environment) the bridge sends it; without, it is a dry run you can read, test and adapt.

    python crm_bridge.py serve --port 8080 --secret whsec_… --target brevo
    python crm_bridge.py results results.csv --target salesforce --purpose-id 0ZW…

Webhook payloads carry the CRM's ``external_id``, never an address. Brevo and Salesforce can be
addressed by it; HubSpot and Mailchimp key people by email: give ``--emails FILE.csv`` (columns
``external_id,email``, exported from the CRM) or adapt :func:`email_of` to ask the CRM.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 5 * 60
GIVEN = {"granted", "confirmed"}
#: webhook events that say something about a channel's own-marketing consent
CONSENT = {"consent.confirmed", "consent.granted", "consent.declined", "consent.withdrawn", "consent.expired",
           "consent.not_granted", "contact.suppressed"}


# -- Standard Webhooks -------------------------------------------------------------------------------
def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """True when one of the ``v1,`` signatures matches and the timestamp is within 5 minutes."""
    try:
        msg_id, stamp, signatures = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
        if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_SECONDS:
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except (KeyError, ValueError):
        return False
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s.partition(",")[2], expected) for s in signatures.split() if s.startswith("v1,"))


# -- one change, whatever its origin -------------------------------------------------------------------
def change_from_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """A webhook event → ``{external_id, channel, opted_in, at, source, proof}``, or None (not a consent change
    of own marketing: partner sharing, an erasure, a campaign's end)."""
    data = event.get("data", {})
    if event.get("type") not in CONSENT or data.get("purpose", "marketing") != "marketing":
        return None
    opted_in = event["type"] in ("consent.confirmed", "consent.granted")
    return {"external_id": data["external_id"], "channel": data["channel"], "opted_in": opted_in,
            "at": data.get("occurred_at"), "source": data.get("source") or data.get("reason"),
            "proof": data.get("event_hash")}


def changes_from_results(row: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A ``campaign results`` row → one change per channel with a recorded word (``none`` says nothing)."""
    for channel in ("email", "sms"):
        word = row.get(f"{channel}_consent", "none")
        if word != "none":
            yield {"external_id": row["external_id"], "channel": channel, "opted_in": word == "granted",
                   "at": row.get("answered_at") or None, "source": row.get("source") or None,
                   "proof": row.get("event_hash") or None}


# -- the targets ---------------------------------------------------------------------------------------
def email_of(external_id: str, emails: dict[str, str]) -> str | None:
    return emails.get(external_id)


def request_for(target: str, change: dict[str, Any], options: argparse.Namespace,
                lookup: Callable[[str], str | None]) -> dict[str, Any] | None:
    """The HTTP request (method, url, json) that tells ``target`` about ``change``; None when it has no
    way to say it (HubSpot and Mailchimp speak email only; no address known)."""
    ext, channel, opted_in = change["external_id"], change["channel"], change["opted_in"]
    if target == "brevo":
        field = "emailBlacklisted" if channel == "email" else "smsBlacklisted"
        return {"method": "PUT", "url": f"https://api.brevo.com/v3/contacts/{ext}?identifierType=ext_id",
                "json": {field: not opted_in}}
    if target == "salesforce":
        return {"method": "POST", "url": f"{options.instance_url}/services/data/v60.0/sobjects/ContactPointTypeConsent",
                "json": {"Name": f"Reconsent {ext} {channel}", "PartyId": f"{{Individual of Contact {ext}}}",
                         "ContactPointType": "Email" if channel == "email" else "Phone",
                         "DataUsePurposeId": options.purpose_id, "PrivacyConsentStatus": "OptIn" if opted_in else "OptOut",
                         "EffectiveFrom": change["at"], "CaptureDate": change["at"],
                         "CaptureSource": f"Reconsent {change['source']} {change['proof'] or ''}".strip()}}
    if channel != "email":
        return None
    email = lookup(ext)
    if email is None:
        return None
    if target == "hubspot":
        return {"method": "POST",
                "url": f"https://api.hubapi.com/communication-preferences/v4/statuses/{email}",
                "json": {"channel": "EMAIL", "statusState": "SUBSCRIBED" if opted_in else "UNSUBSCRIBED",
                         "subscriptionId": options.subscription_id, "legalBasis": "CONSENT_WITH_NOTICE",
                         "legalBasisExplanation": f"Reconsent {change['source']}, proof {change['proof']}"}}
    if target == "mailchimp":
        member = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
        return {"method": "PATCH",
                "url": f"https://{options.mailchimp_dc}.api.mailchimp.com/3.0/lists/{options.list_id}/members/{member}",
                "json": {"status": "subscribed" if opted_in else "unsubscribed"}}
    raise ValueError(f"unknown target {target!r}")


def send(request: dict[str, Any]) -> int:
    """Send one request with ``CRM_TOKEN`` as its bearer token; returns the HTTP status."""
    req = urllib.request.Request(request["url"], method=request["method"], data=json.dumps(request["json"]).encode(),
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {os.environ['CRM_TOKEN']}"})
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 (the operator's own CRM URL)
        return int(response.status)


def emit(change: dict[str, Any], options: argparse.Namespace, lookup: Callable[[str], str | None],
         origin: str) -> None:
    request = request_for(options.target, change, options, lookup)
    line: dict[str, Any] = {"origin": origin, "external_id": change["external_id"], "channel": change["channel"],
                            "opted_in": change["opted_in"], "request": request}
    if request is not None and options.send:
        line["status"] = send(request)
    print(json.dumps(line, ensure_ascii=False), flush=True)


# -- the two ways in -----------------------------------------------------------------------------------
def serve(options: argparse.Namespace, lookup: Callable[[str], str | None]) -> None:
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if not verify(options.secret, headers, body):
                self.send_response(401)
                self.end_headers()
                return
            msg_id = headers["webhook-id"]
            if msg_id not in seen:  # a retry of what we already handled: answer 2xx, do nothing again
                change = change_from_event(json.loads(body))
                if change is not None:
                    emit(change, options, lookup, msg_id)
                seen.add(msg_id)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((options.host, options.port), Handler)
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def from_results(options: argparse.Namespace, lookup: Callable[[str], str | None]) -> None:
    with open(options.file, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for change in changes_from_results(row):
                emit(change, options, lookup, "results")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["hubspot", "salesforce", "brevo", "mailchimp"], required=True)
    parser.add_argument("--send", action="store_true", help="send the requests (CRM_TOKEN); default: print them")
    parser.add_argument("--emails", help="CSV external_id,email for targets that key people by email")
    parser.add_argument("--subscription-id", default="", help="HubSpot subscription type id")
    parser.add_argument("--instance-url", default="https://example.my.salesforce.com", help="Salesforce instance")
    parser.add_argument("--purpose-id", default="", help="Salesforce DataUsePurpose id (e.g. 'marketing')")
    parser.add_argument("--list-id", default="", help="Mailchimp audience id")
    parser.add_argument("--mailchimp-dc", default="us1", help="Mailchimp data centre (the key's suffix)")
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve", help="receive Reconsent's webhooks")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080, help="0: any free port (printed)")
    s.add_argument("--secret", default=os.environ.get("RECONSENT_WEBHOOK_SECRET", ""), help="the endpoint's whsec_…")
    r = sub.add_parser("results", help="translate a `reconsent campaign results` CSV")
    r.add_argument("file")
    options = parser.parse_args(argv)
    emails: dict[str, str] = {}
    if options.emails:
        with open(options.emails, newline="", encoding="utf-8") as fh:
            emails = {row["external_id"]: row["email"] for row in csv.DictReader(fh)}

    def lookup(external_id: str) -> str | None:
        return email_of(external_id, emails)

    if options.mode == "serve":
        if not options.secret.startswith("whsec_"):
            sys.exit("give the endpoint's secret: --secret whsec_… (or RECONSENT_WEBHOOK_SECRET)")
        serve(options, lookup)
    else:
        from_results(options, lookup)


if __name__ == "__main__":
    main()
