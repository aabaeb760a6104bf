/*
 * driver/file-sys.h - the file driver's system-call seam (SQLite's aSyscall
 * idea, without the global): every syscall the file driver makes goes
 * through a struct bd_file_sys. Each graph carries a pointer to one
 * (bd_graph_file_sys); nodes copy it when they open. Production uses
 * bd_file_sys_default; unit tests install tables whose entries return
 * EAGAIN, short transfers, ENOSPC or EIO, keeping the real calls' contracts
 * (return -1 and set errno, or the libaio convention of returning -errno).
 */
#ifndef BLKRIG_FILE_SYS_H
#define BLKRIG_FILE_SYS_H

#include <libaio.h>
#include <sys/types.h>
#include <sys/uio.h>

struct bd_graph;

struct bd_file_sys {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*preadv)(int fd, const struct iovec *iov, int n, off_t off);
    ssize_t (*pwritev)(int fd, const struct iovec *iov, int n, off_t off);
    int (*fdatasync)(int fd);
    int (*fallocate)(int fd, int mode, off_t off, off_t len);
    int (*ftruncate)(int fd, off_t len);
    off_t (*lseek)(int fd, off_t off, int whence);
    int (*fstat)(int fd, struct stat *st);
    int (*fcntl_lock)(int fd, int cmd, struct flock *fl);
    int (*io_setup)(int maxevents, io_context_t *ctx);
    int (*io_destroy)(io_context_t ctx);
    int (*io_submit)(io_context_t ctx, long n, struct iocb **iocbs);
    int (*io_getevents)(io_context_t ctx, long min_nr, long nr,
                        struct io_event *events, struct timespec *timeout);
};

extern const struct bd_file_sys bd_file_sys_default;

/* The table nodes of g use (bd_file_sys_default unless a test set one). */
const struct bd_file_sys *bd_graph_file_sys(struct bd_graph *g);
void bd_graph_set_file_sys(struct bd_graph *g, const struct bd_file_sys *sys);

#endif
