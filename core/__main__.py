"""`python -m core` is `llm-train`."""

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main())
