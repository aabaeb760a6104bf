# driver/: node graph, request path, drivers and filters
LIB_SRCS += $(wildcard driver/*.c)
