"""``python -m gridmap`` runs the CLI."""

from gridmap.cli import main

main()
