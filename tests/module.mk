# tests/: cmocka unit tests (one binary per module), golden iotests,
# scenario library, compatibility tests against QEMU's tools.

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
UNIT_MAIN := $(B)/tests/unit/unit-main.o
.SECONDARY:
TEST_HELPER_SRCS := $(wildcard tests/helpers/*.c)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:%.c=$(B)/%.o)

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(UNIT_MAIN) $(TEST_HELPER_OBJS) $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) \
		$(LIBS) $(shell pkg-config --libs cmocka)

# A fixture shared by a few binaries is linked into those alone (in
# tests/helpers it would be linked into every unit binary).
BACKUP_FIXTURE := $(B)/tests/unit/backup-fixture.o
$(B)/tests/unit/test_backup $(B)/tests/unit/test_cbw: $(BACKUP_FIXTURE)

-include $(BACKUP_FIXTURE:.o=.d) $(UNIT_BINS:%=%.d) $(UNIT_MAIN:.o=.d) $(TEST_HELPER_OBJS:.o=.d)

# Everything the test scripts run.
TEST_BINS := $(BLKRIG) $(UNIT_BINS) $(TOOLS)

check-unit: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(B) $(UNIT_BINS)

check-iotests: $(BLKRIG) $(TOOLS)
	$(Q)BLKRIG=$(CURDIR)/$(BLKRIG) BUILD_DIR=$(CURDIR)/$(B) tests/iotests/check

check-compat: $(BLKRIG) $(TOOLS)
	$(Q)BLKRIG=$(CURDIR)/$(BLKRIG) BUILD_DIR=$(CURDIR)/$(B) tests/compat/run

check-scenarios: $(BLKRIG)
	$(Q)if [ -x scenarios/run-library.sh ]; then \
		BLKRIG=$(CURDIR)/$(BLKRIG) scenarios/run-library.sh; \
	else echo "scenarios: library not present yet"; fi

check: $(TEST_BINS)
	$(Q)$(MAKE) --no-print-directory check-unit
	$(Q)$(MAKE) --no-print-directory check-iotests
	$(Q)$(MAKE) --no-print-directory check-scenarios
	$(Q)$(MAKE) --no-print-directory check-compat

# Fuzz targets: each tests/fuzz/<area>.mk adds a check-fuzz-<area> target
# and makes check-fuzz depend on it (bounded runs under the sanitizers).
.PHONY: check-fuzz
check-fuzz:
	@echo "fuzz: done"
include $(wildcard tests/fuzz/*.mk)
