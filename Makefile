# agentcube -- build, test, benchmark and install.
#
#   make                 build build/agentcube, libagentcube and the Lua module
#   make deps            install the Debian 12 packages the project needs
#   make demo            install, build, then run a sample workflow
#   make test            run every test (also under ASan/UBSan)
#   make bench           run the benchmarks
#   make install PREFIX=DIR
#   make SAN=1 ...       the same targets in build-san/ with sanitizers
#   make O0=1 ...        the same targets in build-o0/ without optimisation
#   make CLANG=1 ...     the same targets in build-clang/ built by clang
#   make lint            the clang build and clang's static analyzer
#   make coverage        line coverage of the C and the Lua code, per file
#   make COV=1 ...       the same targets in build-cov/ with gcov

CC      ?= gcc
PREFIX  ?= /usr/local
SAN     ?=
PKGS    := libcurl jansson libmicrohttpd libseccomp yaml-0.1 lua5.4 uuid \
           libcrypto libedit libnftables

ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
# clang checks float-to-int casts out of range too (exit_code: 1e300)
OPT     += $(if $(findstring clang,$(CC)),-fsanitize=float-cast-overflow)
else ifeq ($(COV),1)
BUILD   ?= build-cov
OPT     := -O0 --coverage -Wno-format-truncation -DAGENTCUBE_COVERAGE
else ifeq ($(O0),1)
BUILD   ?= build-o0
OPT     := -O0 -Wno-format-truncation  # without value ranges gcc guesses wrong
else ifeq ($(CLANG),1)
CC      := clang
BUILD   ?= build-clang
OPT     := -O2 -Wsometimes-uninitialized
else
BUILD   ?= build
OPT     := -O2
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
# include/ holds the public API of libagentcube (what `make install` ships);
# src/core/ its private headers, seen only by the library and its tests.
PUBLIC_INC := -Iinclude -Iinclude/agentcube
SERVER_INC := -Isrc/server -Isrc/server/http -Isrc/server/sandbox \
           -Isrc/server/files -Isrc/server/store -Isrc/server/images \
           -Isrc/agent
CFLAGS  := -std=c11 -D_GNU_SOURCE -g -fPIC $(OPT) $(WARN) \
           $(PUBLIC_INC) $(SERVER_INC) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
, := ,
LDFLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address$(,)undefined) \
           $(if $(filter 1,$(COV)),--coverage)

