# kinfer-controller's integration tests against the real local control plane (test/e2e/), and its
# benchmark. `make test-controller-e2e` brings the cluster up (idempotent), then runs pytest; each
# test starts and kills its own build/bin/kinfer-controller processes.
TEST_SUITES += controller-e2e
.PHONY: test-controller-e2e
test-controller-e2e: $(BIN)/kinfer-controller
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/e2e && "$$venv/bin/python" -m pytest -p no:cacheprovider -v -rs \
	  $(PYTEST_ARGS) test_controller.py


# Not part of `make test`: 1000 InferenceServices through kinfer-controller, and the same children
# server-side applied by a plain parallel client (the floor). Results: docs/benchmarks.md.
# The tools are built here, not in `make all`: ctlbench (Go, client-go) and kinfer-desired (C, the
# controller's own reconcile_desired, so the floor applies byte-identical objects).
CTLBENCH_SRCS := $(wildcard test/bench/ctlbench/*.go test/bench/ctlbench/go.*)
$(BUILD)/bench/ctlbench: $(CTLBENCH_SRCS)
	@mkdir -p $(@D)
	cd test/bench/ctlbench && PATH=$$PATH:/usr/local/go/bin go build -o $(ROOT)/$@ .
$(BUILD)/bench/kinfer-desired: $(OBJ)/test/bench/desired.o $(OBJ)/controller/src/reconcile.o $(OBJ)/controller/src/error.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -ljson-c
.PHONY: bench-controller
bench-controller: $(BIN)/kinfer-controller $(BUILD)/bench/ctlbench $(BUILD)/bench/kinfer-desired
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && "$$venv/bin/python" test/bench/controller_bench.py $(BENCH_ARGS)
