# Model storage (src/storage): kinfer-fetch, the `fetch` subcommand as a standalone binary, its
# black-box tests against moto's S3 server and loopback HTTP servers, and the parser fuzzer.
STORAGE_SRCS := $(STORAGE_LIB_SRCS) $(COMMON_SRCS) $(LOG_SRCS)
$(eval $(call c_program,kinfer-fetch,$(STORAGE_SRCS) serving-runtime/tools/fetch_main.c,-ljson-c -lcurl -lssl -lcrypto))

# Runs against `kinfer-server fetch` too when kinfer-server is built (tests are parametrized by
# the binaries present in build/bin).
TEST_SUITES += storage
.PHONY: test-storage
test-storage: $(BIN)/kinfer-fetch $(filter $(BIN)/kinfer-server,$(ALL_BINS))
	@venv=$$(scripts/pyenv.sh) && KINFER_BIN=$(ROOT)/$(BIN) "$$venv/bin/python" -m pytest -p no:cacheprovider \
	    serving-runtime/tests/storage

# libFuzzer target for the URI, path and listing parsers.
FUZZERS += fuzz_storage_parse
FUZZ_STORAGE_SRCS := serving-runtime/fuzz/fuzz_storage_parse.c serving-runtime/src/storage/storage_uri.c \
                     serving-runtime/src/storage/storage_list.c serving-runtime/src/common/status.c
$(BUILD)/fuzz/fuzz_storage_parse: $(FUZZ_STORAGE_SRCS) $(wildcard serving-runtime/src/storage/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_STORAGE_SRCS) -ljson-c

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_storage_parse

TEST_SUITES += fuzz-storage
.PHONY: test-fuzz-storage
test-fuzz-storage: $(BUILD)/fuzz/fuzz_storage_parse
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_storage_parse serving-runtime/fuzz/corpus/storage $${FUZZ_SECONDS:-20}
