/*
 * map_order.c — a map's entries sorted by key. See map_order.h for the contract.
 *
 * Insertion sort up to 16 entries, a bottom-up merge sort beyond (stable, O(n log n),
 * with one scratch array): no qsort, whose comparator could not reach the env the
 * tie-break between 1 and 1.0 needs, and whose re-entrant variant differs by platform.
 */
#include "map_order.h"

#include <math.h>
#include <string.h>

/* Term order, with what it calls equal told apart: 1 before 1.0, -0.0 before 0.0 (only
 * numbers compare equal without being the same term). */
static int key_cmp(ErlNifEnv *env, ERL_NIF_TERM a, ERL_NIF_TERM b) {
    int c = enif_compare(a, b);
    if (c != 0 || enif_is_identical(a, b)) return c;
    double x, y;
    bool fa = enif_get_double(env, a, &x), fb = enif_get_double(env, b, &y);
    if (fa != fb) return fa ? 1 : -1; /* the integer first */
    return fa && signbit(x) != signbit(y) ? (signbit(x) ? -1 : 1) : 0;
}

static void insertion_sort(ErlNifEnv *env, es_map_entry *e, size_t n) {
    for (size_t i = 1; i < n; i++) {
        es_map_entry x = e[i];
        size_t j = i;
        for (; j > 0 && key_cmp(env, e[j - 1].key, x.key) > 0; j--) e[j] = e[j - 1];
        e[j] = x;
    }
}

/* Runs of `width` sorted entries merged pairwise from `src` into `dst`. */
static void merge_pass(ErlNifEnv *env, const es_map_entry *src, es_map_entry *dst, size_t n,
                       size_t width) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
        size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
        size_t i = lo, j = mid, k = lo;
        while (i < mid && j < hi)
            dst[k++] = key_cmp(env, src[j].key, src[i].key) < 0 ? src[j++] : src[i++];
        while (i < mid) dst[k++] = src[i++];
        while (j < hi) dst[k++] = src[j++];
    }
}

#define RUN 16

static bool sort_entries(ErlNifEnv *env, es_map_entry *e, size_t n) {
    for (size_t lo = 0; lo < n; lo += RUN) insertion_sort(env, e + lo, n - lo < RUN ? n - lo : RUN);
    if (n <= RUN) return true;
    es_map_entry *tmp = enif_alloc(n * sizeof *tmp), *src = e, *dst = tmp;
    if (!tmp) return false;
    for (size_t width = RUN; width < n; width *= 2) {
        merge_pass(env, src, dst, n, width);
        es_map_entry *t = src;
        src = dst, dst = t;
    }
    if (src != e) memcpy(e, src, n * sizeof *e);
    enif_free(tmp);
    return true;
}

bool es_map_entries(ErlNifEnv *env, ERL_NIF_TERM map, es_map_entry *stack, size_t stack_n,
                    es_map_entry **out, size_t *n) {
    size_t size;
    if (!enif_get_map_size(env, map, &size)) return false;
    es_map_entry *e = size <= stack_n ? stack : enif_alloc(size * sizeof *e);
    if (!e) return false;
    ErlNifMapIterator it;
    size_t i = 0;
    if (enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        while (i < size && enif_map_iterator_get_pair(env, &it, &e[i].key, &e[i].value)) {
            i++;
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
    }
    if (i != size || !sort_entries(env, e, size)) {
        es_map_entries_free(e, stack);
        return false;
    }
    *out = e;
    *n = size;
    return true;
}

void es_map_entries_free(es_map_entry *entries, const es_map_entry *stack) {
    if (entries != stack) enif_free(entries);
}
