# agentcube -- build, test, benchmark and install.
#
#   make                 build build/agentcube, libagentcube and the Lua module
#   make deps            install the Debian 12 packages the project needs
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
CFLAGS  := -std=c11 -D_GNU_SOURCE -g -fPIC $(OPT) $(WARN) \
           -Isrc/core -Isrc/server $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
, := ,
LDFLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address$(,)undefined)

CORE_SRC   := $(wildcard src/core/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
HOST_SRC   := $(wildcard src/host/*.c)
CTEST_SRC  := $(wildcard tests/c/test_*.c)

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
HOST_OBJ   := $(HOST_SRC:%.c=$(BUILD)/%.o)
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

$(BUILD)/agentcube: $(HOST_OBJ) $(BUILD)/libacserver.a $(BUILD)/libagentcube.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

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

test: all
	@$(MAKE) --no-print-directory SAN=1 all
	@sh tests/run $(BUILD) build-san

test-fast: all
	@sh tests/run $(BUILD)

bench: all
	@sh bench/run $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/agentcube $(DESTDIR)$(PREFIX)/bin/agentcube

clean:
	rm -rf build build-san

-include $(CORE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(HOST_OBJ:.o=.d)
