"""`python -m runtime`: see runtime/app/cli.py."""

import sys

from runtime.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
