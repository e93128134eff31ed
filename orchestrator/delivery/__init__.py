"""Delivery: the outbox worker (claim, re-check, build, send, record), retry policy, message factory,
channels (``channels/``: SMTP, .eml files, Twilio, SMS file) and bounces.

The door is ``worker.dispatch_once`` / ``Dispatcher``; channels are adapters behind one Protocol.
"""
