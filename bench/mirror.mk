# bench/mirror.mk - `make bench` runs bench/bench-mirror.py: a 1 GiB
# mirror through qemu-storage-daemon and blkrig serve (copy rate, ratio),
# and the guest's 4k write latency over FUSE without a job and during a
# READY mirror in background and write-blocking mode (docs/mirror.md).

BENCHES += bench-mirror
.PHONY: bench-mirror
bench-mirror:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-mirror.py
