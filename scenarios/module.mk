# scenarios/engine: scenario language, runner and sweep
LIB_SRCS += $(wildcard scenarios/engine/*.c)
