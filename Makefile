# agentgate - build, test and benchmark.
#
#   make               build bin/ (gateway, worker, migrate, token and MCP tools,
#                      and the agentgate client CLI)
#   make asan          the same with AddressSanitizer + UBSan, into build-asan/
#   make test          the layer check, unit tests, the OpenAPI lint, then integration
#                      tests against real PostgreSQL, Redis, gateway and workers
#   make openapi-lint  lints GET /openapi.json's document with Redocly's CLI
#   make test-asan     the whole suite on the sanitizer build
#   make check         test, test-asan, fuzz, then three chaos runs (what CI runs)
#   make layers        checks that no #include reaches up a layer or closes a circle
#   make fuzz          the libFuzzer targets, FUZZ_SECONDS (60) each, into build-fuzz/
#   make bench         the benchmark suite (prints numbers, never fails tests)
#   make chaos         the chaos suite: jobs under worker kills and Redis and
#                      PostgreSQL restarts (CHAOS_RUNS=N runs, CHAOS_ARGS=...)

BUILD   ?= build
# Debian's interpreter, which has python3-pytest, before any user-local one.
PYTHON  ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
CC      ?= cc
PKGS    := evhtp libevent libevent_pthreads hiredis libpq libcjson libcurl libsystemd
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) \
           $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS))) -MMD -MP
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lmbedcrypto -lpthread -lm

# The layers, lowest first, one line per program (docs/architecture.md
# shows the same order; `make layers` checks the two agree). A folder
# compiles with the include paths of itself and of the folders before it
# on its line, and of nothing else, so an #include that reaches up a layer
# fails the build. A folder's unit tests (tests/unit/<folder>/) compile
# as the folder does.
LAYERS_GATEWAY := common gateway/core gateway/store gateway/admit gateway/sse gateway/api gateway
LAYERS_WORKER  := common worker/runtime worker/llm worker/tools worker/agent worker
LAYERS_CLIENT  := common client
# Command-line tools sit on the layer they use.
LAYER_OF_gateway/cmd := common
LAYER_OF_worker/cmd  := worker/tools
LAYER_OF_sql         := common

