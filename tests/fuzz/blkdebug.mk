# tests/fuzz/blkdebug.mk - fuzz driver for blkdebug's config-file and
# inline-option parsers (injector/). `make check-fuzz` builds it with
# AddressSanitizer and UndefinedBehaviorSanitizer and runs a bounded number
# of seeded random inputs (FUZZ_BLKDEBUG_ITERS, default 10000).

FUZZ_BLKDEBUG_ITERS ?= 10000
FUZZ_SAN_DIR := build/debug-address-undefined

$(B)/tests/fuzz/fuzz_blkdebug_config: $(B)/tests/fuzz/fuzz_blkdebug_config.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

-include $(B)/tests/fuzz/fuzz_blkdebug_config.d

.PHONY: check-fuzz-blkdebug fuzz-blkdebug-bin
fuzz-blkdebug-bin: $(B)/tests/fuzz/fuzz_blkdebug_config

check-fuzz: check-fuzz-blkdebug
check-fuzz-blkdebug:
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined fuzz-blkdebug-bin
	$(Q)$(FUZZ_SAN_DIR)/tests/fuzz/fuzz_blkdebug_config -n $(FUZZ_BLKDEBUG_ITERS)
