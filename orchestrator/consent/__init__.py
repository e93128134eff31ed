"""Consent: what people answer (page, one-click, SMS keywords), withdrawals, the hash-chained ledger and the
suppression list.

The door is ``service.py`` (``withdraw``: stop messaging an address, whatever the cause); ``ledger.py``
and ``suppression.py`` are the one writer of their table, ``enrolments.py`` the one transition of a
consent request.
"""
