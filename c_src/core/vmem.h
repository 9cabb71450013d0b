/*
 * vmem.h — large zero-filled tables straight from the OS.
 *
 * Contract: es_vm_zalloc() returns page-aligned, zero-filled memory whose pages are
 * committed only when first written, so a store sized for a million events costs
 * memory in proportion to what it holds. (mimalloc, which serves every small and
 * transient allocation, zero-fills large blocks by writing every page: measured here
 * with mimalloc 2.0.9, a 256 MiB mi_zalloc() added 256 MiB of RSS.)
 *
 * Thread-safety: any thread.
 */
#ifndef ES_VMEM_H
#define ES_VMEM_H

#include <stddef.h>

void *es_vm_zalloc(size_t bytes);
void es_vm_free(void *p, size_t bytes);

#endif
