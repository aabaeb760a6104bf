# bench/sweep.mk - `make bench` runs bench/bench-sweep.sh: sweep throughput
# (trials per second) on the library's mirror-target-stop scenario, with
# one and with two trials at a time (issue 10, "Benchmark").

BENCHES += bench-sweep
.PHONY: bench-sweep
bench-sweep:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-sweep.sh
