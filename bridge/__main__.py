"""`python -m bridge` runs the `mender-bridge` command line."""

from bridge.cli import main

main()
