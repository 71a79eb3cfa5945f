# manhole-ssh: `make demo` runs a live service with a manhole; `make test` runs the tests;
# `make docs` builds the site; `make test-all` runs the suite on every supported CPython;
# `make release-check` builds the wheel and sdist, checks them, and installs the wheel.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 2222
BIN := $(VENV)/bin
KEYS := keys

.PHONY: demo test test-fast test-all lint docs docs-serve release-check keys bench clean

$(BIN)/manhole-ssh: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

# Dev keys: a host key, a client key, and authorized_keys with that key plus your own.
keys: $(KEYS)/ssh_host_ed25519_key $(KEYS)/id_ed25519 $(KEYS)/authorized_keys

$(KEYS)/ssh_host_ed25519_key: | $(BIN)/manhole-ssh
	$(BIN)/manhole-ssh keygen $@

$(KEYS)/id_ed25519: | $(BIN)/manhole-ssh
	$(BIN)/manhole-ssh keygen $@

$(KEYS)/authorized_keys: $(KEYS)/id_ed25519
	umask 077 && cat $(KEYS)/id_ed25519.pub $(wildcard $(HOME)/.ssh/id_*.pub) > $@

demo: $(BIN)/manhole-ssh keys
	$(BIN)/manhole-ssh demo --port $(PORT) --authorized-keys $(KEYS)/authorized_keys \
		--host-key $(KEYS)/ssh_host_ed25519_key

test: $(BIN)/manhole-ssh
	$(BIN)/pytest -n 2

# The suite on each supported CPython found (3.11 to 3.13; pyenv's too), each in a nox venv.
test-all: $(BIN)/nox
	$(BIN)/nox

$(BIN)/nox $(BIN)/twine: $(BIN)/manhole-ssh
	$(BIN)/pip install --quiet -e '.[release]'

$(BIN)/mkdocs: $(BIN)/manhole-ssh
	$(BIN)/pip install --quiet -e '.[docs]'

# The site, into site/; a broken link, a missing snippet file or a bad reference fails it.
docs: $(BIN)/mkdocs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(BIN)/mkdocs
	$(BIN)/mkdocs serve

# python -m build, twine check, then the wheel in a fresh venv runs the quickstart.
release-check: $(BIN)/twine
	$(BIN)/pytest -p no:cacheprovider -m release tests/test_release.py

# What a maintainer runs often: the unit layer, then everything not marked slow.
test-fast: $(BIN)/manhole-ssh
	$(BIN)/pytest -p no:cacheprovider -q tests/test_units.py
	$(BIN)/pytest -n 2 -m "not slow and not release"

lint: $(BIN)/manhole-ssh
	$(BIN)/ruff check manhole_ssh tests $(wildcard bench) docs noxfile.py
	$(BIN)/ruff format --check manhole_ssh tests $(wildcard bench) docs noxfile.py
	$(BIN)/mypy
	$(BIN)/lint-imports

# The figures of bench/, each beside a baseline. sshd (openssh-server) runs the OpenSSH
# baselines on a private port (installing it may also start the system's sshd service).
bench: $(BIN)/manhole-ssh
	@if ! command -v ssh >/dev/null 2>&1 || [ ! -x /usr/sbin/sshd ]; then \
		echo "installing OpenSSH (client, and sshd for the baselines)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq openssh-client openssh-server \
			|| echo "could not install OpenSSH: the sshd baselines will say so"; \
	fi
	$(BIN)/python -c 'import manhole, pexpect, pyte' 2>/dev/null \
		|| $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist site .nox *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -f $(KEYS)/ssh_host_* $(KEYS)/id_* $(KEYS)/authorized_keys
