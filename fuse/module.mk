# fuse/: the FUSE export
LIB_SRCS += $(wildcard fuse/*.c)
