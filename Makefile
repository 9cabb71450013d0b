# ElixirScope — build, test, bench and demo. `make setup` is the single source of every
# system package the project needs; every other target depends on it.

# The OTP whose headers the NIF is built against, and its release: each OTP gets its
# own NIF (priv/otp<release>/) and its own _build (mix.exs), so a run on one OTP never
# loads what another built. `mix compile` passes both for the OTP it runs on.
ERL_INFO    := $(if $(and $(ERL_ROOT),$(OTP_RELEASE)),,$(shell erl -noshell -eval \
               'io:format("~s ~s", [code:root_dir(), erlang:system_info(otp_release)]), halt().' 2>/dev/null))
ERL_ROOT    ?= $(word 1,$(ERL_INFO))
OTP_RELEASE ?= $(word 2,$(ERL_INFO))
ERL_CFLAGS  := -I$(ERL_ROOT)/usr/include
CC         ?= cc
CFLAGS     ?= -O2
# (kept when CFLAGS comes from the command line, as in test-sanitize)
override CFLAGS += -std=c11 -D_GNU_SOURCE -fPIC -Wall -Wextra -Werror -pthread
ZSTD_LIBS  := $(shell pkg-config --libs libzstd 2>/dev/null)
CJSON_LIBS := $(or $(shell pkg-config --libs libcjson 2>/dev/null),-lcjson)
CRIT_FLAGS := $(shell pkg-config --cflags --libs criterion 2>/dev/null)
LIBS       := -lmimalloc $(ZSTD_LIBS) -pthread

# The folders are the layers: c_src/core builds and is tested without erl_nif (the
# Criterion tests link it alone); c_src/nif converts terms, holds resources and makes
# the NIF library with the core (layers-check keeps the core free of erl_nif).
CORE_SRC := $(wildcard c_src/core/*.c)
NIF_SRC  := $(CORE_SRC) $(wildcard c_src/nif/*.c)
HEADERS  := $(wildcard c_src/core/*.h c_src/nif/*.h)
CORE_INC := -Ic_src/core
NIF_INC  := -Ic_src/core -Ic_src/nif
NIF      := priv/otp$(OTP_RELEASE)/elixir_scope_nif.so
CTESTS   := $(wildcard test/c/test_*.c)

APT_PACKAGES := erlang-dev erlang-nox elixir libzstd-dev libmimalloc-dev libcriterion-dev \
                libcjson-dev pkg-config gcc make nodejs zstd chromium libfaketime \
                apache2-utils
# The MCP end-to-end tests run the official TypeScript client (Node.js >= 20, npm).
MCP_CLIENT   := test/mcp_client
NODE_MODULES := $(MCP_CLIENT)/node_modules/.package-lock.json
# The browser tests (the web UI, the real Phoenix application's LiveView) drive Debian's
# chromium with playwright-core (no browser download: the package is the driver only).
UI_BROWSER      := test/ui_browser
UI_NODE_MODULES := $(UI_BROWSER)/node_modules/.package-lock.json

# A real Phoenix application (test/phoenix_app) for the Phoenix integration tests and bench,
# built from the Phoenix sources in ../shared/phoenix when they are there (hex.pm is
# unreachable), once per OTP release.
PHOENIX_TAR     := $(wildcard ../shared/phoenix/phoenix-1.7.21-deps.tar.zst)
PHOENIX_DEPS    := build/phoenix-1.7.21-deps
# (ElixirScope.Test.PhoenixApp loads it from there.)
SCOPE_APP_BUILD := $(CURDIR)/build/otp$(OTP_RELEASE)/scope_app

.PHONY: all setup nif layers-check test test-c test-elixir test-otp27 test-sanitize bench demo format \
        format-check clean phoenix-app ui-screenshots

all: nif

# Installs what is missing (Debian/Ubuntu); elsewhere says what to install.
setup:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "setup: all system packages present"; \
	elif command -v apt-get >/dev/null; then \
	  echo "setup: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	else echo "setup: please install:$$missing (Erlang/OTP >= 25 headers, Elixir >= 1.14, zstd, mimalloc, criterion, cJSON, Node.js >= 20)"; exit 1; fi
	@# Node.js from NodeSource bundles npm; Debian's own nodejs needs the npm package.
	@command -v npm >/dev/null || { echo "setup: installing npm"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }

nif: $(NIF)

# initial-exec TLS: the tracer reads thread-locals on every event, and the default
# model for a shared library calls __tls_get_addr each time.
$(NIF): $(NIF_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -ftls-model=initial-exec $(ERL_CFLAGS) $(NIF_INC) -shared -o $@ $(NIF_SRC) $(LIBS) $(CJSON_LIBS)

build/test_%: test/c/test_%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(CORE_INC) -o $@ $< $(CORE_SRC) $(LIBS) $(CRIT_FLAGS)

test: setup
	$(MAKE) layers-check
	$(MAKE) test-c
	$(MAKE) test-elixir

# Fails when a file of c_src/core includes erl_nif.h (or the driver's, or ei.h) or
# anything but a header of c_src/core by its bare name, or when a C file lies in
# c_src/ itself, outside both layers.
layers-check:
	@status=0; \
	for f in $(wildcard c_src/*.c c_src/*.h); do \
	  echo "layers: $$f is in neither c_src/core nor c_src/nif"; status=1; \
	done; \
	for f in $(wildcard c_src/core/*.c c_src/core/*.h); do \
	  for inc in $$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' $$f); do \
	    case "$$inc" in */*) ok=no;; *) test -f "c_src/core/$$inc" && ok=yes || ok=no;; esac; \
	    [ $$ok = yes ] || { echo "layers: $$f includes \"$$inc\", not a header of c_src/core"; status=1; }; \
	  done; \
	  if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]?(erl_nif|erl_driver|ei)\.h' $$f; then \
	    echo "layers: $$f includes an erl_nif header: the core builds without erl_nif"; status=1; \
	  fi; \
	done; \
	[ $$status = 0 ] && echo "layers: c_src/core includes nothing of erl_nif or c_src/nif"; \
	exit $$status

