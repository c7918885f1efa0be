"""``python -m cli``: the ``alloop`` command."""

from cli.main import main

main()
