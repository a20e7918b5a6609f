"""``python -m gridmap.cli`` runs the CLI (as ``python -m gridmap``)."""

from gridmap.cli import main

main()
