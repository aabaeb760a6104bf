/*
 * fuse/fx-int.h - helpers of the FUSE export that the daemon (cli/serve.c)
 * and the unit tests use directly. Not part of the users' API.
 */
#ifndef BLKRIG_FX_INT_H
#define BLKRIG_FX_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Absolute path of path with its directory resolved (the last component
 * is kept as given, so it works on a dead mount). NULL with errno set
 * when the directory cannot be resolved. Caller frees. */
char *fx_canonical_path(const char *path);
/* Is the absolute path a mount point in our namespace? *fstype receives
 * the type of the visible (last) mount when it is. */
bool fx_path_is_mountpoint(const char *path, char *fstype, size_t fslen);

#endif
