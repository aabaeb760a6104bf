/*
 * cli/demo.c - `blkrig demo` (and `make demo`): the rig at work on
 * built-in defaults. In a private temporary directory it exports an image
 * through FUSE with a blkdebug fault rule and shows a client meeting the
 * fault, then backs the image up into a target that fails, with
 * on-target-error=stop, and shows the policy: the job pauses, the fault is
 * removed over QMP, the job resumes and the copy equals the source. It is
 * an ordinary scenario run by the scenario engine, so everything it shows
 * is checked; it ends with a short report and leaves nothing behind.
 */
#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run.h"
#include "cli/verbs.h"
#include "common/cutils.h"

static const char demo_scenario[] =
"echo == 1. A 4 MiB image behind a blkdebug filter: writes touching sector\n"
"echo ==    2048 (offset 1 MiB) fail with ENOSPC. It is exported through FUSE.\n"
"create -f raw disk.img 4M\n"
"blockdev-add {\"driver\": \"blkdebug\", \"node-name\": \"disk\", "
"\"image\": {\"driver\": \"file\", \"filename\": \"${TEST_DIR}/disk.img\"}, "
"\"inject-error\": [{\"event\": \"none\", \"iotype\": \"write\", "
"\"sector\": 2048, \"errno\": 28}]}\n"
"sh touch mnt\n"
"block-export-add type=fuse,id=exp0,node-name=disk,"
"mountpoint=${TEST_DIR}/mnt,writable=on\n"
"echo == 2. Any program can use the export. The first MiB is written...\n"
"sh head -c 1048576 /dev/zero | tr '\\0' 'a' | dd of=mnt bs=64k "
"conv=notrunc,fsync status=none && echo \"dd: wrote 1 MiB at offset 0\"\n"
"echo ==    ...but a write at 1 MiB meets the fault, as the client's errno:\n"
"sh dd if=/dev/zero of=mnt bs=4k seek=256 count=1 conv=notrunc,fsync "
"status=none\n"
"query-blkdebug node-name=disk\n"
"expect reply return.0.injected=1 return.0.rules.0.errno=28\n"
"block-export-del id=exp0\n"
"wait BLOCK_EXPORT_DELETED id=exp0\n"
"echo == 3. Back the image up into a target whose writes fail with EIO,\n"
"echo ==    with on-target-error=stop: the job must pause, not fail.\n"
"create -f raw backup.img 4M\n"
"blockdev-add {\"driver\": \"blkdebug\", \"node-name\": \"tgt\", "
"\"image\": {\"driver\": \"file\", \"filename\": "
"\"${TEST_DIR}/backup.img\"}}\n"
"blkdebug-inject-add node-name=tgt,event=none,iotype=write,errno=5,"
"arm=true\n"
"blockdev-backup job-id=b0,device=disk,target=tgt,sync=full,"
"on-target-error=stop\n"
"wait BLOCK_JOB_ERROR device=b0\n"
"wait JOB_STATUS_CHANGE id=b0 status=paused\n"
"expect job b0 status=paused io-status=failed\n"
"echo == 4. The fault fired (hit counters over QMP); remove it and resume.\n"
"query-blkdebug node-name=tgt\n"
"expect reply return.0.rules.0.hits=1\n"
"blkdebug-inject-remove node-name=tgt,id=1\n"
"job-resume id=b0\n"
"wait BLOCK_JOB_COMPLETED device=b0\n"
"expect job b0 status=null\n"
"echo == 5. The copy equals the source, byte for byte.\n"
"expect equal disk tgt\n";

static void demo_usage(FILE *f)
{
    fprintf(f,
"Usage: blkrig demo\n"
"Export an image with a fault rule through FUSE, run a backup into a\n"
"failing target with on-target-error=stop, and report. Needs FUSE\n"
"(/dev/fuse). Uses a private temporary directory and removes it.\n");
}

int verb_demo(int argc, char **argv)
{
    char tmpl[] = "/tmp/blkrig-demo.XXXXXX";
    char self[PATH_MAX];
    struct sc_options o = { 0 };
    struct bd_error *err = NULL;
    char *path, *cmd;
    FILE *f;
    ssize_t sl;
    int r;

    (void)argv;
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            demo_usage(stdout);
            return 0;
        }
        fprintf(stderr, "blkrig demo: unexpected argument '%s'\n", argv[1]);
        demo_usage(stderr);
        return 1;
    }
    if (access("/dev/fuse", R_OK | W_OK) < 0) {
        fprintf(stderr, "blkrig demo: FUSE is not available (/dev/fuse: "
                "%s)\n", strerror(errno));
        return 1;
    }
    sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0 || !mkdtemp(tmpl)) {
        fprintf(stderr, "blkrig demo: cannot set up: %s\n", strerror(errno));
        return 1;
    }
    self[sl] = '\0';
    path = bd_strdup_printf("%s/demo.scn", tmpl);
    f = fopen(path, "w");
    if (!f || fputs(demo_scenario, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "blkrig demo: cannot write %s\n", path);
        free(path);
        return 1;
    }
    if (chdir(tmpl) < 0) {
        fprintf(stderr, "blkrig demo: chdir %s: %s\n", tmpl,
                strerror(errno));
        free(path);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    o.test_dir = tmpl;
    o.blkrig = self;
    o.io = run_io;
    o.out = stdout;
    o.wait_timeout_s = 60;
    printf("blkrig demo (scratch directory %s)\n\n", tmpl);
    r = sc_run_file(path, &o, &err);
    if (err) {
        bd_error_report_err("blkrig demo", err);
    }
    printf("\n== report\n");
    printf("  fault rule on the FUSE export:   %s\n",
           r == 0 ? "a client write at 1 MiB failed with ENOSPC" : "?");
    printf("  backup, on-target-error=stop:    %s\n",
           r == 0 ? "paused on EIO, resumed after the rule was removed, "
                    "completed" : "?");
    printf("  copy equals source:              %s\n",
           r == 0 ? "yes" : "see the failures above");
    printf("  result:                          %s\n",
           r == 0 ? "PASS" : r < 0 ? "ERROR" : "FAIL");
    if (chdir("/") < 0) {
        /* Removal below uses absolute paths. */
    }
    cmd = bd_strdup_printf("rm -rf '%s'", tmpl);
    if (system(cmd) != 0) {
        fprintf(stderr, "blkrig demo: could not remove %s\n", tmpl);
    }
    free(cmd);
    free(path);
    return r == 0 ? 0 : 1;
}
