#!/usr/bin/env bash
# The test command: installs what the tests need, checks the import layers, then runs pytest
# (arguments pass through). Uses TEST_DATABASE_URL when set, otherwise an embedded PostgreSQL.
source "$(dirname "$0")/bootstrap.sh" requirements-dev.txt
# The contracts live in pyproject.toml ([tool.importlinter]); the graph is small, so no cache folder.
.venv/bin/lint-imports --no-cache --no-logo
exec .venv/bin/python -m pytest "$@"
