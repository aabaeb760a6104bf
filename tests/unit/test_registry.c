/*
 * tests/unit/test_registry.c - driver/registry.c: the driver list (unique
 * names, complete tables, built once even when many threads ask first),
 * lookup by name and by protocol prefix, and format probing.
 */
#include "common/config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "driver/block-int.h"
#include "driver/drivers.h"
#include "tests/unit/unit.h"

/* Every table is complete and every name unique. */
static void test_registry_tables(void **state)
{
    const struct bd_driver *const *list = bd_driver_list();
    const struct bd_driver *const *a;
    const struct bd_driver *const *b;
    int n = 0;

    (void)state;
    for (a = list; *a; a++) {
        n++;
        assert_int_equal((*a)->struct_size, sizeof(struct bd_driver));
        assert_non_null((*a)->name);
        assert_non_null((*a)->open);
        if (!(*a)->is_filter) {
            assert_non_null((*a)->getlength);
        }
        assert_ptr_equal(bd_find_driver((*a)->name), *a);
        for (b = a + 1; *b; b++) {
            assert_string_not_equal((*a)->name, (*b)->name);
            if ((*a)->protocol_name && (*b)->protocol_name) {
                assert_string_not_equal((*a)->protocol_name,
                                        (*b)->protocol_name);
            }
        }
    }
    assert_true(n >= 4);
    assert_ptr_equal(bd_find_driver("file"), bd_driver_file());
    assert_ptr_equal(bd_find_driver("raw"), bd_driver_raw());
    assert_ptr_equal(bd_find_driver("null-co"), bd_driver_null_co());
    assert_ptr_equal(bd_find_driver("null-aio"), bd_driver_null_aio());
    assert_null(bd_find_driver("nope"));
    assert_null(bd_find_driver(""));
    assert_true(bd_driver_raw()->is_format);
    assert_false(bd_driver_file()->is_format);
}

/* QEMU's path_has_protocol: a prefix before the first ':' unless a '/'
 * comes first; an unknown prefix is no file name. */
static void test_registry_find_protocol(void **state)
{
    (void)state;
    assert_ptr_equal(bd_find_protocol("a.img"), bd_driver_file());
    assert_ptr_equal(bd_find_protocol("/tmp/a.img"), bd_driver_file());
    assert_ptr_equal(bd_find_protocol("file:a.img"), bd_driver_file());
    assert_ptr_equal(bd_find_protocol("null-co://"), bd_driver_null_co());
    assert_ptr_equal(bd_find_protocol("null-aio://"), bd_driver_null_aio());
    assert_ptr_equal(bd_find_protocol("./foo:bar"), bd_driver_file());
    assert_ptr_equal(bd_find_protocol("/x/foo:bar"), bd_driver_file());
    assert_null(bd_find_protocol("foo:bar"));
    assert_null(bd_find_protocol("null-co-x://"));
    assert_null(bd_find_protocol(":x"));
}

/* Without any better match, everything probes as raw. */
static void test_registry_probe(void **state)
{
    uint8_t buf[2048];

    (void)state;
    memset(buf, 0, sizeof(buf));
    assert_ptr_equal(bd_probe_format(buf, sizeof(buf), "a.img"),
                     bd_driver_raw());
    assert_ptr_equal(bd_probe_format(buf, 0, NULL), bd_driver_raw());
    memcpy(buf, "QFI\xfb", 4);
    assert_non_null(bd_probe_format(buf, sizeof(buf), "q.qcow2"));
}

/* Many threads asking for the list first all get the complete list. */
#define NT 8

struct lister {
    pthread_barrier_t *start;
    const struct bd_driver *const *list;
    int count;
};

static void *lister_main(void *opaque)
{
    struct lister *l = opaque;
    const struct bd_driver *const *d;

    pthread_barrier_wait(l->start);
    l->list = bd_driver_list();
    for (d = l->list; *d; d++) {
        l->count++;
    }
    return NULL;
}

static void test_registry_threads(void **state)
{
    pthread_barrier_t start;
    pthread_t th[NT];
    struct lister l[NT];
    int i;

    (void)state;
    pthread_barrier_init(&start, NULL, NT);
    for (i = 0; i < NT; i++) {
        memset(&l[i], 0, sizeof(l[i]));
        l[i].start = &start;
        pthread_create(&th[i], NULL, lister_main, &l[i]);
    }
    for (i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
    }
    for (i = 1; i < NT; i++) {
        assert_ptr_equal(l[i].list, l[0].list);
        assert_int_equal(l[i].count, l[0].count);
    }
    assert_true(l[0].count >= 4);
    pthread_barrier_destroy(&start);
}

int unit_run_tests(void)
{
    const struct CMUnitTest tests[] = {
        /* First, so that the threads race to build the list. */
        cmocka_unit_test(test_registry_threads),
        cmocka_unit_test(test_registry_tables),
        cmocka_unit_test(test_registry_find_protocol),
        cmocka_unit_test(test_registry_probe),
    };

    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