# $(call upto,W,LIST): the words of LIST up to and including W.
upto = $(if $(2),$(firstword $(2)) $(if $(filter $(1),$(firstword $(2))),,$(call upto,$(1),$(wordlist 2,$(words $(2)),$(2)))))
# $(call layer_dirs,FOLDER): the folders FOLDER may include from.
layer_dirs = $(strip $(if $(LAYER_OF_$(1)),$(call layer_dirs,$(LAYER_OF_$(1))),\
             $(if $(filter $(1),$(LAYERS_GATEWAY)),$(call upto,$(1),$(LAYERS_GATEWAY)),\
             $(if $(filter $(1),$(LAYERS_WORKER)),$(call upto,$(1),$(LAYERS_WORKER)),\
             $(if $(filter $(1),$(LAYERS_CLIENT)),$(call upto,$(1),$(LAYERS_CLIENT)),\
             $(error no layer for folder '$(1)': add it to the Makefile's layer lines))))))
# The -I flags for source file $(1) (a unit test compiles as the folder it tests).
src_folder = $(patsubst tests/unit/%,%,$(patsubst %/,%,$(dir $(1))))
layer_inc = $(addprefix -I,$(call layer_dirs,$(call src_folder,$(1))))

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

COMMON_SRC  := $(wildcard common/*.c)
GATEWAY_SRC := $(wildcard gateway/core/*.c gateway/store/*.c gateway/admit/*.c \
                          gateway/sse/*.c gateway/api/*.c gateway/dispatch.c \
                          gateway/notify.c)
WORKER_SRC  := $(wildcard worker/runtime/*.c worker/llm/*.c worker/tools/*.c worker/agent/*.c) \
               worker/handler_table.c
CLIENT_SRC  := $(filter-out client/main.c,$(wildcard client/*.c))
UNIT_SRC    := $(shell find tests/unit -name 'test_*.c' | sort)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CONSOLE_OBJ := $(BUILD)/obj/gen/console_assets.o

BINS := $(BUILD)/bin/agentgate-gateway $(BUILD)/bin/agentgate-worker \
        $(BUILD)/bin/agentgate-migrate $(BUILD)/bin/agentgate-token $(BUILD)/bin/agentgate-mcp \
        $(BUILD)/bin/agentgate
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.SECONDARY:
.PHONY: all asan check test test-unit test-integration test-asan bench clean layers
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(call layer_inc,$<) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libgateway.a: $(call obj,$(GATEWAY_SRC)) $(CONSOLE_OBJ)
	@rm -f $@; ar rcs $@ $^

# The web console's files (console/) are compiled into the gateway: a
# generated source holds each file's bytes, media type and ETag
# (gateway/api/console_embed.py), compiled as gateway/api code. The folder
# itself is a prerequisite so that adding or removing a file regenerates.
CONSOLE_FILES := $(sort $(wildcard console/*.html console/*.js console/*.css console/*.svg))
CONSOLE_GEN   := $(BUILD)/gen/console_assets.c
$(CONSOLE_GEN): gateway/api/console_embed.py $(CONSOLE_FILES) console
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@$(PYTHON) gateway/api/console_embed.py $@ $(CONSOLE_FILES)
$(CONSOLE_OBJ): $(CONSOLE_GEN)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(call layer_inc,gateway/api/api_console.c) -c $< -o $@
$(BUILD)/libworker.a: $(call obj,$(WORKER_SRC))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/bin/agentgate-gateway: $(call obj,gateway/main.c) $(BUILD)/libgateway.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-token: $(call obj,gateway/cmd/token.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-worker: $(call obj,worker/main.c) $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-mcp: $(call obj,worker/cmd/mcp.c) $(BUILD)/libworker.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/bin/agentgate-migrate: $(call obj,sql/migrate.c) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
# The client CLI (client/): libcurl, cJSON and common only.
$(BUILD)/libclient.a: $(call obj,$(CLIENT_SRC))
	@rm -f $@; ar rcs $@ $^
$(BUILD)/bin/agentgate: $(call obj,client/main.c) $(BUILD)/libclient.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# A unit test links only the archive members it uses.
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(BUILD)/libgateway.a $(BUILD)/libworker.a $(BUILD)/libclient.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

# What CI runs: the whole suite, then again under the sanitizers. The
# parts run one after the other (they share ports) even under make -j.
check:
	$(MAKE) layers
	$(MAKE) test
	$(MAKE) test-asan
	$(MAKE) fuzz
	$(MAKE) chaos CHAOS_RUNS=3

test:
	$(MAKE) layers
	$(MAKE) test-unit
	$(MAKE) openapi-lint
	$(MAKE) test-integration

test-unit: $(UNIT_BINS)
	@tests/unit/run $(UNIT_BINS)

test-integration: $(BINS) mcp-servers
	AGENTGATE_BIN=$(abspath $(BUILD)/bin) $(PYTHON) -m pytest -q tests/integration

# The reference MCP servers the tests run, pinned by tests/mcp/package-lock.json.
MCP_SERVERS := tests/mcp/node_modules/.package-lock.json
.PHONY: mcp-servers
mcp-servers: $(MCP_SERVERS)
$(MCP_SERVERS): tests/mcp/package.json tests/mcp/package-lock.json
	cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error

# Redocly's CLI, pinned by tests/openapi/package-lock.json, lints the
# document GET /openapi.json serves (agentgate-gateway --openapi prints
# the same bytes; indented here so that lint's line numbers mean something)
# with tests/openapi/redocly.yaml: any error fails.
REDOCLY := tests/openapi/node_modules/.package-lock.json
.PHONY: openapi-lint
$(REDOCLY): tests/openapi/package.json tests/openapi/package-lock.json
	cd tests/openapi && npm ci --no-audit --no-fund --loglevel=error
openapi-lint: $(BUILD)/bin/agentgate-gateway $(REDOCLY)
	$(BUILD)/bin/agentgate-gateway --openapi | $(PYTHON) -m json.tool > $(BUILD)/openapi.json
	cd tests/openapi && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	    npx --no-install redocly lint --config redocly.yaml --format=stylish $(abspath $(BUILD)/openapi.json)

test-asan:
	$(MAKE) BUILD=build-asan SAN=1 test-unit test-integration

# Every quoted #include must resolve within the including folder's layer
# (as the compiler would) and no two files may include each other through
# any chain; also checks docs/architecture.md shows the layer lines above.
layers:
	@$(PYTHON) tests/layers/check_layers.py --gateway "$(LAYERS_GATEWAY)" --worker "$(LAYERS_WORKER)" --client "$(LAYERS_CLIENT)" \
	    --tool gateway/cmd=$(LAYER_OF_gateway/cmd) --tool worker/cmd=$(LAYER_OF_worker/cmd) --tool sql=$(LAYER_OF_sql)

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
                $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS))) \
                $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LIB_SRC := $(COMMON_SRC) gateway/core/router.c gateway/core/gw_metrics.c gateway/sse/sse_frame.c \
                worker/agent/text_fold.c worker/agent/pii.c worker/agent/output_guard.c
# A harness compiles with the include paths of the layer it tests: the
# agent's for the targets of worker/agent code, the gateway's for the rest.
FUZZ_AGENT   := tests/fuzz/fuzz_pii.c tests/fuzz/fuzz_output_guard.c
fuzz_layer    = $(if $(filter $(FUZZ_AGENT),$(1)),worker/agent/x.c,$(if $(filter tests/fuzz/%,$(1)),gateway/sse/x.c,$(1)))
.PHONY: fuzz fuzz-build
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(call layer_inc,$(call fuzz_layer,$<)) -c $< -o $@
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
