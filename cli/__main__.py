"""``python -m cli``: the same as the ``colorquant`` console script."""

from cli.app import main

main()
