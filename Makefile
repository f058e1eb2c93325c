# hutch build.  `make` builds build/hutch; `make test` runs the whole suite;
# `make deps` installs the Debian packages; `make run` starts the server.

CC ?= gcc
BUILD ?= build
# Debian's interpreter: it has pytest and the kernels, whatever else is on PATH.
PYTHON ?= /usr/bin/python3
PKGS := libseccomp
NET_PKGS := libmicrohttpd jansson libcrypto libzmq

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wwrite-strings -Wno-unused-parameter
BASE_CFLAGS := -std=gnu17 -Isrc $(WARN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
NET_CFLAGS := $(shell pkg-config --cflags $(NET_PKGS) 2>/dev/null)
NET_LIBS := $(shell pkg-config --libs $(NET_PKGS) 2>/dev/null) -lhttp_parser -lz -lpthread
# The zygote embeds CPython (src/interp/pyzygote.c).
PY_CFLAGS := $(shell pkg-config --cflags python3-embed 2>/dev/null)
PY_LIBS := $(shell pkg-config --libs python3-embed 2>/dev/null)
# hutch's client commands (sandbox, exec, code, files) speak HTTP through libcurl.
CLI_PKGS := libcurl jansson
CLI_CFLAGS := $(shell pkg-config --cflags $(CLI_PKGS) 2>/dev/null)
CLI_LIBS := $(shell pkg-config --libs $(CLI_PKGS) 2>/dev/null)
OPT_CFLAGS := -O2 -g
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRCS := $(wildcard src/libhutch/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
# hutchd: the daemon, the in-sandbox agent (linked in: sandboxes are forked,
# not exec'd) and the HTTP helpers they share.
HUTCHD_SRCS := $(wildcard src/daemon/*.c src/agent/*.c src/common/*.c src/interp/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
HUTCHD_OBJS := $(HUTCHD_SRCS:%.c=$(BUILD)/obj/%.o)
# The sanitizer build leaves the preloaded interpreter out (embedded CPython
# forked under ASan hangs its kernels); its Python kernels start cold.  The
# optimised build, with it, runs the SDK suite.
SAN_HUTCHD_OBJS := $(filter-out %/pyzygote.o %/pyzygote-pools.o,$(HUTCHD_SRCS:%.c=$(BUILD)/asan/obj/%.o))
SAN_LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)
SAN_CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/asan/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/asan/tests/%)

.PHONY: all deps test unit e2e api compat interp sdk cli bench bench-sdk bench-interp format format-check clean run

all: $(BUILD)/hutch $(BUILD)/hutchd $(BUILD)/probe

deps:
	sh scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(BASE_CFLAGS) $(NET_CFLAGS) $(PY_CFLAGS) $(OPT_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (asan)"
	@$(CC) $(BASE_CFLAGS) $(NET_CFLAGS) $(PY_CFLAGS) $(SAN_CFLAGS) -c $< -o $@

$(BUILD)/libhutch.a: $(LIB_OBJS)
	ar rcs $@ $^

$(BUILD)/asan/libhutch.a: $(SAN_LIB_OBJS)
	ar rcs $@ $^

$(CLI_OBJS) $(SAN_CLI_OBJS): NET_CFLAGS += $(CLI_CFLAGS)

$(BUILD)/hutch: $(CLI_OBJS) $(BUILD)/libhutch.a
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS) $(CLI_LIBS)

$(BUILD)/asan/hutch: $(SAN_CLI_OBJS) $(BUILD)/asan/libhutch.a
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) $(CLI_LIBS)

$(BUILD)/hutchd: $(HUTCHD_OBJS) $(BUILD)/libhutch.a
	$(CC) $(OPT_CFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS) $(PY_LIBS)

$(BUILD)/asan/hutchd: $(SAN_HUTCHD_OBJS) $(BUILD)/asan/libhutch.a
	$(CC) $(SAN_CFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS) $(PY_LIBS)

# Our own bash and javascript kernels are embedded in the binary.
INTERP_KERNELS := $(wildcard src/interp/kernels/*)
$(BUILD)/obj/src/interp/kernels.o $(BUILD)/asan/obj/src/interp/kernels.o: $(INTERP_KERNELS)

# Drives pyzygote alone for tests/interp/test_pyzygote.py.
$(BUILD)/pyzygote-driver: tests/interp/pyzygote-driver.c src/interp/pyzygote.c src/interp/pyzygote-pools.c \
                          src/interp/result-formatters.c \
                          $(BUILD)/libhutch.a
	$(CC) $(BASE_CFLAGS) $(PY_CFLAGS) $(OPT_CFLAGS) -o $@ $^ $(LIBS) $(PY_LIBS) -lpthread

# A development harness: one sandbox running the agent, its envd port
# forwarded to the host (see tests/helpers/agent-dev.c).
AGENT_DEV_OBJS := $(filter-out $(BUILD)/obj/src/daemon/%,$(HUTCHD_OBJS))
$(BUILD)/agent-dev: tests/helpers/agent-dev.c $(AGENT_DEV_OBJS) $(BUILD)/libhutch.a
	$(CC) $(BASE_CFLAGS) $(NET_CFLAGS) $(PY_CFLAGS) $(OPT_CFLAGS) -o $@ $^ $(LIBS) $(NET_LIBS) $(PY_LIBS)

$(BUILD)/bench-spawn: bench/spawn.c $(BUILD)/libhutch.a
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -o $@ $< $(BUILD)/libhutch.a $(LIBS)

# The probe runs inside sandboxes; static so it needs nothing from the template.
$(BUILD)/probe: tests/helpers/probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 $(WARN) -O2 -static -o $@ $<

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/libhutch.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_CFLAGS) -o $@ $< $(BUILD)/asan/libhutch.a $(LIBS) -lcriterion

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t --verbose=0; done

# The integration suites run the sanitizer builds of the real binaries.
e2e: all $(BUILD)/asan/hutch
	cd tests/e2e && $(PYTHON) -m pytest -q

api: all $(BUILD)/asan/hutchd
	cd tests/api && HUTCHD_BIN=$(abspath $(BUILD)/asan/hutchd) $(PYTHON) -m pytest -q

compat: all $(BUILD)/asan/hutchd
	cd tests/compat && npm ci --no-audit --no-fund --loglevel=error \
	  && HUTCHD_BIN=$(abspath $(BUILD)/asan/hutchd) node --test

# The code interpreter's server and the preloaded Python outside sandboxes.
interp: $(BUILD)/pyzygote-driver
	cd tests/interp && $(PYTHON) -m pytest -q

sdk: all
	cd tests/sdk && HUTCHD_BIN=$(abspath $(BUILD)/hutchd) $(PYTHON) -m pytest -q

# hutch's client commands against a real hutchd.
cli: all $(BUILD)/asan/hutch $(BUILD)/asan/hutchd
	cd tests/cli && HUTCHD_BIN=$(abspath $(BUILD)/asan/hutchd) \
	  HUTCH_BIN=$(abspath $(BUILD)/asan/hutch) $(PYTHON) -m pytest -q

test: deps
	$(MAKE) format-check
	$(MAKE) all $(BUILD)/asan/hutch $(BUILD)/asan/hutchd
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) api
	$(MAKE) compat
	$(MAKE) interp
	$(MAKE) sdk
	$(MAKE) cli

bench: all $(BUILD)/bench-spawn
	sh bench/run.sh
	sh bench/sdk.sh
	sh bench/interp.sh

# hutchd through the official e2b JS SDK (needs node and npm).
bench-sdk:
	sh bench/sdk.sh

# The code interpreter through @e2b/code-interpreter, beside a local
# ipykernel (needs node, npm and Debian's python3-jupyter-client).
bench-interp:
	sh bench/interp.sh

FORMATTED := $(LIB_SRCS) $(CLI_SRCS) $(HUTCHD_SRCS) $(UNIT_SRCS) $(wildcard src/*/*.h) \
             $(wildcard tests/helpers/*.c bench/*.c)

format:
	clang-format -i $(FORMATTED)

format-check:
	clang-format --dry-run --Werror $(FORMATTED)

# Set up and start the server in the foreground (Ctrl-C stops it).
HUTCHD_LISTEN ?= 127.0.0.1:3000
run: deps all
	build/hutchd --listen $(HUTCHD_LISTEN)

clean:
	rm -rf $(BUILD)
