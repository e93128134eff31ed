"""Rendering: message templates (shipped and stored, versioned, checked), compiled forms, signed links.

No database access except ``template_store.py`` (the store of imported templates).
"""
