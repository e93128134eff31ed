"""Contacts: CSV import (``rows.py`` validates a row, pure), export and upsert; the one person record.

The door is ``service.py``.
"""
