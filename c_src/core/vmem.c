/*
 * vmem.c — anonymous private mappings for the store's large tables. See vmem.h.
 */
#include "vmem.h"

#include <sys/mman.h>

void *es_vm_zalloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void es_vm_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}
