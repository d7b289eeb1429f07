"""`python -m rlattack` is the `rlattack` command."""

from rlattack.cli import main

main()
