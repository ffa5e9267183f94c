# kinfer-controller: the operator. Sources are controller/src/main.c (main()) and every .c in its
# rooms, lowest first: common, kube, reconcile, rollout, runtime (docs/architecture.md).
CONTROLLER_ROOMS     := common kube reconcile rollout runtime
CONTROLLER_SRCS      := $(foreach r,$(CONTROLLER_ROOMS),$(sort $(wildcard controller/src/$(r)/*.c))) controller/src/main.c
CONTROLLER_HDRS      := $(wildcard controller/src/*/*.h)
CONTROLLER_LIB_SRCS  := $(filter-out controller/src/main.c,$(CONTROLLER_SRCS))
CONTROLLER_LIBS      := -lcurl -ljson-c -lyaml -lssl -lcrypto -lz
CONTROLLER_TEST_SRCS := $(sort $(wildcard controller/tests/*.c))

ifneq ($(wildcard controller/src/main.c),)
$(eval $(call c_program,kinfer-controller,$(CONTROLLER_SRCS),$(CONTROLLER_LIBS)))
endif
$(eval $(call c_program,test-controller,$(CONTROLLER_LIB_SRCS) $(CONTROLLER_TEST_SRCS),$(CONTROLLER_LIBS) -lcmocka))

TEST_SUITES += controller-unit
.PHONY: test-controller-unit
test-controller-unit: $(BIN)/test-controller
	$(BIN)/test-controller

# libFuzzer target for the watch stream (framer, event parser, informer cache): `make fuzz`
# builds it; the fuzz-watch suite runs it for FUZZ_SECONDS (default 20).
FUZZERS += fuzz_watch_stream
FUZZ_WATCH_SRCS := controller/fuzz/fuzz_watch_stream.c $(addprefix controller/src/,kube/framer.c kube/informer.c kube/objstore.c kube/pack.c \
                   common/strmap.c kube/kube.c kube/kubeconfig.c common/metrics.c common/log.c kube/backoff.c common/error.c common/jsonx.c)
$(BUILD)/fuzz/fuzz_watch_stream: $(FUZZ_WATCH_SRCS) $(CONTROLLER_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_WATCH_SRCS) $(CONTROLLER_LIBS)
.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_watch_stream

# libFuzzer target for the canary analysis' inputs: scraped Prometheus text and spec.predictor.rollout.
FUZZERS += fuzz_scrape
FUZZ_SCRAPE_SRCS := controller/fuzz/fuzz_scrape.c $(addprefix controller/src/,rollout/scrape.c rollout/rollout.c common/error.c common/jsonx.c)
$(BUILD)/fuzz/fuzz_scrape: $(FUZZ_SCRAPE_SRCS) $(CONTROLLER_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -o $@ $(FUZZ_SCRAPE_SRCS) $(CONTROLLER_LIBS)
fuzz: $(BUILD)/fuzz/fuzz_scrape
TEST_SUITES += fuzz-scrape
.PHONY: test-fuzz-scrape
test-fuzz-scrape: $(BUILD)/fuzz/fuzz_scrape
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_scrape controller/fuzz/corpus/scrape $${FUZZ_SECONDS:-20}

TEST_SUITES += fuzz-watch
.PHONY: test-fuzz-watch
test-fuzz-watch: $(BUILD)/fuzz/fuzz_watch_stream
	@controller/fuzz/run.sh $(BUILD)/fuzz/fuzz_watch_stream controller/fuzz/corpus/watch $${FUZZ_SECONDS:-20}
