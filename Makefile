# Makefile - one `make` builds everything from a clean clone:
#   build/native/   portable core + unit tests, plain gcc
#   build/asan/     the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   build/win/      Windows x64 binaries (mingw-w64): fvm.exe, fvm-broker.exe,
#                   fvm.dll, test apps and benchmarks
# `make demo` and `make test` are the two README commands: they run
# scripts/setup.sh first (apt packages, Wine prefix), so they work on a fresh
# Debian machine.

CC       ?= gcc
MINGW    ?= x86_64-w64-mingw32-gcc
MINGWAR  ?= x86_64-w64-mingw32-ar
B        := build

WARN     := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CSTD     := -std=c11
INC      := -Isrc -Iinclude

NATIVE_CFLAGS := $(CSTD) $(WARN) $(INC) -O2 -g -D_GNU_SOURCE
ASAN_CFLAGS   := $(CSTD) $(WARN) $(INC) -O1 -g -D_GNU_SOURCE \
                 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
WIN_CFLAGS    := -std=gnu11 $(WARN) $(INC) -O2 -g -municode -DUNICODE -D_UNICODE \
                 -D_WIN32_WINNT=0x0A00 -fno-stack-protector
# The runtime is injected into every boxed process: no CRT, only ntdll and
# kernel32, so it loads fast and never runs foreign initialisation code.
# Sections are page-aligned in the file too, as Wine's own DLLs are: Wine
# then maps the image's pages from the file (shared by every boxed process)
# instead of reading a private copy of each section at every load.
RT_CFLAGS     := $(WIN_CFLAGS) -ffreestanding -D__USE_MINGW_ANSI_STDIO=0
RT_LDFLAGS    := -shared -s -nostdlib -Wl,--entry,fvm_dll_entry -Wl,--enable-stdcall-fixup \
                 -Wl,--image-base,0x7ff0f0000000 -Wl,--file-alignment,0x1000
RT_LIBS       := -lntdll -lkernel32 -lgcc

