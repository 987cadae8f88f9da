# agentcube -- build, test, benchmark and install.
#
#   make                 build build/agentcube, libagentcube and the Lua module
#   make deps            install the Debian 12 packages the project needs
#   make demo            install, build, then run a sample workflow
#   make test            run every test (also under ASan/UBSan)
#   make bench           run the benchmarks
#   make install PREFIX=DIR
#   make SAN=1 ...       the same targets in build-san/ with sanitizers

CC      ?= gcc
PREFIX  ?= /usr/local
SAN     ?=
PKGS    := libcurl jansson libmicrohttpd libseccomp yaml-0.1 lua5.4 uuid \
           libcrypto libedit

ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
SERVER_INC := -Isrc/core -Isrc/server -Isrc/server/http -Isrc/server/sandbox \
           -Isrc/server/files -Isrc/server/store
CFLAGS  := -std=c11 -D_GNU_SOURCE -g -fPIC $(OPT) $(WARN) \
           $(SERVER_INC) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
, := ,
LDFLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address$(,)undefined)

CORE_SRC   := $(wildcard src/core/*.c)
SERVER_SRC := $(wildcard src/server/*.c src/server/*/*.c)
HOST_SRC   := $(wildcard src/host/*.c)
LUAMOD_SRC := $(wildcard src/lua/*.c)
CTEST_SRC  := $(wildcard tests/c/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
HOST_OBJ   := $(HOST_SRC:%.c=$(BUILD)/%.o)
LUAMOD_OBJ := $(LUAMOD_SRC:%.c=$(BUILD)/%.o)
CTEST_BIN  := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(BUILD)/tests/lua/httpc.so

.PHONY: all deps test test-fast bench install clean demo
all: $(BUILD)/agentcube $(BUILD)/libagentcube.a $(CTEST_BIN) $(TEST_HELPERS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libagentcube.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libacserver.a: $(SERVER_OBJ)
	@rm -f $@
	ar rcs $@ $^

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
                    $(BUILD)/libacserver.a $(BUILD)/libagentcube.a
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/tap.h $(BUILD)/libacserver.a \
                  $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c $(LDFLAGS) -o $@ $< \
	  $(BUILD)/libacserver.a $(BUILD)/libagentcube.a $(LDLIBS)

# A small libcurl binding the Lua specs use to speak raw HTTP to the
# server, independent of the client library under test.
$(BUILD)/tests/lua/httpc.so: tests/helpers/httpc.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $< $(LDLIBS)

deps:
	@sh .ci/install-deps

# The main job: a sample workflow on the local runtime, which starts in the
# background on first use (state in $AGENTCUBE_HOME, default ~/.agentcube).
demo: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/agentcube run workflows/csv-summary.yaml --set out=$(BUILD)/demo
	@echo "summary: $(BUILD)/demo/summary.csv"; cat $(BUILD)/demo/summary.csv

test: all
	@$(MAKE) --no-print-directory SAN=1 all
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory fuzz-build; fi
	@sh tests/run $(BUILD) build-san

test-fast: all
	@sh tests/run $(BUILD)

bench: all $(BUILD)/bench/bench_server
	@sh bench/run $(BUILD)

$(BUILD)/bench/bench_server: bench/bench_server.c $(BUILD)/libacserver.a \
                             $(BUILD)/libagentcube.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libacserver.a \
	  $(BUILD)/libagentcube.a $(LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/agentcube $(DESTDIR)$(PREFIX)/bin/agentcube

clean:
	rm -rf build build-san

-include $(CORE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(HOST_OBJ:.o=.d)

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
BENCH_CLIENT := $(BUILD)/bench/curl_exec_client

.PHONY: lua install-lua
all: lua
lua: $(LUAMOD) $(BUILD)/libagentcube.so $(EMBED) $(BENCH_CLIENT)

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
	install -m 0644 src/core/agentcube.h src/core/ac_error.h \
	  src/core/errors.def $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(BUILD)/libagentcube.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/libagentcube.so $(DESTDIR)$(PREFIX)/lib/
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: agentcube' \
	  'Description: C client of AgentCube code-interpreter sandboxes' \
	  'Version: $(shell sed -n 's/^#define AC_VERSION *"\(.*\)"/\1/p' \
	    src/core/agentcube.h)' \
	  'Requires.private: libcurl jansson libcrypto' \
	  'Libs: -L$${libdir} -lagentcube' 'Libs.private: -lpthread -lm' \
	  'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/agentcube.pc

-include $(LUAMOD_OBJ:.o=.d) $(BUILD)/examples/embed.d
# --- end of Lua module ---

# --- fuzzing ---
# libFuzzer harnesses (fuzz/fuzz_*.c) for every parser of untrusted input,
# built with clang in build-fuzz/. `make fuzz FUZZ_TIME=s` runs each one
# for s seconds (nice 19, one at a time) from its seeds (fuzz/seeds/NAME)
# and regression inputs (tests/fuzz/NAME); new crashes land in
# build-fuzz/crashes/. `make test` runs each for a few seconds.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(SERVER_INC) -Isrc/lua \
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
	@sh fuzz/run $(FUZZ_BUILD) $(FUZZ_TIME)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libfuzzlib.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_lua.h $(FUZZ_BUILD)/libfuzzlib.a
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
