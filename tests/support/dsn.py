"""Delivery-status notifications as real MTAs write them (RFC 3464), for the bounce tests."""

from __future__ import annotations

POSTFIX_HARD = """\
Return-Path: <>
Date: Wed, 25 Nov 2026 10:02:11 +0100 (CET)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bonjour@boutique-lumiere.example
Message-Id: <{dsn_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="6C0E51A0123.1764061331/mx.example.org"

This is a MIME-encapsulated message.

--6C0E51A0123.1764061331/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: host mx.example.org[192.0.2.1] said: 550 5.1.1 <{rcpt}>:
    Recipient address rejected: User unknown in local recipient table

--6C0E51A0123.1764061331/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 6C0E51A0123
Arrival-Date: Wed, 25 Nov 2026 10:02:10 +0100 (CET)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 {status} <{rcpt}>: Recipient address rejected

--6C0E51A0123.1764061331/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <bonjour@boutique-lumiere.example>
From: Boutique =?utf-8?q?Lumi=C3=A8re?= <bonjour@boutique-lumiere.example>
To: {rcpt}
Subject: =?utf-8?q?Boutique_Lumi=C3=A8re?=
Message-ID: {message_id}

--6C0E51A0123.1764061331/mx.example.org--
"""

EXCHANGE_NO_HEADERS = """\
From: postmaster@outlook.example
To: bonjour@boutique-lumiere.example
Subject: Delivery has failed to these recipients or groups
Message-ID: <{dsn_id}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

Delivery has failed.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns;outlook.example

Final-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}

--b1--
"""


def postfix(rcpt: str, message_id: str, *, status: str = "5.1.1", action: str = "failed", dsn_id: str = "dsn1@mx") -> bytes:
    return POSTFIX_HARD.format(rcpt=rcpt, message_id=message_id, status=status, action=action, dsn_id=dsn_id).encode()


def exchange(rcpt: str, *, status: str, action: str, dsn_id: str) -> bytes:
    return EXCHANGE_NO_HEADERS.format(rcpt=rcpt, status=status, action=action, dsn_id=dsn_id).encode()
