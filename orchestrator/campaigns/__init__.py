"""Campaigns: create, preview, launch, pause/resume, status and results; the deadline sweep; evergreen enrolment.

The door is ``service.py`` (and ``sweep.py``/``evergreen.py`` for the scheduled jobs): public functions own
their transaction. Depends on domain, store, rendering, consent, contacts.
"""