CORE_SRC   := $(wildcard src/core/*.c)
COMMON_SRC := $(wildcard src/common/*.c)
RT_SRC     := $(wildcard src/runtime/*.c src/runtime/hook/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
BROKER_SRC := $(wildcard src/broker/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
APP_SRC    := $(filter-out tests/apps/lib%.c,$(wildcard tests/apps/*.c))
APPLIB_SRC := $(wildcard tests/apps/lib*.c)
BENCH_SRC  := $(wildcard bench/*.c)
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)

NATIVE_CORE_OBJ := $(CORE_SRC:%.c=$(B)/native/%.o)
ASAN_CORE_OBJ   := $(CORE_SRC:%.c=$(B)/asan/%.o)
WIN_CORE_OBJ    := $(CORE_SRC:%.c=$(B)/win/%.o)
RT_CORE_OBJ     := $(CORE_SRC:%.c=$(B)/rt/%.o)
WIN_COMMON_OBJ  := $(COMMON_SRC:%.c=$(B)/win/%.o)
# boxlife.c (box create/stop/remove), blockprint.c (export's block
# fingerprints), boxserver.c (a box's own Wine server), xdisplay.c (a box's own X display) and resolver.c
# (names resolved for a box, with Winsock) are for fvm.exe, the SDK and the broker, never fvm.dll, which
# links no C runtime.
RT_COMMON_OBJ   := $(filter-out $(B)/rt/src/common/boxlife.o $(B)/rt/src/common/blockprint.o $(B)/rt/src/common/boxserver.o \
                                $(B)/rt/src/common/xdisplay.o $(B)/rt/src/common/resolver.o,$(COMMON_SRC:%.c=$(B)/rt/%.o))
RT_OBJ          := $(RT_SRC:%.c=$(B)/rt/%.o)
CLI_OBJ         := $(CLI_SRC:%.c=$(B)/win/%.o)
BROKER_OBJ      := $(BROKER_SRC:%.c=$(B)/win/%.o)

UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/native/tests/%)
UNIT_ASAN  := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)
APP_BIN    := $(APP_SRC:tests/apps/%.c=$(B)/win/apps/%.exe)
APPLIB_BIN := $(APPLIB_SRC:tests/apps/lib%.c=$(B)/win/apps/%.dll)
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(B)/win/bench/%.exe)

WIN_BIN := $(B)/win/fvm.exe $(B)/win/fvm-broker.exe $(B)/win/fvm.dll
# Defined before `win:` uses it: prerequisites are expanded when read.
SHIPPED_POLICY := $(patsubst policy/%,$(B)/win/policy/%,$(wildcard policy/*.ini policy/templates/*.ini))

.PHONY: all native asan win test demo setup clean fuzz
all: native asan win

native: $(B)/native/libfvmcore.a $(UNIT_BIN)
asan:   $(B)/asan/libfvmcore.a $(UNIT_ASAN)
win:    $(WIN_BIN) $(APP_BIN) $(APPLIB_BIN) $(BENCH_BIN) $(SHIPPED_POLICY)

# ---- portable core -------------------------------------------------------
$(B)/native/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -MMD -MP -c $< -o $@
$(B)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@
$(B)/native/libfvmcore.a: $(NATIVE_CORE_OBJ)
	ar rcs $@ $^
$(B)/asan/libfvmcore.a: $(ASAN_CORE_OBJ)
	ar rcs $@ $^
$(B)/native/tests/%: tests/unit/%.c $(B)/native/libfvmcore.a
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) $< -o $@ $(B)/native/libfvmcore.a -lcmocka
$(B)/asan/tests/%: tests/unit/%.c $(B)/asan/libfvmcore.a
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $< -o $@ $(B)/asan/libfvmcore.a -lcmocka

# ---- Windows -------------------------------------------------------------
$(B)/win/%.o: %.c
	@mkdir -p $(@D)
	$(MINGW) $(WIN_CFLAGS) -MMD -MP -c $< -o $@
$(B)/rt/%.o: %.c
	@mkdir -p $(@D)
	$(MINGW) $(RT_CFLAGS) -DFVM_RUNTIME -MMD -MP -c $< -o $@
$(B)/rt/src/runtime/crt.o: src/runtime/crt.c
	@mkdir -p $(@D)
	$(MINGW) $(RT_CFLAGS) -fno-builtin -fno-tree-loop-distribute-patterns -MMD -MP -c $< -o $@
$(B)/win/libfvmcore.a: $(WIN_CORE_OBJ)
	$(MINGWAR) rcs $@ $^
$(B)/win/libfvmcommon.a: $(WIN_COMMON_OBJ)
	$(MINGWAR) rcs $@ $^

$(B)/win/fvm.dll: $(RT_OBJ) $(RT_COMMON_OBJ) $(RT_CORE_OBJ) src/runtime/fvm.def
	$(MINGW) $(RT_LDFLAGS) -o $@ $(RT_OBJ) $(RT_COMMON_OBJ) $(RT_CORE_OBJ) src/runtime/fvm.def $(RT_LIBS)
$(B)/win/fvm.exe: $(CLI_OBJ) $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a
	$(MINGW) -municode -o $@ $(CLI_OBJ) $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a -lntdll -lshlwapi -lws2_32
$(B)/win/fvm-broker.exe: $(BROKER_OBJ) $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a
	$(MINGW) -municode -mwindows -o $@ $(BROKER_OBJ) $(B)/win/libfvmcommon.a $(B)/win/libfvmcore.a -lntdll -ladvapi32 -lws2_32

# The shipped policies sit next to fvm.exe: `template NAME` and boxes
# without a policy of their own read them from <exe folder>\policy.
$(B)/win/policy/%.ini: policy/%.ini
	@mkdir -p $(@D)
	cp $< $@

$(B)/win/apps/%.dll: tests/apps/lib%.c
	@mkdir -p $(@D)
	$(MINGW) $(WIN_CFLAGS) -shared -o $@ $< -Wl,--out-implib,$(B)/win/apps/lib$*.a
# Test apps may link the test DLLs (a static import whose DllMain must run hooked).
$(B)/win/apps/%.exe: tests/apps/%.c $(APPLIB_BIN)
	@mkdir -p $(@D)
	$(MINGW) $(WIN_CFLAGS) -o $@ $< -L$(B)/win/apps $(APPLIB_LINK_$*) -lntdll
$(B)/win/bench/%.exe: bench/%.c $(B)/win/libfvmcommon.a
	@mkdir -p $(@D)
	$(MINGW) $(WIN_CFLAGS) -o $@ $< $(B)/win/libfvmcommon.a -lntdll
$(B)/win/bench/netbench.exe: bench/netbench.c
	@mkdir -p $(@D)
	$(MINGW) $(WIN_CFLAGS) -o $@ $< -lws2_32 -lntdll

# ---- SDK ------------------------------------------------------------------
# libfvm.a: the SDK (include/fvm/fvm.h) with the common and core objects it
# uses, so a client links this one archive (docs/sdk.md).
SDK_SRC := $(wildcard src/sdk/*.c)
SDK_OBJ := $(SDK_SRC:%.c=$(B)/win/%.o)
$(B)/win/libfvm.a: $(SDK_OBJ) $(WIN_COMMON_OBJ) $(WIN_CORE_OBJ)
	rm -f $@
	$(MINGWAR) rcs $@ $^
win: $(B)/win/libfvm.a

include tests/apps/apps.mk

# ---- running -------------------------------------------------------------
setup:
	@scripts/setup.sh

test:
	@scripts/setup.sh
	@$(MAKE) --no-print-directory all
	@scripts/test.sh

demo:
	@scripts/setup.sh
	@$(MAKE) --no-print-directory win
	@scripts/demo.sh

fuzz:
	@scripts/fuzz.sh

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
