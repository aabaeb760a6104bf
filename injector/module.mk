# injector/: rule model, parsing, matching, breakpoints
LIB_SRCS += $(wildcard injector/*.c)
