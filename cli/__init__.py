"""The ``alloop`` command: one module per command group."""
