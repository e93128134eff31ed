"""``python -m orchestrator.cli``: the ``reconsent`` command."""

from orchestrator.cli.main import main

main()
