/*
 * test_handler_table.c - the worker's handler table against the job type
 * registry (common/jobtypes.c): every registered type has a handler, every
 * handler's type is registered and listed once, and once the table is
 * registered the runtime finds each handler by its type and nothing for a
 * type without one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "handler_table.h"
#include "handlers.h"
#include "jobtypes.h"

static int setup(void **state)
{
    (void)state;
    return jobtypes_init();
}

static void test_every_registered_type_has_a_handler(void **state)
{
    (void)state;
    size_t n_types, n_rows;
    const job_type *types = jobtypes_all(&n_types);
    const job_handler_entry *rows = handler_table(&n_rows);
    assert_true(n_types > 0);
    for (size_t i = 0; i < n_types; i++) {
        size_t found = 0;
        for (size_t k = 0; k < n_rows; k++)
            found += strcmp(rows[k].type, types[i].name) == 0 && rows[k].fn != NULL;
        if (found != 1)
            fail_msg("job type \"%s\" has %zu handlers in the table", types[i].name, found);
    }
}

static void test_every_handler_type_is_registered(void **state)
{
    (void)state;
    size_t n_rows;
    const job_handler_entry *rows = handler_table(&n_rows);
    for (size_t k = 0; k < n_rows; k++) {
        assert_non_null(rows[k].fn);
        if (jobtypes_find(rows[k].type) == NULL)
            fail_msg("handler for \"%s\", which is no registered job type", rows[k].type);
        for (size_t j = 0; j < k; j++)
            if (strcmp(rows[j].type, rows[k].type) == 0)
                fail_msg("job type \"%s\" is listed twice", rows[k].type);
    }
}

static void test_the_runtime_finds_what_was_registered(void **state)
{
    (void)state;
    handlers_register(NULL, 0);
    assert_null(handler_for_type("demo"));

    handler_table_register();
    size_t n_types, n_rows;
    const job_type *types = jobtypes_all(&n_types);
    const job_handler_entry *rows = handler_table(&n_rows);
    for (size_t k = 0; k < n_rows; k++)
        assert_ptr_equal(handler_for_type(rows[k].type), rows[k].fn);
    for (size_t i = 0; i < n_types; i++)
        assert_non_null(handler_for_type(types[i].name));
    assert_null(handler_for_type("no.such.type"));
    assert_null(handler_for_type(""));
    assert_null(handler_for_type(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_registered_type_has_a_handler),
        cmocka_unit_test(test_every_handler_type_is_registered),
        cmocka_unit_test(test_the_runtime_finds_what_was_registered),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
