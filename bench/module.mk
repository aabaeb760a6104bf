# bench/: benchmarks, run by `make bench`, never as timed tests.
#
# Each area adds its benchmark in its own bench/<area>.mk (or its
# module.mk): a phony target appended to BENCHES (or hung off `bench`
# directly). This file includes them and is itself included last by the
# Makefile, so `bench` sees every addition; BENCHES starts empty in the
# Makefile, not here, so additions made in module.mk files survive.
# Benchmarks build with BUILD=release unless asked otherwise.

include $(filter-out bench/module.mk,$(wildcard bench/*.mk))

.PHONY: bench $(BENCHES)

bench: $(BENCHES)
ifeq ($(strip $(BENCHES)),)
	@echo "bench: no benchmarks defined yet (areas add them to BENCHES)"
else
	@echo "bench: ran $(words $(BENCHES)) benchmark(s): $(BENCHES)"
endif
