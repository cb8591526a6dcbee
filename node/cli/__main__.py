"""``python -m node.cli``: the ``coopnode`` command without its installed script."""

from node.cli import main

main()
