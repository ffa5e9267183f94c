# kinfer's ONNX engine: protobuf-c code generated from Debian's onnx.proto, kinfer-onnx-check,
# the ONNX node conformance suite, and the model-loader fuzzer.
ONNX_PROTO   := /usr/include/onnx/onnx.proto
ONNX_GEN_C   := $(GEN)/onnx/onnx.pb-c.c
ONNX_GEN_H   := $(GEN)/onnx/onnx.pb-c.h
ONNX_NODE_DIR ?= /usr/share/libonnx-testdata/data/node

# protoc-c writes next to its --proto_path-relative name; generate into build/gen/onnx/.
$(ONNX_GEN_C) $(ONNX_GEN_H) &: $(ONNX_PROTO)
	@mkdir -p $(GEN)/onnx
	cp $(ONNX_PROTO) $(GEN)/onnx/onnx.proto
	cd $(GEN)/onnx && protoc-c --c_out=. onnx.proto

# One source list per library, each written once. This fragment is read first (then models,
# runtime, server, storage), so the engine's lists live here: src/common (status, the capped
# buffer) and the engine itself (loader, planner, runtime, kernels).
COMMON_SRCS := $(sort $(wildcard serving-runtime/src/common/*.c))
ENGINE_SRCS := $(COMMON_SRCS) $(sort $(wildcard serving-runtime/src/engine/*.c serving-runtime/src/ops/*.c))
ENGINE_CHECK_SRCS := $(sort $(wildcard serving-runtime/src/check/*.c))
# Every engine/test object may include the generated header (the generic %.o rule compiles the
# generated .c like ours).
$(patsubst %.c,$(OBJ)/%.o,$(ENGINE_SRCS) $(ENGINE_CHECK_SRCS) $(wildcard serving-runtime/tests/*.c) \
    $(wildcard serving-runtime/fuzz/*.c)): $(ONNX_GEN_H)

# Both programs that contain the engine need the generated object.
$(BIN)/test-runtime: $(OBJ)/$(GEN)/onnx/onnx.pb-c.o
ifneq ($(wildcard serving-runtime/src/server/main.c),)
$(BIN)/kinfer-server: $(OBJ)/$(GEN)/onnx/onnx.pb-c.o
endif

$(eval $(call c_program,kinfer-onnx-check,$(ENGINE_SRCS) $(ENGINE_CHECK_SRCS) $(ONNX_GEN_C),-lprotobuf-c -lopenblas -lm))

# Every skip (an input the engine refuses as unsupported) must be in the checked-in list with its
# reason: a new skip, or a listed one with another reason, fails the suite (scripts/check-skips.py).
ONNX_EXPECTED_SKIPS := serving-runtime/tests/onnx-expected-skips.txt
TEST_SUITES += onnx
.PHONY: test-onnx
test-onnx: $(BIN)/kinfer-onnx-check
	set -o pipefail; $(BIN)/kinfer-onnx-check $(ONNX_NODE_DIR)/*/ | scripts/check-skips.py $(ONNX_EXPECTED_SKIPS)

# libFuzzer target for the model loader (clang; ASan + UBSan), and a bounded run as a test suite.
FUZZERS += fuzz_model_load
FUZZ_MODEL_SRCS := serving-runtime/fuzz/fuzz_model_load.c $(ENGINE_SRCS) $(ONNX_GEN_C)
$(BUILD)/fuzz/fuzz_model_load: $(FUZZ_MODEL_SRCS) $(ONNX_GEN_H) $(wildcard serving-runtime/src/engine/*.h serving-runtime/src/ops/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_MODEL_SRCS) -lprotobuf-c -lopenblas -lm

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_model_load

TEST_SUITES += fuzz-model
.PHONY: test-fuzz-model
test-fuzz-model: $(BUILD)/fuzz/fuzz_model_load
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_model_load serving-runtime/fuzz/corpus/model $${FUZZ_SECONDS:-30}

# Kernels are compiled at -O3: gcc 12 only auto-vectorizes the elementwise, epilogue and
# depthwise loops at -O3 (at -O2 its very-cheap cost model leaves them scalar).
ifneq ($(SANITIZE),1)
$(OBJ)/serving-runtime/src/ops/%.o: CFLAGS += -O3
endif
