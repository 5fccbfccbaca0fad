# agentgate - build, test and benchmark.
#
#   make               build bin/ (gateway, worker, migrate, token tool)
#   make asan          the same with AddressSanitizer + UBSan, into build-asan/
#   make test          unit tests, then integration tests against real
#                      PostgreSQL, Redis, gateway and workers
#   make test-asan     the whole suite on the sanitizer build
#   make check         test, test-asan, then three chaos runs (what CI runs)
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

bench: $(BINS)
	bench/run

# Each run starts its own stack and draws its own seed (printed); the
# options of tests/chaos/chaos.py go in CHAOS_ARGS, e.g. "--seed 7".
CHAOS_RUNS ?= 1
CHAOS_ARGS ?=
.PHONY: chaos
chaos: $(BINS)
	AGENTGATE_BIN=$(abspath $(BUILD)/bin) tests/chaos/run --runs $(CHAOS_RUNS) $(CHAOS_ARGS)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
