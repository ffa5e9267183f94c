# kinfer-controller: the operator. Sources are every controller/src/*.c; main.c holds main().
CONTROLLER_SRCS      := $(sort $(wildcard controller/src/*.c))
CONTROLLER_LIB_SRCS  := $(filter-out controller/src/main.c,$(CONTROLLER_SRCS))
CONTROLLER_LIBS      := -lcurl -ljson-c -lyaml -lssl -lcrypto
CONTROLLER_TEST_SRCS := $(sort $(wildcard controller/tests/*.c))

ifneq ($(wildcard controller/src/main.c),)
$(eval $(call c_program,kinfer-controller,$(CONTROLLER_SRCS),$(CONTROLLER_LIBS)))
endif
$(eval $(call c_program,test-controller,$(CONTROLLER_LIB_SRCS) $(CONTROLLER_TEST_SRCS),$(CONTROLLER_LIBS) -lcmocka))

TEST_SUITES += controller-unit
.PHONY: test-controller-unit
test-controller-unit: $(BIN)/test-controller
	$(BIN)/test-controller
