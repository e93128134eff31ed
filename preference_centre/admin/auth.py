"""Console accounts now live in :mod:`orchestrator.accounts.service`; this name stays for the CLI's
``users add`` (``orchestrator/cli``), which still imports ``add_user`` from here."""

from orchestrator.accounts.service import add_user

__all__ = ["add_user"]
