"""`python -m codemode ...` is the `codemode` command."""

import sys

from .cli import main

sys.exit(main())