test-c: $(CTESTS:test/c/test_%.c=build/test_%)
	@for t in $^; do echo "== $$t"; ./$$t --jobs 1 || exit 1; done

test-elixir: setup $(NODE_MODULES) $(UI_NODE_MODULES) phoenix-app
	mix test

# The whole suite again on OTP 27 + Elixir 1.18, the toolchain of ../shared/toolchains
# (unpacked once by its script, which needs the zstd command): its own NIF and _build.
TOOLCHAINS ?= ../shared/toolchains

test-otp27: setup
	@test -x $(TOOLCHAINS)/otp27 || { echo "test-otp27: no $(TOOLCHAINS)/otp27"; exit 1; }
	env="$$($(TOOLCHAINS)/otp27)" && eval "$$env" && \
	  $(MAKE) --no-print-directory test-c test-elixir

$(PHOENIX_DEPS)/.unpacked: $(PHOENIX_TAR)
	@mkdir -p build
	tar --zstd -xf $< -C build
	@touch $@

phoenix-app: setup
ifneq ($(PHOENIX_TAR),)
	@$(MAKE) --no-print-directory $(PHOENIX_DEPS)/.unpacked
	cd test/phoenix_app && MIX_ENV=prod MIX_BUILD_PATH=$(SCOPE_APP_BUILD) \
	  PHOENIX_DEPS=$(CURDIR)/$(PHOENIX_DEPS) mix compile
else
	@echo "phoenix-app: ../shared/phoenix is absent: the Phoenix integration tests will be skipped"
endif

# The official MCP client and conformance scenarios, at the versions of the lockfile.
$(NODE_MODULES): $(MCP_CLIENT)/package-lock.json
	cd $(MCP_CLIENT) && npm ci --no-audit --no-fund --loglevel=error

$(UI_NODE_MODULES): $(UI_BROWSER)/package-lock.json
	cd $(UI_BROWSER) && npm ci --no-audit --no-fund --loglevel=error

# The README's screenshots of the web UI (docs/ui/*.png), taken by the browser test
# (which saves one per view in _build/ui_screenshots).
ui-screenshots: setup $(UI_NODE_MODULES)
	mix test test/ui_browser_test.exs
	@mkdir -p docs/ui
	cp _build/ui_screenshots/processes.png _build/ui_screenshots/states.png \
	  _build/ui_screenshots/messages.png docs/ui/

