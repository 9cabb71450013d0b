/*
 * harness.h — Criterion, or (with -DES_NO_CRITERION) a minimal runner with the same
 * Test()/cr_assert* surface for ThreadSanitizer builds: Criterion's runner cannot
 * start under TSan (Snaipe/Criterion#274, "Could not initialize inheritable arena").
 * The minimal runner supports what the concurrency tests use: Test(suite, name, ...)
 * without fixtures, the cr_assert family and cr_log_info. A failed assertion prints
 * its place and ends the run with status 1.
 */
#ifndef ES_TEST_HARNESS_H
#define ES_TEST_HARNESS_H

#ifndef ES_NO_CRITERION
#include <criterion/criterion.h>
#else
#include <stdio.h>
#include <stdlib.h>

typedef struct es_test_case {
    const char *suite, *name;
    void (*fn)(void);
} es_test_case;

static es_test_case es_tests[64];
static int es_ntests;

static inline void es_register(const char *suite, const char *name, void (*fn)(void)) {
    es_tests[es_ntests++] = (es_test_case){suite, name, fn};
}

static inline void es_check(int ok, const char *expr, const char *file, int line) {
    if (ok) return;
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    printf("0 passed, 1 failed\n");
    exit(1);
}

#define Test(suite, name, ...)                                                                     \
    static void suite##_##name(void);                                                              \
    __attribute__((constructor)) static void register_##suite##_##name(void) {                     \
        es_register(#suite, #name, suite##_##name);                                                \
    }                                                                                              \
    static void suite##_##name(void)

#define cr_assert(cond, ...) es_check(!!(cond), #cond, __FILE__, __LINE__)
#define cr_assert_not(cond, ...) cr_assert(!(cond))
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b))
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b))
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b))
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b))
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b))
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b))
#define cr_assert_null(p, ...) cr_assert((p) == NULL)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))

int main(void) {
    for (int i = 0; i < es_ntests; i++) {
        fprintf(stderr, "[RUN ] %s::%s\n", es_tests[i].suite, es_tests[i].name);
        es_tests[i].fn();
    }
    printf("%d passed, 0 failed\n", es_ntests);
    return 0;
}
#endif

#endif
