# bench/qcow2.mk - `make bench` runs bench/bench-qcow2.sh: 4k random writes
# at queue depth 32 through FUSE into an allocating and a fully allocated
# qcow2 image, qemu-storage-daemon and blkrig serve side by side (issue 7;
# docs/drivers/qcow2.md).

BENCHES += bench-qcow2
.PHONY: bench-qcow2
bench-qcow2:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-qcow2.sh
