# jobs/: generic job state machine, backup, mirror, transactions
LIB_SRCS += $(wildcard jobs/*.c)
