"""The preference centre: a small, mobile-first Starlette app recipients reach from their messages."""
