/*
 * cli/io.c - `blkrig io`: qemu-io compatible. (Bootstrap version: open an
 * image and run read/write commands; the full command set follows.)
 */
#include "common/config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/verbs.h"
#include "common/cutils.h"
#include "driver/block.h"

int verb_io(int argc, char **argv)
{
    struct bd_graph *g = bd_graph_new();
    struct bd_error *err = NULL;
    struct bd_node *n = NULL;
    struct bd_blk *b = NULL;
    json_t *opts = json_object();
    const char *cmds[64];
    int ncmds = 0;
    int c;
    int i;
    int ret = 0;

    while ((c = getopt(argc, argv, "c:f:")) != -1) {
        if (c == 'c' && ncmds < 64) {
            cmds[ncmds++] = optarg;
        } else if (c == 'f') {
            json_object_set_new(opts, "driver", json_string(optarg));
        }
    }
    n = bd_open(g, argv[optind], opts, BD_O_RDWR | BD_O_UNMAP, &err);
    if (!n) {
        bd_error_report_err("blkrig io", err);
        bd_graph_free(g);
        return 1;
    }
    b = bd_blk_new(g, NULL, BD_PERM_CONSISTENT_READ | BD_PERM_WRITE |
                   BD_PERM_RESIZE, BD_PERM_ALL);
    if (bd_blk_insert(b, n, &err) < 0) {
        bd_error_report_err("blkrig io", err);
        bd_unref(n);
        bd_graph_free(g);
        return 1;
    }
    bd_unref(n);
    for (i = 0; i < ncmds; i++) {
        char op[16];
        uint64_t off = 0, len = 0;
        char so[64], sl[64];
        void *buf = NULL;
        int r;

        if (sscanf(cmds[i], "%15s %63s %63s", op, so, sl) != 3 ||
            bd_parse_size(so, &off) < 0 || bd_parse_size(sl, &len) < 0) {
            fprintf(stderr, "bad command: %s\n", cmds[i]);
            ret = 1;
            continue;
        }
        buf = bd_memalign(4096, len);
        memset(buf, 0xab, len);
        if (!strcmp(op, "read")) {
            r = bd_blk_pread(b, (int64_t)off, (int64_t)len, buf, 0);
        } else {
            r = bd_blk_pwrite(b, (int64_t)off, (int64_t)len, buf, 0);
        }
        if (r < 0) {
            printf("%s failed: %s\n", op, bd_strerror(-r));
            ret = 1;
        } else {
            printf("%s %" PRIu64 "/%" PRIu64 " bytes at offset %" PRIu64 "\n",
                   !strcmp(op, "read") ? "read" : "wrote", len, len, off);
        }
        free(buf);
    }
    bd_graph_free(g);
    return ret;
}
