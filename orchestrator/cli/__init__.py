"""The ``reconsent`` command: one module per command group, registered on the main group."""
