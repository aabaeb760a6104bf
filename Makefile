# blkrig - top-level, non-recursive Makefile.
#
#   make                      build build/$(BUILD)/blkrig (BUILD=debug|release|cov)
#   make check                unit tests, golden iotests, scenarios, compat tests
#   make SANITIZE=address,undefined check
#   make coverage             lcov report into coverage/html (+ gate)
#   make bench                benchmarks against the FUSE ceiling and QEMU
#   make demo                 the built-in demonstration
#   make clean
#
# Every build configuration gets its own object directory, so switching
# BUILD or SANITIZE never mixes objects and never needs a clean.

BUILD ?= debug
SANITIZE ?=
V ?= 0
CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif

comma := ,
empty :=
space := $(empty) $(empty)

ifneq ($(filter-out debug release cov,$(BUILD)),)
$(error BUILD: unknown value '$(BUILD)' (use debug, release or cov))
endif
SAN_LIST := $(subst $(comma),$(space),$(SANITIZE))
SAN_BAD := $(filter-out address undefined thread,$(SAN_LIST))
ifneq ($(SAN_BAD),)
$(error SANITIZE: unknown value '$(firstword $(SAN_BAD))' (use address, undefined, thread))
endif

CONFIG := $(BUILD)$(if $(SAN_LIST),-$(subst $(space),-,$(SAN_LIST)))
B := build/$(CONFIG)

WARN := -std=c11 -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes \
	-Wmissing-prototypes -Wold-style-definition -Wwrite-strings -Wformat=2 \
	-Wimplicit-fallthrough -Wundef -Winit-self -Wredundant-decls \
	-Wpointer-arith -Wcast-align -Werror=implicit-function-declaration \
	-fno-common -Werror

PKGS := fuse3 jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_debug := -O1 -g
CFLAGS_release := -O2 -g -DNDEBUG
CFLAGS_cov := -O0 -g --coverage -DBD_COVERAGE_TEST
LDFLAGS_cov := --coverage

SAN_FLAGS := $(if $(SAN_LIST),-fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer)

CPPFLAGS += -I. -MMD -MP
CFLAGS := $(WARN) $(CFLAGS_$(BUILD)) $(SAN_FLAGS) $(PKG_CFLAGS) -pthread $(EXTRA_CFLAGS)
LDFLAGS := $(LDFLAGS_$(BUILD)) $(SAN_FLAGS) -pthread $(EXTRA_LDFLAGS)
LIBS := $(PKG_LIBS) -laio -lz -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB := $(B)/libblkrig.a
BLKRIG := $(B)/blkrig

# The default target comes before the module makefiles define theirs.
all: $(BLKRIG)

# Modules add to these.
LIB_SRCS :=
CLI_SRCS :=
UNIT_TESTS :=
TOOLS :=
BENCHES :=

include common/module.mk
include injector/module.mk
include driver/module.mk
include jobs/module.mk
include fuse/module.mk
include monitor/module.mk
include scenarios/module.mk
include cli/module.mk
include tests/module.mk
# Last: its `bench` rule expands BENCHES as every area left it.
include bench/module.mk

LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(B)/%.o)
# The deps stamp makes every build check (and, where missing, install) the
# Debian packages once per machine; see scripts/deps.sh.
DEPS_STAMP := build/.deps-ok

.PHONY: all check check-unit check-iotests check-scenarios check-compat \
	check-fuzz coverage bench demo clean deps format check-format

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	$(Q)./scripts/deps.sh
	$(Q)mkdir -p build && touch $@

$(B)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(if $(filter 1,$(V)),,@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	$(if $(filter 1,$(V)),,@echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BLKRIG): $(CLI_OBJS) $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(LIBS)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d)

# Test binaries and the check targets live in tests/module.mk.

# The README's first command: build, then run the built-in demonstration.
demo: $(BLKRIG)
	$(Q)$(BLKRIG) demo

# Coverage: a separate cov build (never sanitized), counters zeroed, the
# whole check run, then coverage/report.sh (lcov capture, exclusions,
# genhtml into coverage/html, summary, gate in coverage/gate.txt).
# Each check phase runs even when an earlier one fails (a flaky test must
# not hide the figures), with BLKRIG_INJECT_TRACE set for
# coverage/injection.sh; any failure still fails the target.
coverage:
	$(Q)if [ -d build/cov ]; then find build/cov -name '*.gcda' -delete; fi
	$(Q)rm -f coverage/inject.trace
	$(Q)st=0; for t in check-unit check-iotests check-scenarios check-compat; do \
		BLKRIG_INJECT_TRACE=$(CURDIR)/coverage/inject.trace \
		$(MAKE) --no-print-directory BUILD=cov SANITIZE= $$t || st=1; \
	done; \
	coverage/injection.sh coverage/inject.trace || st=1; \
	coverage/report.sh build/cov || st=1; \
	if [ $$st != 0 ]; then echo "coverage: FAILED (tests or gates; see above)" >&2; fi; \
	exit $$st

clean:
	rm -rf build coverage/html coverage/*.info coverage/summary.txt \
		coverage/dirs.txt coverage/inject.trace coverage/injection.txt
	find . -name '*.out.bad' -delete -o -name '*.notrun' -delete
