#!/usr/bin/env bash
# The test command: installs what the tests need, then runs pytest (arguments pass through).
# Uses TEST_DATABASE_URL when set, otherwise an embedded PostgreSQL.
source "$(dirname "$0")/bootstrap.sh" requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
