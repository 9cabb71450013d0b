/*
 * zone.h — summaries of payload fields per block of the store ("zone maps"), so that a
 * predicate scan passes over the blocks where no event can match without reading them.
 *
 * Contract
 *  - A summary describes one field (an atom's term word) in the payloads of one
 *    complete block's events of one type (or of every type: ES_ZONE_ANY_TYPE), as they
 *    were when it was built: whether any of them has the field, a 128-bit Bloom filter
 *    of the values' encodings (payload.h: equal terms, equal bytes), another of the
 *    first ES_ZONE_PREFIX bytes of binary values, and the least and greatest integer and
 *    float values.
 *  - A complete block (every id of it committed: the store has summarized its time) never
 *    gains an event and a committed event's payload never changes: pruning only takes
 *    values away. So a summary that says no event can pass stays right for the block's
 *    whole life, and is built once: by the first query that asks about it
 *    (es_zone_skip() builds what it lacks, in one pass over the block's slots and the
 *    payloads of its events of the types asked about), and kept for later queries,
 *    with any value of any predicate on those fields.
 *  - What a summary can rule out, per predicate (pred.h): a field no event of the type
 *    has; ES_OP_EQ values none of whose Bloom bits are all set; comparisons and ranges
 *    no integer or float of the block can satisfy; ES_OP_PREFIX of at least
 *    ES_ZONE_PREFIX bytes whose first bytes' Bloom bits are not all set. Negated
 *    predicates and predicates with a path rule out nothing. A block is skipped when,
 *    for every type asked about, some predicate rules it out.
 *  - Space: the newest ES_ZONE_ENTRIES summaries per block of the ring, allocated with
 *    the store's first predicate query that can use them (store.h: es_store_zones); a
 *    newer one takes the place of the oldest.
 *
 * Thread-safety: any number of queries use and build summaries concurrently with
 * appends and pruning. A block's summaries are a seqlock: a builder takes the block
 * with a compare-and-swap on its version (odd while writing) and gives up storing (it
 * still uses what it built) when another holds it; readers copy and re-check the
 * version and the block number it holds (the ring reuses a block's place).
 */
#ifndef ES_ZONE_H
#define ES_ZONE_H

#include "pred.h"
#include "store.h"

#define ES_ZONE_ANY_TYPE 0xFFFFu /* a summary over the events of every type */
#define ES_ZONE_ENTRIES 8        /* summaries kept per block */
#define ES_ZONE_PREFIX 4         /* bytes of a binary's start the prefix filter keeps */

typedef struct es_zones es_zones;

/* Space for the summaries of `blocks` blocks (the ring's), or NULL without memory. */
es_zones *es_zones_new(uint64_t blocks);
void es_zones_free(es_zones *z);
size_t es_zones_bytes(const es_zones *z);

/* Whether a predicate can ever rule a block out (see above). */
bool es_zone_usable(const es_pred *p);

/* Whether no event of complete block `block` of one of `types` (ntypes 0: of any type)
 * can pass all of `preds`: true when the summaries rule the block out. Builds the
 * summaries it lacks (counting the events it reads into *examined); false when none can
 * be had (no usable predicate, more pairs of field and type than a block keeps, no
 * memory). Only for blocks the store reports complete (es_store_walk_time asks only of
 * those). */
bool es_zone_skip(es_store *s, uint64_t block, const uint16_t *types, uint32_t ntypes,
                  const es_pred *preds, size_t npreds, uint64_t *examined);

#endif
