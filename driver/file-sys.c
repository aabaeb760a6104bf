/*
 * driver/file-sys.c - the default syscall table: libc and libaio.
 */
#include "common/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver/file-sys.h"

static int sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int sys_fcntl_lock(int fd, int cmd, struct flock *fl)
{
    return fcntl(fd, cmd, fl);
}

const struct bd_file_sys bd_file_sys_default = {
    .open = sys_open,
    .close = close,
    .preadv = preadv,
    .pwritev = pwritev,
    .fdatasync = fdatasync,
    .fallocate = fallocate,
    .ftruncate = ftruncate,
    .lseek = lseek,
    .fstat = fstat,
    .fcntl_lock = sys_fcntl_lock,
    .io_setup = io_setup,
    .io_destroy = io_destroy,
    .io_submit = io_submit,
    .io_getevents = io_getevents,
};
