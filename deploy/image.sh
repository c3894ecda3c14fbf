#!/usr/bin/env bash
# The image's build steps, as a script the Dockerfile runs and CI runs too
# (tests/test_deploy.py), so they are tested where no container runtime is:
#
#   deploy/image.sh PREFIX [SOURCE]
#
# makes PREFIX/venv with codemode (and its telemetry extra) installed from SOURCE (default:
# this checkout), builds the sandbox (and, where a C compiler is, the native worker) into
# PREFIX/cache, and makes that read-only: a pod then starts with the sandbox ready, on a
# read-only root filesystem.
set -euo pipefail
prefix="${1:?usage: deploy/image.sh PREFIX [SOURCE]}"
source="${2:-$(cd "$(dirname "$0")/.." && pwd)}"
python3 -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install -q --no-cache-dir "$source[telemetry]"
CODEMODE_CACHE_DIR="$prefix/cache" "$prefix/venv/bin/codemode" build
chmod -R a-w "$prefix/cache"
"$prefix/venv/bin/codemode" --version
