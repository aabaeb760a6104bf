# bench/fuse.mk - `make bench` runs bench/bench-fuse.sh: fio through the
# FUSE ceiling, qemu-storage-daemon and blkrig serve, side by side in one
# run (see docs/fuse.md for what is measured and why).

# ../shared from the project root (a worktree sits one level deeper).
SHARED_DIR ?= $(firstword $(wildcard ../shared ../../shared /work/shared))
FUSE_CEILING := build/release/bench/fuse-ceiling

$(FUSE_CEILING): $(SHARED_DIR)/bench/fuse-ceiling.c
	@mkdir -p $(dir $@)
	$(if $(filter 1,$(V)),,@echo "  CC      $@")
	$(Q)$(CC) -O2 -o $@ $< $$(pkg-config --cflags --libs fuse3)

BENCHES += bench-fuse
.PHONY: bench-fuse
bench-fuse: $(FUSE_CEILING)
	$(Q)$(MAKE) --no-print-directory BUILD=release SANITIZE= build/release/blkrig
	$(Q)BLKRIG=$(CURDIR)/build/release/blkrig FUSE_CEILING=$(CURDIR)/$(FUSE_CEILING) \
		bench/bench-fuse.sh
