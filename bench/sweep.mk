# bench/sweep.mk - `make bench` runs the sweep benchmarks (issue 10,
# "Benchmark"):
#  - bench-sweep (bench/bench-sweep.sh): sweep throughput, trials per
#    second, on the library's backup-target-stop and mirror-target-stop
#    scenarios with one and with two trials at a time;
#  - bench-sweep-library (bench/bench-sweep-library.sh): the whole
#    library's sweep, trials, time and trials per second, checked against
#    its budget of 15 minutes on 2 cores.
# `make check` runs neither: it sweeps one scenario (tests/iotests/401-sweep).

BENCHES += bench-sweep bench-sweep-library
.PHONY: bench-sweep bench-sweep-library
bench-sweep:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-sweep.sh

bench-sweep-library:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-sweep-library.sh
