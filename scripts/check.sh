#!/usr/bin/env bash
# The static checks CI runs before the tests (the README's test command runs this script):
# the import layering (import-linter contracts in pyproject.toml), lint and import order, the
# format, and the types. Each names what to fix; `ruff check --fix . && ruff format .` fixes most.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${VENV:-.venv}/bin"
"$bin/lint-imports"
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy"
