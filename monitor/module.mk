# monitor/: the QMP server
LIB_SRCS += $(wildcard monitor/*.c)

# The command tables (monitor/qmp-cmds.h) are only referenced weakly, and
# the linker pulls an archive member only for a strong reference. So every
# monitor/qmp-<area>.c present names its table qmp_cmds_<area> as an
# undefined symbol on each link, which pulls that member in; areas not
# written yet have no file and their table stays NULL.
QMP_TABLES := $(patsubst monitor/qmp-%.c,%,$(wildcard monitor/qmp-*.c))
LDFLAGS += $(foreach t,$(QMP_TABLES),-Wl,-u,qmp_cmds_$(t))
# The daemon (cli/serve.c) reaches the server through weak references too,
# so the server itself is named the same way.
LDFLAGS += -Wl,-u,qmp_server_new
