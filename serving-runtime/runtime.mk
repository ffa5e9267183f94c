# kinfer-server and its engine. Sources by directory (see ARCHITECTURE.md):
#   src/common  status, pbuf (buffer)    src/engine  loader, planner, runtime (onnx_model.h)
#   src/ops     kernels                  src/server, http, protocol, batcher, storage, metrics, log
#   (src/log needs json-c, which the engine-only binaries do not link, so it is not in common)
# The engine's lists (COMMON_SRCS, ENGINE_SRCS) come from engine.mk; the protocol, storage and
# log libraries are listed here once, and server.mk and storage.mk (read later) use them.
# src/server/main.c holds kinfer-server's main().
PROTOCOL_SRCS         := $(sort $(wildcard serving-runtime/src/protocol/*.c))
STORAGE_LIB_SRCS      := $(sort $(wildcard serving-runtime/src/storage/*.c))
LOG_SRCS              := $(sort $(wildcard serving-runtime/src/log/*.c))
RUNTIME_SERVER_SRCS   := $(sort $(wildcard serving-runtime/src/http/*.c serving-runtime/src/batcher/*.c \
                           serving-runtime/src/metrics/*.c serving-runtime/src/server/*.c)) \
                         $(PROTOCOL_SRCS) $(STORAGE_LIB_SRCS) $(LOG_SRCS)
RUNTIME_LIB_SRCS    := $(ENGINE_SRCS) $(filter-out serving-runtime/src/server/main.c,$(RUNTIME_SERVER_SRCS))
RUNTIME_LIBS        := -lwebsockets -ljson-c -lyaml -lcurl -lssl -lcrypto -lprotobuf-c -lopenblas -lm
RUNTIME_TEST_SRCS   := $(sort $(wildcard serving-runtime/tests/*.c))

ifneq ($(wildcard serving-runtime/src/server/main.c),)
$(eval $(call c_program,kinfer-server,$(ENGINE_SRCS) $(RUNTIME_SERVER_SRCS),$(RUNTIME_LIBS)))
endif
$(eval $(call c_program,test-runtime,$(RUNTIME_LIB_SRCS) $(RUNTIME_TEST_SRCS),$(RUNTIME_LIBS) -lcmocka))

TEST_SUITES += runtime-unit
.PHONY: test-runtime-unit
test-runtime-unit: $(BIN)/test-runtime
	$(BIN)/test-runtime
