# bench/: benchmarks, run by `make bench`, never as timed tests.
#
# A module adds a benchmark by appending a phony target to BENCHES in its own
# module.mk and defining it there, for example
#     BENCHES += bench-fuse
#     bench-fuse: $(BLKRIG)
#             bench/fuse.sh $(BLKRIG)
# Results go to bench/results/ (git-ignored). This file is included last so
# that `bench` sees every module's additions.

.PHONY: bench $(BENCHES)

bench: $(BENCHES)
ifeq ($(strip $(BENCHES)),)
	@echo "bench: no benchmarks defined yet (modules add them to BENCHES)"
else
	@echo "bench: ran $(words $(BENCHES)) benchmark(s): $(BENCHES)"
endif
