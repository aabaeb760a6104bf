# cli/: main() and one file per verb
CLI_SRCS += $(wildcard cli/*.c)