CORE_SRC   := $(wildcard src/core/*.c)
SERVER_SRC := $(wildcard src/server/*.c src/server/*/*.c)
HOST_SRC   := $(wildcard src/host/*.c)
MCP_SRC    := $(wildcard src/mcp/*.c)
LUAMOD_SRC := $(wildcard src/lua/*.c)
CTEST_SRC  := $(wildcard tests/c/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
HOST_OBJ   := $(HOST_SRC:%.c=$(BUILD)/%.o)
MCP_OBJ    := $(MCP_SRC:%.c=$(BUILD)/%.o)
LUAMOD_OBJ := $(LUAMOD_SRC:%.c=$(BUILD)/%.o)
CTEST_BIN  := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(BUILD)/tests/lua/httpc.so $(BUILD)/tests/lua/lua_lines.so \
                $(BUILD)/tests/lua/chook.so

.PHONY: all deps test test-fast bench install clean demo ctests lint coverage
all: $(BUILD)/agentcube $(BUILD)/libagentcube.a $(CTEST_BIN) $(TEST_HELPERS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libagentcube.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libacserver.a: $(SERVER_OBJ) $(BUILD)/gen/agent_blob.o
	@rm -f $@
	ar rcs $@ $^

# The in-sandbox agent: its own small binary (libc only, never
# sanitized: it runs inside every live sandbox), embedded into the server,
# which hands it to each sandbox read-only.
AGENT_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isrc/agent
$(BUILD)/agentcube-agent: $(wildcard src/agent/*.c src/agent/*.h)
	@mkdir -p $(@D)
	$(CC) $(AGENT_CFLAGS) -o $@ $(wildcard src/agent/*.c)

$(BUILD)/gen/agent_blob.c: $(BUILD)/agentcube-agent
	@mkdir -p $(@D)
	(cd $(BUILD) && xxd -i -n sbx_agent_bin agentcube-agent) | \
	  sed -e 's/^unsigned char/const unsigned char/' \
	      -e 's/^unsigned int sbx_agent_bin_len/const unsigned long sbx_agent_bin_len/' \
	  > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/agent_blob.o: $(BUILD)/gen/agent_blob.c
	$(CC) -c -o $@ $<

# The host links the Lua binding and carries the Lua sources (generated
# from lua/ at build time, never committed); -Wl,-E lets it load C modules
# such as cjson.so.
LUA_SOURCES := $(shell find lua -name '*.lua' 2>/dev/null)
$(BUILD)/gen/lua_embed.c: $(LUA_SOURCES) src/host/embed_gen.sh
	@mkdir -p $(@D)
	sh src/host/embed_gen.sh $@ lua

$(BUILD)/gen/lua_embed.o: $(BUILD)/gen/lua_embed.c
	$(CC) $(CFLAGS) -Isrc/host -c $< -o $@

$(BUILD)/src/host/%.o: CFLAGS += -Isrc/lua

$(BUILD)/agentcube: $(HOST_OBJ) $(BUILD)/gen/lua_embed.o $(LUAMOD_OBJ) \
                    $(BUILD)/libacmcp.a $(BUILD)/libacserver.a \
                    $(BUILD)/libagentcube.a
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/tap.h $(BUILD)/libacserver.a \
                  $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c -Isrc/core $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libacserver.a $(BUILD)/libagentcube.a $(LDLIBS)

# The REPL's completion, a part of the host, tested on its own object.
$(BUILD)/tests/test_repl_complete: tests/c/test_repl_complete.c tests/c/tap.h \
                                   $(BUILD)/src/host/repl_complete.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c -Isrc/host $(LDFLAGS) -o $@ $< \
	  $(BUILD)/src/host/repl_complete.o $(LDLIBS)

# A small libcurl binding the Lua specs use to speak raw HTTP to the
# server, independent of the client library under test.
$(BUILD)/tests/lua/httpc.so: tests/helpers/httpc.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $< $(LDLIBS)

# A C debug hook (as a profiler installs one) for the workflow specs.
$(BUILD)/tests/lua/chook.so: tests/helpers/chook.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $< $(LDLIBS)

# The Lua line counter of make coverage as a module for lua5.4 (the host
# has it built in): never instrumented itself, and never unloaded, since
# it writes its counts at exit, after lua_close.
$(BUILD)/tests/lua/lua_lines.so: tests/coverage/lua_lines.c \
                                 src/host/lua_coverage.c src/host/lua_coverage.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g -fPIC $(WARN) -Isrc/host \
	  $(shell pkg-config --cflags lua5.4 2>/dev/null) -shared \
	  -Wl,-z,nodelete -o $@ tests/coverage/lua_lines.c src/host/lua_coverage.c

deps:
	@sh .ci/install-deps

# The main job: a sample workflow on the local runtime, which starts in the
# background on first use (state in $AGENTCUBE_HOME, default ~/.agentcube).
# It builds only the executable the demo runs, on every core.
demo: deps
	@$(MAKE) --no-print-directory -j$(shell nproc 2>/dev/null || echo 2) \
	  $(BUILD)/agentcube
	$(BUILD)/agentcube run workflows/csv-summary.yaml --set out=$(BUILD)/demo
	@echo "summary: $(BUILD)/demo/summary.csv"; cat $(BUILD)/demo/summary.csv

# The C tests once more unoptimised: an uninitialised variable that -O2
# happens to hide shows at -O0.
test: all
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory O0=1 ctests
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory fuzz-build; fi
	@sh tests/run $(BUILD) build-san build-o0

ctests: $(CTEST_BIN)

# Line coverage, per file: the C code through gcov (a -O0 --coverage build
# in build-cov/), the Lua code of lua/ through a debug-hook line counter:
# built into the agentcube executable, loaded into every lua5.4 the tests
# start (LUA_INIT_5_4, which lua5.1 never reads). The report prints every
# file and fails when a file is under 75% or the whole under 90%.
LUA_LINES := $(CURDIR)/build-cov/tests/lua/lua_lines.so
coverage:
	@$(MAKE) --no-print-directory COV=1 all
	@find build-cov -name '*.gcda' -delete; rm -rf build-cov/lua-cov
	@mkdir -p build-cov/lua-cov
	-@AGENTCUBE_LUA_COVERAGE=$(CURDIR)/build-cov/lua-cov \
	  AGENTCUBE_TEST_LDFLAGS=--coverage \
	  LUA_INIT_5_4="local f = package.loadlib('$(LUA_LINES)', \
	    'luaopen_lua_lines') if f then f() end" sh tests/run build-cov
	@sh tests/coverage/report build-cov build-cov/lua-cov

# luacheck over the Lua module and the specs (tests/run runs it too), then
# one clang build that is both clang's warnings (-Werror, the CLANG=1
# flags) and its static analyzer, which must find nothing (scan-build
# --status-bugs fails on any report; ccc-analyzer compiles with clang
# first, so a warning stops the build).
lint:
	luacheck lua tests
	rm -rf build-scan
	scan-build --use-cc=clang --status-bugs -o build-scan/report \
	  $(MAKE) --no-print-directory CLANG=1 BUILD=build-scan all

test-fast: all
	@sh tests/run $(BUILD)

bench: all $(BUILD)/bench/bench_server $(BUILD)/bench/bench_sandbox
	@sh bench/run $(BUILD)

$(BUILD)/bench/bench_sandbox: bench/bench_sandbox.c tests/c/uid_procs.h \
                              $(BUILD)/libacserver.a $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c $(LDFLAGS) -o $@ $< $(BUILD)/libacserver.a \
	  $(BUILD)/libagentcube.a $(LDLIBS)

$(BUILD)/bench/bench_server: bench/bench_server.c $(BUILD)/libacserver.a \
                             $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libacserver.a \
	  $(BUILD)/libagentcube.a $(LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/agentcube $(DESTDIR)$(PREFIX)/bin/agentcube

# agentcube(1): a page written around the executable's own --help texts,
# so the two never differ
MAN_PAGE := $(BUILD)/agentcube.1
$(MAN_PAGE): $(BUILD)/agentcube docs/man/agentcube.1.in docs/man/gen_man.sh
	sh docs/man/gen_man.sh $(BUILD)/agentcube docs/man/agentcube.1.in $@

.PHONY: install-man
install: install-man
install-man: $(MAN_PAGE)
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(MAN_PAGE) $(DESTDIR)$(PREFIX)/share/man/man1/agentcube.1

clean:
	rm -rf build build-san build-o0 build-clang build-scan build-cov

-include $(CORE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(HOST_OBJ:.o=.d) \
         $(MCP_OBJ:.o=.d)

# --- MCP server (agentcube mcp) ---
# src/mcp as a static library the host links (and the C tests of the
# protocol); it uses libagentcube through its public header only.
$(BUILD)/src/host/%.o: CFLAGS += -Isrc/mcp
$(BUILD)/libacmcp.a: $(MCP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/test_mcp_%: tests/c/test_mcp_%.c tests/c/tap.h \
                           $(BUILD)/libacmcp.a $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc/mcp -Itests/c $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libacmcp.a $(BUILD)/libagentcube.a $(LDLIBS)
# --- end of MCP server ---

# --- Lua module ---
# agentcube.core (src/lua/*.c linked with libagentcube's objects) as one
# shared object that exports luaopen_agentcube_core only and does not link
# liblua (the host that loads it provides Lua); libagentcube as a shared
# library too; the embedding example, the benchmark client, and install.
LUAMOD_SRC  := $(wildcard src/lua/*.c)
LUAMOD_OBJ  := $(LUAMOD_SRC:%.c=$(BUILD)/%.o)
LUAMOD      := $(BUILD)/lua/agentcube/core.so
CORE_LIBS   := $(shell pkg-config --libs libcurl jansson libcrypto \
                 2>/dev/null) -lpthread -lm
# the workflow engine's YAML loader (src/lua/yaml_load.c) needs libyaml
LUAMOD_LIBS := $(CORE_LIBS) $(shell pkg-config --libs yaml-0.1 2>/dev/null)
LUA_LIBS    := $(shell pkg-config --libs lua5.4 2>/dev/null)
EMBED       := $(BUILD)/examples/embed
FRAMELOOP   := $(BUILD)/examples/frameloop
BENCH_CLIENT := $(BUILD)/bench/curl_exec_client

.PHONY: lua install-lua
all: lua
lua: $(LUAMOD) $(BUILD)/libagentcube.so $(EMBED) $(BENCH_CLIENT) $(FRAMELOOP)

# The frame-loop host sees only the public header, as an installed program
# would (`cc frameloop.c $(pkg-config --cflags --libs agentcube)`).
$(FRAMELOOP): examples/frameloop.c include/agentcube.h $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -Iinclude $(LDFLAGS) \
	  -o $@ $< $(BUILD)/libagentcube.a $(CORE_LIBS)

$(LUAMOD): $(LUAMOD_OBJ) $(CORE_OBJ) src/lua/module.map
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -shared -Wl,--version-script=src/lua/module.map \
	  -o $@ $(LUAMOD_OBJ) $(CORE_OBJ) $(LUAMOD_LIBS)

$(BUILD)/libagentcube.so: $(CORE_OBJ)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libagentcube.so -o $@ $^ \
	  $(CORE_LIBS)

# The example host embeds the facade's source (checked with luac first),
# so it runs without any file installed.
$(BUILD)/examples/facade_lua.h: lua/agentcube/init.lua
	@mkdir -p $(@D)
	luac5.4 -p $<
	xxd -i -n ac_lua_facade $< > $@.tmp && mv $@.tmp $@

$(BUILD)/examples/embed.o: $(BUILD)/examples/facade_lua.h

$(BUILD)/examples/%.o: examples/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc/lua -I$(BUILD)/examples -MMD -MP -c $< -o $@

$(EMBED): $(BUILD)/examples/embed.o $(LUAMOD_OBJ) $(CORE_OBJ)
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(LUA_LIBS) $(LUAMOD_LIBS)

$(BENCH_CLIENT): bench/curl_exec_client.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< \
	  $(shell pkg-config --libs libcurl 2>/dev/null)

install: install-lua
install-lua: lua $(BUILD)/libagentcube.a
	install -d $(DESTDIR)$(PREFIX)/lib/lua/5.4/agentcube \
	  $(DESTDIR)$(PREFIX)/share/lua/5.4/agentcube \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LUAMOD) $(DESTDIR)$(PREFIX)/lib/lua/5.4/agentcube/
	cd lua && find agentcube -name '*.lua' -exec install -D -m 0644 {} \
	  $(abspath $(DESTDIR)$(PREFIX))/share/lua/5.4/{} \;
	install -d $(DESTDIR)$(PREFIX)/include/agentcube
	install -m 0644 include/agentcube.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 include/agentcube/ac_error.h include/agentcube/errors.def \
	  $(DESTDIR)$(PREFIX)/include/agentcube/
	install -d $(DESTDIR)$(PREFIX)/share/doc/agentcube/examples
	install -m 0644 examples/frameloop.c examples/embed.c \
	  $(DESTDIR)$(PREFIX)/share/doc/agentcube/examples/
	install -m 0644 $(BUILD)/libagentcube.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/libagentcube.so $(DESTDIR)$(PREFIX)/lib/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: agentcube' \
	  'Description: C client of AgentCube code-interpreter sandboxes' \
	  'Version: $(shell sed -n 's/^#define AC_VERSION *"\(.*\)"/\1/p' \
	    include/agentcube.h)' \
	  'Requires.private: libcurl jansson libcrypto' \
	  'Libs: -L$${libdir} -lagentcube' 'Libs.private: -lpthread -lm' \
	  'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/agentcube.pc

-include $(LUAMOD_OBJ:.o=.d) $(BUILD)/examples/embed.d
# --- end of Lua module ---

# --- luarocks (agentcube-scm-1.rockspec): the Lua module alone, built and
# installed where luarocks says (INST_LIBDIR, INST_LUADIR) ---
.PHONY: rock rock-install
rock: $(LUAMOD)
rock-install: rock
	install -d $(INST_LIBDIR)/agentcube $(INST_LUADIR)
	install -m 0755 $(LUAMOD) $(INST_LIBDIR)/agentcube/core.so
	cd lua && find agentcube -name '*.lua' -exec install -D -m 0644 {} \
	  $(abspath $(INST_LUADIR))/{} \;

# --- fuzzing ---
# libFuzzer harnesses (fuzz/fuzz_*.c) for every parser of untrusted input,
# built with clang in build-fuzz/. `make fuzz FUZZ_TIME=s` runs each one
# for s seconds (nice 19, one at a time) from its seeds (fuzz/seeds/NAME)
# and regression inputs (tests/fuzz/NAME); new crashes land in
# build-fuzz/crashes/. `make test` runs each for a few seconds.
# FUZZ_ONLY="fuzz_expr ..." runs only those.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(PUBLIC_INC) -Isrc/core $(SERVER_INC) -Isrc/lua \
  -DFUZZ_LUA_DIR='"$(abspath lua)"' \
  $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_NAMES := $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS  := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
FUZZ_LIBSRC := $(filter-out src/server/serve.c,$(SERVER_SRC)) $(CORE_SRC) \
  src/lua/yaml_load.c
FUZZ_OBJ   := $(FUZZ_LIBSRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh fuzz/run $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_ONLY)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libfuzzlib.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.h fuzz/fuzz_noagent.h $(FUZZ_BUILD)/libfuzzlib.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	  $(FUZZ_BUILD)/libfuzzlib.a $(LDLIBS)

-include $(FUZZ_OBJ:.o=.d)
# --- end of fuzzing ---

# --- soak ---
# `make soak SOAK_MINUTES=n` (default 30): mixed load on a real server,
# two kill -9 restarts, then a leak check (soak/soak.lua).
SOAK_MINUTES ?= 30
.PHONY: soak
soak: $(BUILD)/agentcube $(TEST_HELPERS)
	AGENTCUBE_BIN=$(abspath $(BUILD)/agentcube) SOAK_ROOT=$(CURDIR) \
	LUA_CPATH="$(abspath $(BUILD))/tests/lua/?.so;;" \
	LUA_PATH="$(CURDIR)/tests/helpers/?.lua;;" \
	  lua5.4 soak/soak.lua $(SOAK_MINUTES)
# --- end of soak ---
