# agentgate - build, test and benchmark.
#
#   make               build bin/ (gateway, worker, migrate, token tool)
#   make asan          the same with AddressSanitizer + UBSan, into build-asan/
#   make test          unit tests, then integration tests against real
#                      PostgreSQL, Redis, gateway and workers
#   make test-asan     the whole suite on the sanitizer build
#   make check         test, test-asan, fuzz, then three chaos runs (what CI runs)
#   make fuzz          the libFuzzer targets, FUZZ_SECONDS (60) each, into build-fuzz/
#   make bench         the benchmark suite (prints numbers, never fails tests)
#   make chaos         the chaos suite: jobs under worker kills and Redis and
#                      PostgreSQL restarts (CHAOS_RUNS=N runs, CHAOS_ARGS=...)

BUILD   ?= build
# Debian's interpreter, which has python3-pytest, before any user-local one.
PYTHON  ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
CC      ?= cc
PKGS    := evhtp libevent libevent_pthreads hiredis libpq libcjson libcurl
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Icommon -Igateway -Iworker \
           $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS))) -MMD -MP
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lmbedcrypto -lpthread -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC  := $(wildcard common/*.c)
GATEWAY_SRC := $(filter-out gateway/main.c gateway/token_main.c,$(wildcard gateway/*.c))
WORKER_SRC  := $(filter-out worker/main.c,$(wildcard worker/*.c))
UNIT_SRC    := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS := $(BUILD)/bin/agentgate-gateway $(BUILD)/bin/agentgate-worker \
        $(BUILD)/bin/agentgate-migrate $(BUILD)/bin/agentgate-token
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.SECONDARY:
.PHONY: all asan check test test-unit test-integration test-asan bench clean
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libgateway.a: $(call obj,$(GATEWAY_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libworker.a: $(call obj,$(WORKER_SRC))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/bin/agentgate-gateway: $(call obj,gateway/main.c) $(BUILD)/libgateway.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-token: $(call obj,gateway/token_main.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-worker: $(call obj,worker/main.c) $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-migrate: $(call obj,sql/migrate.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# A unit test links only the archive members it uses.
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(BUILD)/libgateway.a $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

# What CI runs: the whole suite, then again under the sanitizers. The
# parts run one after the other (they share ports) even under make -j.
check:
	$(MAKE) test
	$(MAKE) test-asan
	$(MAKE) fuzz
	$(MAKE) chaos CHAOS_RUNS=3

test:
	$(MAKE) test-unit
	$(MAKE) test-integration

test-unit: $(UNIT_BINS)
	@tests/unit/run $(UNIT_BINS)

test-integration: $(BINS)
	AGENTGATE_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q tests/integration

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 test

# The benchmark's own clients (bench/*.c), built with the same warnings.
BENCH_TOOLS := $(BUILD)/bench/sseload $(BUILD)/bench/joblat
$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) $< -o $@ $(shell pkg-config --libs libevent)

bench: $(BINS) $(BENCH_TOOLS)
	AGENTGATE_BIN=$(abspath $(BUILD)/bin) BENCH_TOOLS=$(abspath $(BUILD)/bench) bench/run

# Each run starts its own stack and draws its own seed (printed); the
# options of tests/chaos/chaos.py go in CHAOS_ARGS, e.g. "--seed 7".
CHAOS_RUNS ?= 1
CHAOS_ARGS ?=
.PHONY: chaos
chaos: $(BINS)
	AGENTGATE_BIN=$(abspath $(BUILD)/bin) tests/chaos/run --runs $(CHAOS_RUNS) $(CHAOS_ARGS)

# libFuzzer targets (tests/fuzz/fuzz_*.c) built with clang, ASan and UBSan
# against the code they test, each run for FUZZ_SECONDS on a copy of its
# seed corpus (tests/fuzz/run); any crash, leak or UB fails the run.
FUZZ_BUILD   ?= $(BUILD)-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Wno-unused-parameter \
                -Icommon -Igateway $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS))) \
                $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LIB_SRC := $(COMMON_SRC) gateway/router.c gateway/sse_frame.c
.PHONY: fuzz fuzz-build
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/libfuzzed.a: $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC))
	@rm -f $@; ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libfuzzed.a
	@echo "  LD      $@"
	@$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
fuzz-build: $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))
fuzz: fuzz-build
	tests/fuzz/run --bin $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) --max-len $(FUZZ_MAX_LEN) $(FUZZ_TARGETS)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
