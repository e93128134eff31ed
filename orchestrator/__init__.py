"""Reconsent: re-permission campaigns by email and SMS, with proof of consent.

Shipped files (templates, default config) are found through :mod:`orchestrator.resources`; an
instance's own files (config, database, outboxes) live in the folder the operator chooses
(:mod:`orchestrator.ops.instance`), never next to the installed code.
"""

from __future__ import annotations

__version__ = "0.1.0"
