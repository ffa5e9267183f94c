# kinfer-server (src/http, protocol, batcher, metrics, server): its black-box suite (pytest over
# loopback against the built binary, checked with onnxruntime, tritonclient and kserve's client),
# the request-parsing fuzzer, and `make bench-server`. Unit tests are groups of test-runtime.
SERVER_PROTOCOL_SRCS := $(PROTOCOL_SRCS) $(COMMON_SRCS)

TEST_SUITES += server
.PHONY: test-server
test-server: $(BIN)/kinfer-server
	@venv=$$(scripts/pyenv.sh) && KINFER_SERVER=$(ROOT)/$(BIN)/kinfer-server "$$venv/bin/python" -m pytest \
	    -p no:cacheprovider serving-runtime/tests/e2e

# libFuzzer target for V2 JSON, V2 binary and V1 request parsing (and the encoders behind it).
FUZZERS += fuzz_infer_request
$(BUILD)/fuzz/fuzz_infer_request: serving-runtime/fuzz/fuzz_infer_request.c $(SERVER_PROTOCOL_SRCS) \
                                  $(wildcard serving-runtime/src/protocol/*.h serving-runtime/src/common/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ serving-runtime/fuzz/fuzz_infer_request.c $(SERVER_PROTOCOL_SRCS) -ljson-c -lm

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_infer_request

TEST_SUITES += fuzz-request
.PHONY: test-fuzz-request
test-fuzz-request: $(BUILD)/fuzz/fuzz_infer_request
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_infer_request serving-runtime/fuzz/corpus/infer_request $${FUZZ_SECONDS:-20}

# Throughput/latency of kinfer-server vs KServe's Python server and MLServer (both onnxruntime),
# wrk at concurrency 1/16/64, plus kinfer's batching on/off (both MLPs, c=64) and --threads x --instances
# (tiny model) tables; writes docs/benchmarks.md, section "Server". Not part of `make test`.
.PHONY: bench-server
bench-server: $(BIN)/kinfer-server
	@scripts/deps.sh bench
	@py=$$(scripts/pyenv.sh) && peer=$$(scripts/pyenv.sh serving-runtime/bench/requirements.txt) && \
	  "$$py/bin/python" serving-runtime/bench/bench_server.py --kinfer $(BIN)/kinfer-server \
	    --peer-python "$$peer/bin/python" --seconds $${BENCH_SECONDS:-8} --write docs/benchmarks.md
