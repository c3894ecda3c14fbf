"""A "browser" for sign-in tests: opens the address it is given and follows every
redirect, as a person's browser would after they click "allow" (the test authorization
servers approve at once). Used as $BROWSER, which Python's `webbrowser` honours.

    python browser.py URL
"""

from __future__ import annotations

import sys
import urllib.request

if __name__ == "__main__":
    with urllib.request.urlopen(sys.argv[1], timeout=30) as page:
        page.read()
