#!/usr/bin/env bash
# The static checks CI runs before the tests (the README's test command runs this script):
# the import layering (import-linter contracts in pyproject.toml), lint and import order, the
# format, the types, and the docs site (a broken link, an anchor that is gone, a page missing from
# the nav, or a config reference that cannot be generated fails it). Each names what to fix;
# `ruff check --fix . && ruff format .` fixes most.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${VENV:-.venv}/bin"
"$bin/lint-imports"
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/mypy"
# Into a temporary directory: a check leaves nothing behind. Not --quiet: it hides the warnings
# that --strict fails on, and then nothing fails. NO_MKDOCS_2_WARNING: mkdocs-material's
# end-of-life banner, which would otherwise open every CI log.
site_dir="$(mktemp -d)"
trap 'rm -rf "$site_dir"' EXIT
NO_MKDOCS_2_WARNING=1 "$bin/mkdocs" build --strict --site-dir "$site_dir"
