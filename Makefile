# kinfer: the one entry point.
#
#   make                 build build/bin/{kinfer-controller,kinfer-server,kinfer-onnx-check}
#   make test            every test suite (installs what it needs); SANITIZE=1 for ASan+UBSan
#   make demo            control plane + controller + an InferenceService + a served request
#   make cluster-up / cluster-down     the local Kubernetes control plane
#   make bench-engine / bench-server / bench-controller     benchmarks (not part of `make test`)
#   make fuzz            build the libFuzzer targets (clang) into build/fuzz
#   make format-check    clang-format --dry-run -Werror over every tracked .c/.h (a suite of `make test`)
#
# Each component adds its sources, programs and test suites from its own fragment
# (controller/module.mk, serving-runtime/*.mk, test/*/module.mk); this file holds the rules.

.DEFAULT_GOAL := all
SHELL := /bin/bash
.SUFFIXES:
.DELETE_ON_ERROR:

ROOT     := $(CURDIR)
BUILD    := build
BIN      := $(BUILD)/bin
GEN      := $(BUILD)/gen
SANITIZE ?= 0
VARIANT  := $(if $(filter 1,$(SANITIZE)),san,rel)
OBJ      := $(BUILD)/obj-$(VARIANT)
export KINFER_CACHE ?= $(HOME)/.cache/kinfer

CC := gcc
# Quiet by default: one line per object; V=1 prints full command lines.
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
ifeq ($(SANITIZE),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPT      := -O1
  export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1
  export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
else
  SANFLAGS :=
  OPT      := -O2
endif
# The release version, from the chart (its appVersion names the images the chart installs).
KINFER_VERSION := $(shell awk '$$1 == "appVersion:" { gsub(/"/, "", $$2); print $$2 }' charts/kinfer/Chart.yaml)
CPPFLAGS := -D_GNU_SOURCE -DKINFER_VERSION='"$(KINFER_VERSION)"' -I$(GEN) -I/usr/include/json-c
CFLAGS   := -std=c11 -Wall -Wextra -Werror -g -pthread -MMD -MP $(OPT) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := -pthread $(SANFLAGS) $(EXTRA_LDFLAGS)

# Binaries must relink when the variant changes even if the other variant's objects are older.
# One marker per binary directory ($(BIN) is build/bin, or build/bin-rel for `make images`).
$(shell mkdir -p $(BIN); [ "$$(cat $(BIN)/.variant 2>/dev/null)" = "$(VARIANT)" ] || echo $(VARIANT) > $(BIN)/.variant)

# libFuzzer targets: clang with ASan+UBSan, linked straight from sources into build/fuzz/.
FUZZ_CC := clang -std=c11 -g -O1 -D_GNU_SOURCE -I$(GEN) -I/usr/include/json-c -pthread \
           -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

# $(call c_program,NAME,SOURCES,LIBS): links $(BIN)/NAME from SOURCES (paths from the repo root).
define c_program
$(BIN)/$(1): $(patsubst %.c,$(OBJ)/%.o,$(2)) $(BIN)/.variant
	@mkdir -p $$(@D)
	$$(if $$(Q),@echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(3)
ALL_BINS += $(BIN)/$(1)
endef

# Fragments append to these.
ALL_BINS    :=
TEST_SUITES :=
FUZZERS     :=

.PHONY: all deps pydeps test demo fuzz clean cluster-up cluster-down format format-check
NPROC := $(shell nproc)
all:
	@$(MAKE) --no-print-directory -j$(NPROC) build-all

deps:
	@scripts/deps.sh build

$(OBJ)/%.o: %.c | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

include $(sort $(wildcard controller/module.mk serving-runtime/*.mk test/*/module.mk charts/*.mk))

# Every tracked .c/.h as clang-format writes it with the checked-in .clang-format (`make format`
# fixes it); one suite of `make test`, counted in files.
TEST_SUITES += format-check
.PHONY: format-check test-format-check
format-check:
	@scripts/format-check.sh
test-format-check: format-check

.PHONY: build-all
build-all: $(ALL_BINS)

# Every suite named in TEST_SUITES has a target test-<name>. scripts/test-all.sh runs them in
# order, records each result, and ends with one "N passed, N failed, N skipped" line.
test: deps
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory -j$(NPROC) build-all
	@scripts/test-all.sh $(TEST_SUITES)

demo: deps
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory -j$(NPROC) build-all
	@scripts/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
