# monitor/: the QMP server
LIB_SRCS += $(wildcard monitor/*.c)
