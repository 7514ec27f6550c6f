"""`python -m dcsentry.cli`: the same command as the `dcsentry` script (tests and benches use it)."""

from . import main

main()
