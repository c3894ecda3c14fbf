"""Where codemode keeps files of its own, in one place for every part.

- cache: the compiled sandbox and learned tool shapes; safe to delete (rebuilt or relearned).
  `$CODEMODE_CACHE_DIR`, else the user cache dir (~/.cache/codemode on Linux).
- config: `config.json`; `$CODEMODE_CONFIG` names the file itself (see `config.py`).
- data: what must be kept, and kept private: the OAuth tokens of remote servers
  (`oauth/`, owner-only). `$CODEMODE_DATA_DIR`, else the user data dir
  (~/.local/share/codemode on Linux).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    override = os.environ.get("CODEMODE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    if sys.platform == "linux" and not hasattr(sys, "getandroidapilevel"):
        # What platformdirs answers on Linux (the XDG rule: the variable when it is an
        # absolute path, else ~/.cache), without importing it: ~8 ms of every start.
        # Where HOME is relative, platformdirs decides. (Only the cache: a folder named
        # otherwise costs a rebuild, nothing else; config and data ask platformdirs.)
        xdg, home = os.environ.get("XDG_CACHE_HOME", ""), os.environ.get("HOME")
        if os.path.isabs(xdg):
            return Path(xdg) / "codemode"
        if home is None or os.path.isabs(home):
            return Path(os.path.expanduser("~/.cache")) / "codemode"
    import platformdirs

    return Path(platformdirs.user_cache_dir("codemode"))


def data_dir() -> Path:
    override = os.environ.get("CODEMODE_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("codemode"))


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("codemode"))


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if needed; a folder this makes is owner-only."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    return path
