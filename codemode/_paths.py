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
from pathlib import Path


def cache_dir() -> Path:
    override = os.environ.get("CODEMODE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
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
