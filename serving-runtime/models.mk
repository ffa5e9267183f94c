# End-to-end model tests and the engine benchmark (test/models): kinfer-run loads a model through
# the public engine API (onnx_model.h), reads .npy inputs and writes .npy outputs; pytest compares
# them with onnxruntime on scikit-learn, torchvision and all-MiniLM-L6-v2 models. kinfer-run is a
# test tool, not part of kinfer-server.
# engine.mk is read before this fragment (and runtime.mk after it): reuse its source list.
KINFER_RUN_SRCS := $(ENGINE_SRCS) $(ONNX_GEN_C) serving-runtime/tools/run_main.c serving-runtime/tools/npy.c
$(eval $(call c_program,kinfer-run,$(KINFER_RUN_SRCS),-lprotobuf-c -lopenblas -lm))

TEST_SUITES += models
.PHONY: test-models bench-engine
test-models: $(BIN)/kinfer-run $(BIN)/kinfer-onnx-check
	@py=$$(scripts/pyenv.sh) && KINFER_RUN=$(ROOT)/$(BIN)/kinfer-run KINFER_ONNX_CHECK=$(ROOT)/$(BIN)/kinfer-onnx-check \
	  $$py/bin/python -m pytest -p no:cacheprovider test/models

# Latency (batch 1 and 32, 2 threads) and peak RSS, kinfer vs onnxruntime; writes the table into
# docs/benchmarks.md (section "Engine"). Not part of `make test`.
bench-engine: $(BIN)/kinfer-run
	@py=$$(scripts/pyenv.sh) && $$py/bin/python test/models/bench_engine.py \
	  --kinfer-run $(BIN)/kinfer-run --threads 2 --write docs/benchmarks.md

# libFuzzer target for the ai.onnx.ml kernels at run time (load + run on synthetic inputs), seeded
# with small ML graphs; a bounded run is the suite fuzz-ml.
FUZZERS += fuzz_ml_run
FUZZ_ML_SRCS := serving-runtime/fuzz/fuzz_ml_run.c $(ENGINE_SRCS) $(ONNX_GEN_C)
$(BUILD)/fuzz/fuzz_ml_run: $(FUZZ_ML_SRCS) $(ONNX_GEN_H) $(wildcard serving-runtime/src/engine/*.h serving-runtime/src/ops/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_ML_SRCS) -lprotobuf-c -lopenblas -lm

fuzz: $(BUILD)/fuzz/fuzz_ml_run

TEST_SUITES += fuzz-ml
.PHONY: test-fuzz-ml
test-fuzz-ml: $(BUILD)/fuzz/fuzz_ml_run
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_ml_run serving-runtime/fuzz/corpus/ml $${FUZZ_SECONDS:-30}
