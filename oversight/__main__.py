"""`python -m oversight`: the same as the `oversight` command."""

import sys

from oversight.cli import main

if __name__ == "__main__":
    sys.exit(main())
