"""Contacts: CSV import (``rows.py`` validates a row, pure), export and upsert; the one person record;
``addresses.py``, the one address normaliser (emails, phones to E.164).

The door is ``service.py``.
"""