# All C tests under AddressSanitizer+UBSan, then the concurrency tests under
# ThreadSanitizer (with the minimal runner of test/c/harness.h: Criterion cannot run
# under TSan), then the NIF itself (tracer, JSON, diffs, persistence, the query engine)
# under AddressSanitizer+UBSan inside the BEAM (the sanitizer runtimes preloaded) for
# the ExUnit tests that drive it (the Phoenix application's peer nodes inherit the
# preloaded runtimes; its browser tests are left out, chromium would too); the NIF is
# rebuilt without them afterwards.
TSAN_TESTS := test_intern test_stress test_clock test_paging test_wallclock test_zone
SANITIZE    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
NIF_SANITIZE_TESTS := test/tracing_test.exs test/return_frames_test.exs test/lifecycle_test.exs \
                      test/module_reload_test.exs test/trace_session_test.exs \
                      test/tracing_watchdog_test.exs test/json_test.exs test/time_travel_test.exs \
                      test/persister_test.exs test/trace_db_test.exs test/query_test.exs \
                      test/query_property_test.exs test/processes_test.exs test/analysis_test.exs \
                      test/post_mortem_test.exs test/export_test.exs \
                      test/ui_api_test.exs test/crashes_test.exs \
                      test/receive_senders_test.exs test/original_vocabulary_test.exs \
                      test/wall_clock_test.exs \
                      test/phoenix_test.exs test/phoenix/real_app_test.exs \
                      test/phoenix/beside_other_tools_test.exs test/phoenix/mcp_test.exs

test-sanitize: setup
	$(MAKE) clean-tests
	$(MAKE) test-c CC=clang CFLAGS="$(SANITIZE)"
	$(MAKE) clean-tests
	@mkdir -p build
	@for t in $(TSAN_TESTS); do \
	  clang -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -fsanitize=thread -DES_NO_CRITERION \
	    $(CORE_INC) -o build/tsan_$$t test/c/$$t.c $(CORE_SRC) -lmimalloc -pthread || exit 1; \
	  echo "== TSan $$t"; TSAN_OPTIONS=halt_on_error=1 ./build/tsan_$$t || exit 1; \
	done
	rm -f build/tsan_*
	rm -f $(NIF)
	$(MAKE) nif CC=gcc CFLAGS="$(SANITIZE)"
	@echo "== the NIF under ASan+UBSan: $(NIF_SANITIZE_TESTS)"
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  mix test $(NIF_SANITIZE_TESTS); status=$$?; rm -f $(NIF); $(MAKE) nif; exit $$status

clean-tests:
	rm -rf build/test_*

build/bench_store: bench/bench_store.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) -O2 $(CORE_INC) -o $@ $< $(CORE_SRC) $(LIBS)

build/otp$(OTP_RELEASE)/noop_tracer.so: bench/noop_tracer.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(ERL_CFLAGS) -shared -o $@ $<

bench: setup build/bench_store build/otp$(OTP_RELEASE)/noop_tracer.so $(UI_NODE_MODULES)
	./build/bench_store
	MIX_ENV=prod mix run bench/store_bench.exs
	MIX_ENV=prod mix run bench/tracer_bench.exs
	MIX_ENV=prod mix run bench/query_bench.exs
	MIX_ENV=prod mix run bench/engine_bench.exs
	MIX_ENV=prod mix run bench/persist_bench.exs
	MIX_ENV=prod mix run bench/ui_bench.exs
	MIX_ENV=prod mix run bench/phoenix_handler_bench.exs
	MIX_ENV=prod mix run bench/cluster_bench.exs
	$(MAKE) --no-print-directory phoenix-app
	MIX_ENV=prod mix run bench/phoenix_bench.exs

demo: setup
	mix run demo/demo.exs

format:
	clang-format -i $(NIF_SRC) $(HEADERS) test/c/*.c test/c/*.h bench/*.c
	mix format

format-check:
	clang-format --dry-run -Werror $(NIF_SRC) $(HEADERS) test/c/*.c test/c/*.h bench/*.c
	mix format --check-formatted

clean:
	rm -rf build priv/otp* _build $(MCP_CLIENT)/node_modules $(UI_BROWSER)/node_modules
