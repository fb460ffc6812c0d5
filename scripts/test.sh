#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, starts the
# services it uses, checks lint and types, and runs the whole suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k store`).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
if ! python3 -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    python3 -m pip install --quiet "uv==$UV_VERSION"
fi
uv() { python3 -m uv "$@"; }

# PostgreSQL for the store tests (Debian's package, a throwaway cluster on 127.0.0.1).
eval "$(bash scripts/postgres.sh | tail -n 1)"

# Debian's chromium for the dashboard's browser tests: Playwright drives it by path
# (tests/web/test_browser.py); Playwright's own browser download is not used.
if ! command -v chromium >/dev/null 2>&1; then
    if [[ $EUID -ne 0 ]]; then
        echo "test.sh: chromium is not installed and we are not root: run 'apt-get install -y chromium' as root." >&2
        exit 1
    fi
    echo "test.sh: installing Debian's chromium package" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
fi

# Python packages, llama-cpp-python compiled (about 3 minutes on 2 cores) and the model.
# Bytecode is compiled once here (about 17 s): the tests start many Python processes, and
# where PYTHONDONTWRITEBYTECODE is set each would otherwise compile heldout's imports
# again (1.4 s a process).
uv sync --frozen --compile-bytecode --all-extras

uv run ruff check src tests bench
uv run ruff format --check src tests bench
uv run mypy

uv run pytest "$@"
