/*
 * tests/unit/unit.h - shared declarations for cmocka unit tests.
 * Include order in a test file: common/config.h, <setjmp.h> <stdarg.h>
 * <stddef.h> <stdint.h>, <cmocka.h>, then this header and the module's.
 */
#ifndef BLKRIG_UNIT_H
#define BLKRIG_UNIT_H

/* Defined once per test file: run the file's groups, return failures. */
int unit_run_tests(void);

#endif
