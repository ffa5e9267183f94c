# kinfer-controller's integration tests against the real local control plane (test/e2e/), and its
# benchmark. `make test-controller-e2e` brings the cluster up (idempotent), then runs pytest; each
# test starts and kills its own build/bin/kinfer-controller processes.
TEST_SUITES += controller-e2e
.PHONY: test-controller-e2e
# test_canary.py also runs kinfer-server processes as the canaries' metric sources (and
# test_canary_podip.py runs them on the canary pods' own loopback IPs, from a kwok node whose
# podCIDR is in 127.0.0.0/8, so the controller scrapes http://<podIP>:8080 directly), and a real
# Prometheus for the --prometheus-address source: built from its Go module like promtool
# (test/cluster/tools/prometheus), cached by version.
PROMETHEUS_VERSION := v0.310.0
PROMETHEUS_CACHED  := $(KINFER_CACHE)/prometheus-$(PROMETHEUS_VERSION)/prometheus
PROMETHEUS_BIN     := $(BUILD)/cluster/bin/prometheus
$(PROMETHEUS_CACHED):
	@mkdir -p $(@D)
	cd test/cluster/tools/prometheus && PATH=$$PATH:/usr/local/go/bin CGO_ENABLED=0 go build -tags remove_all_sd -trimpath \
	  -ldflags '-s -w' -o $@.tmp github.com/prometheus/prometheus/cmd/prometheus
	mv $@.tmp $@
$(PROMETHEUS_BIN): $(PROMETHEUS_CACHED)
	@mkdir -p $(@D)
	ln -sf $(abspath $<) $@

test-controller-e2e: $(BIN)/kinfer-controller $(BIN)/kinfer-server $(PROMETHEUS_BIN)
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/e2e && "$$venv/bin/python" -m pytest -p no:cacheprovider -v -rs \
	  $(PYTEST_ARGS) test_controller.py test_autoscale_pods.py test_canary.py test_canary_podip.py test_pause.py


# The examples (examples/*.yaml and examples/models/): server-side dry runs, reconciled by
# kinfer-controller into their documented children, example models checked against onnxruntime
# through kinfer-run, and docs/api.md regenerated from the CRD and diffed (scripts/gen-api-docs.py).
TEST_SUITES += examples
.PHONY: test-examples
test-examples: $(BIN)/kinfer-controller $(BIN)/kinfer-run
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && cd test/e2e && "$$venv/bin/python" -m pytest -p no:cacheprovider -v -rs \
	  $(PYTEST_ARGS) test_examples.py

# Not part of `make test`: 1000 InferenceServices through kinfer-controller, and the same children
# server-side applied by a plain parallel client (the floor). Results: docs/benchmarks.md.
# The tools are built here, not in `make all`: ctlbench (Go, client-go) and kinfer-desired (C, the
# controller's own reconcile_desired, so the floor applies byte-identical objects).
CTLBENCH_SRCS := $(wildcard test/bench/ctlbench/*.go test/bench/ctlbench/go.*)
$(BUILD)/bench/ctlbench: $(CTLBENCH_SRCS)
	@mkdir -p $(@D)
	cd test/bench/ctlbench && PATH=$$PATH:/usr/local/go/bin go build -o $(ROOT)/$@ .
$(BUILD)/bench/kinfer-desired: $(OBJ)/test/bench/desired.o $(OBJ)/controller/src/reconcile/reconcile.o $(OBJ)/controller/src/reconcile/podspec.o \
                               $(OBJ)/controller/src/reconcile/autoscale.o $(OBJ)/controller/src/common/jsonx.o \
                               $(OBJ)/controller/src/common/error.o
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -ljson-c
.PHONY: bench-controller
bench-controller: $(BIN)/kinfer-controller $(BUILD)/bench/ctlbench $(BUILD)/bench/kinfer-desired
	@$(MAKE) --no-print-directory cluster-up
	@venv=$$(scripts/pyenv.sh) && "$$venv/bin/python" test/bench/controller_bench.py $(BENCH_ARGS)

# libFuzzer target for the controller's pure API functions (reconcile_desired/handover,
# status_compute): `make fuzz` builds it; the fuzz-reconcile suite runs it for FUZZ_SECONDS (default 20).
FUZZERS += fuzz_reconcile
FUZZ_RECONCILE_SRCS := controller/fuzz/fuzz_reconcile.c $(CONTROLLER_LIB_SRCS)
$(BUILD)/fuzz/fuzz_reconcile: $(FUZZ_RECONCILE_SRCS) $(CONTROLLER_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_RECONCILE_SRCS) $(CONTROLLER_LIBS)
fuzz: $(BUILD)/fuzz/fuzz_reconcile
TEST_SUITES += fuzz-reconcile
.PHONY: test-fuzz-reconcile
test-fuzz-reconcile: $(BUILD)/fuzz/fuzz_reconcile
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_reconcile controller/fuzz/corpus/reconcile $${FUZZ_SECONDS:-20}
