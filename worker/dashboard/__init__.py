"""The operator dashboard (`python worker.py dashboard`): the queue, the jobs, the workers and their outputs
in a browser, with retry and cancel. Starlette, Jinja2 and uvicorn are imported in this package only
(an import-linter contract); its SQL is worker/db/queries_dashboard.py. See docs/dashboard.md."""
