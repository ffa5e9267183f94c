# kinfer-controller's integration tests against the real local control plane (test/e2e/), and its
# benchmark. `make test-controller-e2e` brings the cluster up (idempotent), then runs pytest; each
# test starts and kills its own build/bin/kinfer-controller processes.
TEST_SUITES += controller-e2e
.PHONY: test-controller-e2e
test-controller-e2e: $(BIN)/kinfer-controller
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/e2e && "$$venv/bin/python" -m pytest -p no:cacheprovider -v -rs \
	  $(PYTEST_ARGS) test_controller.py

