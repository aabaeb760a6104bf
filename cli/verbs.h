/*
 * cli/verbs.h - entry points of the verbs. Each takes main()'s argc/argv
 * with argv[0] set to the verb's program name ("blkrig io", or "qemu-io"
 * style names where scripts parse them) and returns the exit status.
 *
 * Each verb lives in its own file cli/<verb>.c. The declarations are weak
 * so that the dispatcher links while a verb is being built in another
 * branch; a verb that is not linked in is reported as such, never run.
 */
#ifndef BLKRIG_VERBS_H
#define BLKRIG_VERBS_H

#define BLKRIG_VERB(fn) int fn(int argc, char **argv) __attribute__((weak))

BLKRIG_VERB(verb_io);     /* cli/io.c:    qemu-io */
BLKRIG_VERB(verb_img);    /* cli/img.c:   qemu-img subset */
BLKRIG_VERB(verb_serve);  /* cli/serve.c: qemu-storage-daemon */
BLKRIG_VERB(verb_qmp);    /* cli/qmp.c:   QMP client for scripts */
BLKRIG_VERB(verb_run);    /* cli/run.c:   scenario runner */
BLKRIG_VERB(verb_sweep);  /* cli/sweep.c: fault sweep */
BLKRIG_VERB(verb_demo);   /* cli/demo.c:  the built-in demonstration */

#endif
