# The two quick-start commands: `make serve` and `make test`.
# Both install what they need first: pipenv into a tool virtualenv (.tools/,
# never the system Python), then exactly Pipfile.lock into .venv/.

# The Python Heroku builds with (.python-version) when it is installed, else
# python3: any Python 3.11 or newer works.
PYTHON ?= $(or $(shell command -v python$(shell cat .python-version) 2>/dev/null),python3)
PIPENV := .tools/bin/pipenv
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_IGNORE_VIRTUALENVS := 1
export PIPENV_VERBOSITY := -1

.PHONY: serve test test-fast lint

serve: .venv/.synced
	$(PIPENV) run start

test: .venv/.synced
	$(PIPENV) run test

# The first two tiers: no servers started (tests/unit, tests/app).
test-fast: .venv/.synced
	$(PIPENV) run test-fast

lint: .venv/.synced
	$(PIPENV) run lint

$(PIPENV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "pipenv==2026.10.3"

# verify: a Pipfile changed without `pipenv lock` fails here, as Heroku's
# `pipenv install --deploy` would fail the build.
.venv/.synced: Pipfile Pipfile.lock | $(PIPENV)
	$(PIPENV) verify
	$(PIPENV) sync --dev
	touch $@
