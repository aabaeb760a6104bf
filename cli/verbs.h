/*
 * cli/verbs.h - entry points of the verbs. Each takes main()'s argc/argv
 * with argv[0] set to the verb's program name ("blkrig io", or "qemu-io"
 * style names where scripts parse them) and returns the exit status.
 */
#ifndef BLKRIG_VERBS_H
#define BLKRIG_VERBS_H

int verb_io(int argc, char **argv);

#endif
