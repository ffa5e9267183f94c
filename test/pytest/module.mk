# The expected-skip checks (docs/testing.md, Expected skips): test/pytest/kinfer_skips.py is a
# pytest plugin loaded into every pytest run of the build, and scripts/check-skips.py checks
# kinfer-onnx-check's skips. `make test-skips` tests both.
export PYTEST_PLUGINS := kinfer_skips
export PYTHONPATH := $(ROOT)/test/pytest$(if $(PYTHONPATH),:$(PYTHONPATH))

TEST_SUITES += skips
.PHONY: test-skips
test-skips:
	@venv=$$(scripts/pyenv.sh) && "$$venv/bin/python" -m pytest -p no:cacheprovider test/pytest
