/*
 * driver/drivers.h - accessors of every driver's ops table, for
 * registry.c (and for tests that open a driver directly). One line per
 * driver file; the table itself stays static in its file.
 */
#ifndef BLKRIG_DRIVERS_H
#define BLKRIG_DRIVERS_H

struct bd_driver;

const struct bd_driver *bd_driver_file(void);
const struct bd_driver *bd_driver_raw(void);
const struct bd_driver *bd_driver_null_co(void);
const struct bd_driver *bd_driver_null_aio(void);
const struct bd_driver *bd_driver_blkdebug(void);   /* driver/blkdebug.c */
const struct bd_driver *bd_driver_mirror_top(void);
const struct bd_driver *bd_driver_qcow2(void);
const struct bd_driver *bd_driver_copy_before_write(void);
const struct bd_driver *bd_driver_snapshot_access(void);

#include <jansson.h>
#include "common/error.h"

/* Create a plain file of options "size" (and "preallocation"); shared by
 * the file and raw drivers' create. */
int bd_driver_file_create(const char *filename, json_t *options,
                          struct bd_error **errp);

#endif
