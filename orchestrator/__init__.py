"""Reconsent: re-permission campaigns by email and SMS, with proof of consent."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

#: The project root when running from a checkout (editable install): templates/ and config/ live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
