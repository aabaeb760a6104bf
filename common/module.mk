# common/: errors, logging, options, utilities
LIB_SRCS += $(wildcard common/*.c)
