.PHONY: demo test lint typecheck layers check env-table

demo:  ## run the zero-config demo
	bash scripts/demo.sh

test:  ## install test requirements and run the suite
	bash scripts/test.sh

lint:
	bash -c 'source scripts/bootstrap.sh requirements-dev.txt && .venv/bin/ruff check worker handlers utils tests bench worker.py'

typecheck:
	bash -c 'source scripts/bootstrap.sh requirements-dev.txt && .venv/bin/mypy worker handlers utils'

layers:  ## the import contracts in pyproject.toml: worker > handlers > utils, and who imports psycopg, HTTP, subprocess
	bash -c 'source scripts/bootstrap.sh requirements-dev.txt && .venv/bin/lint-imports --no-cache --no-logo'

check: lint typecheck layers test

env-table:  ## the README's table of environment variables
	.venv/bin/python worker.py config --markdown
