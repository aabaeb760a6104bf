# bench/injector.mk - `make bench` runs bench-injector: matching cost of
# blkdebug with 0..10,000 never-matching sector rules over null-co.
# Built with BUILD=release unless asked otherwise.

BENCH_INJECTOR := $(B)/bench/bench-injector

$(BENCH_INJECTOR): $(B)/bench/bench-injector.o $(LIB)
	$(if $(filter 1,$(V)),,@echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

-include $(B)/bench/bench-injector.d

.PHONY: bench-injector-bin
bench-injector-bin: $(BENCH_INJECTOR)
BENCHES += bench-injector
bench-injector:
	$(Q)$(MAKE) --no-print-directory BUILD=release bench-injector-bin
	$(Q)build/release/bench/bench-injector
