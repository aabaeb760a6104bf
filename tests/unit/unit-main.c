/*
 * tests/unit/unit-main.c - the one main() of every unit-test binary.
 *
 * Each tests/unit/test_<module>.c defines unit_run_tests(), which runs its
 * cmocka group(s) and returns the number of failures. Options:
 *   -t PATTERN   run only tests whose name matches (cmocka_set_test_filter)
 * CMOCKA_MESSAGE_OUTPUT=TAP (set by tests/run-unit.sh in CI) selects TAP.
 */
#include "common/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/unit.h"

int main(int argc, char **argv)
{
    int c;

    while ((c = getopt(argc, argv, "t:")) != -1) {
        if (c == 't') {
            cmocka_set_test_filter(optarg);
        } else {
            fprintf(stderr, "usage: %s [-t PATTERN]\n", argv[0]);
            return 2;
        }
    }
    return unit_run_tests();
}
