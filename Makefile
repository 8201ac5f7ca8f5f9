# gpt-pipe: `make demo` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PREFIX ?= $(HOME)/.local
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all demo test bench install uninstall man lint clean
all: test

# The virtual environment, with the project (editable) and its test tools.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# setuptools' nine-line notice about editable installs says nothing a user can act on.
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) tests/server.py --demo --run 'echo "Hello" | gpt-pipe'
	@echo >&2
	@echo "gpt-pipe is in $(VENV)/bin/gpt-pipe; 'make install' puts it in $(PREFIX)/bin (PREFIX=... to choose)," >&2
	@echo "and 'python3 tests/server.py --port 8080' serves this demo for your own tries." >&2

test: $(STAMP)
	$(PY) -m pytest -q

# The benchmark runs a regular (not editable) install, as users get it, in a venv of its own.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: $(wildcard gpt_pipe/*.py) setup.cfg pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet --force-reinstall --no-deps .
	$(BENCH_VENV)/bin/python -m pip install --quiet .
	@touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/bench.py $(BENCH_ARGS)

# The command in a virtual environment of its own under PREFIX/lib, linked into
# PREFIX/bin, and the man page into PREFIX/share/man/man1.
install:
	$(PYTHON) -m venv --clear $(DESTDIR)$(PREFIX)/lib/gpt-pipe
	$(DESTDIR)$(PREFIX)/lib/gpt-pipe/bin/python -m pip install --quiet .
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	ln -sf $(PREFIX)/lib/gpt-pipe/bin/gpt-pipe $(DESTDIR)$(PREFIX)/bin/gpt-pipe
	install -m 644 man/gpt-pipe.1 $(DESTDIR)$(PREFIX)/share/man/man1/gpt-pipe.1
	@case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo "note: $(PREFIX)/bin is not on your PATH; add" \
		"export PATH=\"$(PREFIX)/bin:\$$PATH\" to your shell's profile (~/.profile, ~/.zshrc)" >&2 ;; esac

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/lib/gpt-pipe
	rm -f $(DESTDIR)$(PREFIX)/bin/gpt-pipe $(DESTDIR)$(PREFIX)/share/man/man1/gpt-pipe.1

# The man page is written by hand; this checks that it renders without a warning.
man:
	groff -man -ww -z man/gpt-pipe.1

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(VENV)/bin/ruff check gpt_pipe tests bench

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info .pytest_cache .hypothesis
