# bench/backup.mk - `make bench` runs bench/bench-backup.py: a 1 GiB full
# backup (raw -> raw, qcow2 -> qcow2) through qemu-storage-daemon and
# blkrig serve, then the same with 4k random guest writes on the source
# (guest IOPS and backup rate for each; docs/backup.md).

BENCHES += bench-backup
.PHONY: bench-backup
bench-backup:
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig bench/bench-backup.py
