"""`python -m hutch`: the same as the `hutch` command."""

from hutch.cli import main

main()
