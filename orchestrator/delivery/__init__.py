"""Delivery: the outbox worker (``worker``: claim, re-check, build, send, record — the pipeline and its
loop), the outbox queue's statements (``outbox``), the re-check before a send (``recheck``), the one
message factory (``messages``), the retry policy (``retry``, pure), write-behind results
(``recorder``), channels (``channels/``: SMTP, .eml files, Twilio, SMS file) and bounces.

The door is ``worker.dispatch_once`` / ``Dispatcher``; channels are adapters behind one Protocol.
"""
