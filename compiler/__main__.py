"""``python -m fusec``: the same as the ``fusec`` command."""

from fusec.cli import main

main()
