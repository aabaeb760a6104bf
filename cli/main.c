/*
 * cli/main.c - `blkrig VERB ...`: dispatch to one file per verb.
 * No logic lives here beyond choosing the verb.
 */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/verbs.h"

struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct verb verbs[] = {
    { "io", verb_io, "qemu-io compatible I/O on an image or graph" },
    { "img", verb_img, "qemu-img compatible create/info/check/map/compare" },
    { "serve", verb_serve, "qemu-storage-daemon: export nodes, QMP monitor" },
    { "qmp", verb_qmp, "send QMP commands to a socket, wait for events" },
    { "run", verb_run, "run scenarios and compare their transcripts" },
    { "sweep", verb_sweep, "re-run a scenario with a fault at every point" },
    { "demo", verb_demo, "the built-in demonstration" },
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "Usage: blkrig VERB [OPTIONS...]\n\nVerbs:\n");
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (!verbs[i].fn) {
            continue;
        }
        fprintf(f, "  %-8s %s\n", verbs[i].name, verbs[i].help);
    }
    fprintf(f, "\nblkrig VERB --help describes a verb.\n");
}

int main(int argc, char **argv)
{
    size_t i;

    /* Run through a link named qemu-io, blkrig is qemu-io: scripts written
     * for it work unchanged ("qemu-io -f raw -c ... img"). */
    if (verb_io && !strcmp(program_invocation_short_name, "qemu-io") &&
        !(argc > 1 && !strcmp(argv[1], "io"))) {
        return verb_io(argc, argv);
    }
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("blkrig version %s\n", BLKRIG_VERSION);
        return 0;
    }
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (!strcmp(argv[1], verbs[i].name) && verbs[i].fn) {
            return verbs[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "blkrig: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
