/* boxindex_internal.h - what the box index's source files share and nobody
 * else may use: the region layout (header, slot words, records), the small
 * accessors every part reads it through, and the functions one part defines
 * for the others. The module is split by job:
 *
 *   boxindex.c         the layout, keys, init/open, and every read (lookups,
 *                      ancestors, children, foreach) - what readers run;
 *   boxindex_write.c   the writes: plans, the journal, commit and recovery,
 *                      the operations (copy-up, create, delete, rename...)
 *                      and rebuild into a new region;
 *   boxindex_check.c   validate: every invariant of a region, which is
 *                      outside input.
 *
 * boxindex.c's top comment describes the layout and the concurrency and
 * crash-safety rules that all three follow. */
#ifndef FVM_CORE_BOXINDEX_INTERNAL_H
#define FVM_CORE_BOXINDEX_INTERNAL_H

#include "core/boxindex.h"

#include <stddef.h>
#include <string.h>

#define HEADER_SIZE 512u
#define ARENA_RESERVED 8u
#define RECORD_SIZE 96u
#define MIN_SLOTS 8u
#define MAX_SLOTS (1u << 30)
#define SLOT_EMPTY 0ull
#define SLOT_DELETED 0xFFFFFFFF00000000ull
#define JOURNAL_IDLE 0ull
#define JOURNAL_ARMED 0x44454D5241584449ull /* "IDXARMED" */
#define JOURNAL_MAX_CHANGES 4u
#define TABLE_KEYS 0u
#define TABLE_CHILDREN 1u
#define FNV64_OFFSET 0xCBF29CE484222325ull
#define FNV64_PRIME 0x100000001B3ull
#define KNOWN_FLAGS (BOXINDEX_FLAG_DIRECTORY | BOXINDEX_FLAG_HAS_BASE | BOXINDEX_FLAG_OPAQUE | BOXINDEX_FLAG_CALLER_MASK)
/* Flags an entry carries from one state to the next (OPAQUE is decided per state). */
#define CARRIED_FLAGS (BOXINDEX_FLAG_DIRECTORY | BOXINDEX_FLAG_CALLER_MASK)

enum {
    OP_COPY_UP = 1, OP_CREATE, OP_DELETE, OP_RENAME, OP_UPDATE, OP_FORGET, OP_INSERT, OP_LAST = OP_INSERT
};

static const char index_magic[8] = {'F', 'V', 'M', 'B', 'O', 'X', 'I', 'X'};

typedef struct journal_change {
    uint32_t table;     /* TABLE_KEYS or TABLE_CHILDREN */
    uint32_t slot;
    uint64_t old_word;
    uint64_t new_word;
} journal_change;

typedef struct index_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t max_entries;
    uint32_t slot_count;
    uint64_t key_table_off;
    uint64_t child_table_off;
    uint64_t arena_off;
    uint64_t arena_size;
    uint64_t layout_check;
    uint8_t reserved0[56];
    uint64_t generation;
    uint32_t entries;
    uint32_t hidden;
    uint32_t key_markers;
    uint32_t children;
    uint32_t child_markers;
    uint32_t reserved1;
    uint64_t arena_used;
    uint64_t state_check;
    uint32_t retired;
    uint8_t reserved2[12];
    uint64_t journal_state;
    uint64_t journal_generation;
    uint64_t journal_arena_used;
    uint32_t journal_op;
    uint32_t journal_count;
    journal_change journal_changes[JOURNAL_MAX_CHANGES];
    uint64_t journal_check;
    uint8_t reserved3[184];
} index_header;

#define LAYOUT_CHECKED_BYTES 64u
#define STATE_BEGIN 128u
#define STATE_CHECKED_END 168u
#define JOURNAL_CHECKED_BEGIN 200u
#define JOURNAL_CHECKED_END 320u

_Static_assert(sizeof(index_header) == HEADER_SIZE, "header is 512 bytes");
_Static_assert(offsetof(index_header, layout_check) == LAYOUT_CHECKED_BYTES, "layout check follows the layout");
_Static_assert(offsetof(index_header, generation) == STATE_BEGIN, "state starts at 128");
_Static_assert(offsetof(index_header, state_check) == STATE_CHECKED_END, "state check follows the state");
_Static_assert(offsetof(index_header, retired) == 176, "retired at 176");
_Static_assert(offsetof(index_header, journal_state) == 192, "journal at 192");
_Static_assert(offsetof(index_header, journal_generation) == JOURNAL_CHECKED_BEGIN, "journal body at 200");
_Static_assert(offsetof(index_header, journal_check) == JOURNAL_CHECKED_END, "journal check at 320");

typedef struct index_record {
    uint64_t key_hash;
    uint64_t parent_hash;        /* 0 when parent_len is 0 */
    uint64_t base_size;
    int64_t base_mtime;
    uint8_t base_content_hash[32];
    uint32_t key_off;            /* arena offsets and lengths in units */
    uint32_t path_off;
    uint32_t key_len;            /* the path has the same length */
    uint32_t parent_len;
    uint32_t other_off;          /* RENAMED: the path it went to; else 0 */
    uint32_t other_len;
    uint16_t state;
    uint16_t flags;
    uint32_t check;              /* FNV-1a of the 92 bytes before it, folded */
} index_record;

_Static_assert(sizeof(index_record) == RECORD_SIZE, "record is 96 bytes");
_Static_assert(offsetof(index_record, check) == RECORD_SIZE - 4, "check is last");

/* ---- small helpers ---------------------------------------------------------- */

static inline uint64_t load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static inline uint64_t fnv_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV64_PRIME;
    return h;
}

static inline uint64_t round8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

static inline uint32_t load_limit(uint32_t slot_count) { return slot_count - slot_count / 4u; }

/* Home slots mix all 64 bits (FNV's low bits alone cluster on similar
 * paths); the tag is the high half, so home and tag are independent enough. */
static inline uint32_t home_slot(uint64_t hash, uint32_t slot_count)
{
    return (uint32_t)((hash * 0x9E3779B97F4A7C15ull) >> 32) & (slot_count - 1u);
}

static inline uint64_t make_word(uint64_t hash, uint32_t ref) { return (hash & 0xFFFFFFFF00000000ull) | ref; }
static inline uint32_t word_ref(uint64_t w) { return (uint32_t)w; }
static inline uint32_t word_tag(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint32_t hash_tag(uint64_t h) { return (uint32_t)(h >> 32); }

static inline int state_hides(uint16_t state) { return state == BOXINDEX_TOMBSTONE || state == BOXINDEX_RENAMED; }
static inline int state_live(uint16_t state) { return state == BOXINDEX_COPIED || state == BOXINDEX_CREATED; }

static inline void split64(uint64_t v, unsigned long *hi, unsigned long *lo)
{
    *hi = (unsigned long)(v >> 32);
    *lo = (unsigned long)(v & 0xFFFFFFFFu);
}

static inline index_header *header_of(const boxindex *idx) { return (index_header *)(void *)idx->mem; }

static inline uint64_t *table_of(const boxindex *idx, uint32_t table)
{
    uint64_t *keys = (uint64_t *)(void *)(idx->mem + HEADER_SIZE);
    return table == TABLE_KEYS ? keys : keys + idx->slot_count;
}

static inline unsigned long slot_offset(const boxindex *idx, uint32_t table, uint32_t slot)
{
    return (unsigned long)(HEADER_SIZE + 8u * ((table == TABLE_KEYS ? 0u : (uint64_t)idx->slot_count) + slot));
}

static inline unsigned long arena_offset(const boxindex *idx, uint64_t off) { return (unsigned long)(idx->arena_off + off); }

static inline uint32_t record_check(const index_record *r)
{
    uint64_t h = fnv_bytes(FNV64_OFFSET, r, RECORD_SIZE - 4u);
    return (uint32_t)(h ^ (h >> 32));
}

static inline uint64_t layout_check_of(const index_header *h) { return fnv_bytes(FNV64_OFFSET, h, LAYOUT_CHECKED_BYTES); }

static inline uint64_t state_check_of(const index_header *h)
{
    return fnv_bytes(FNV64_OFFSET, (const unsigned char *)h + STATE_BEGIN, STATE_CHECKED_END - STATE_BEGIN);
}

static inline uint64_t journal_check_of(const index_header *h)
{
    return fnv_bytes(FNV64_OFFSET, (const unsigned char *)h + JOURNAL_CHECKED_BEGIN,
                     JOURNAL_CHECKED_END - JOURNAL_CHECKED_BEGIN);
}

/* A copy of the record a key-table reference names, if it lies inside the
 * arena (limit: arena_size for readers, arena_used for strict checks).
 * Copying first means a process scribbling on the mapping cannot change a
 * field between its check and its use. */
static inline int record_copy(const boxindex *idx, uint32_t ref, uint64_t limit, index_record *out)
{
    uint64_t off = (uint64_t)ref * 8u;
    if (ref == 0 || off < ARENA_RESERVED || limit < RECORD_SIZE || off > limit - RECORD_SIZE)
        return 0;
    memcpy(out, idx->mem + idx->arena_off + off, RECORD_SIZE);
    return 1;
}

/* The string at arena offset off, len units, if inside [reserved, limit). */
static inline const uint16_t *units_at(const boxindex *idx, uint64_t off, uint64_t len, uint64_t limit)
{
    if ((off & 1u) || off < ARENA_RESERVED || off > limit || len > (limit - off) / 2u)
        return NULL;
    return (const uint16_t *)(const void *)(idx->mem + idx->arena_off + off);
}

/* The mutable counters of the header, read or written together. */
typedef struct index_counts {
    uint64_t generation;
    uint32_t entries, hidden, key_markers, children, child_markers;
    uint64_t arena_used;
} index_counts;

enum { HIDDEN_NONE = 0, HIDDEN_BY_OPAQUE = 1, HIDDEN_BY_DELETE = 2 };

/* Defined in boxindex.c. */
int is_registry_key(const uint16_t *k, size_t n);
int key_shape(const uint16_t *k, size_t n, size_t *root_out, size_t *parent_out);
fvm_status layout_from_header(boxindex *idx, const void *mem, size_t size, fvm_error *err);
void read_counts(const boxindex *idx, index_counts *c);
void write_counts(boxindex *idx, const index_counts *c);
fvm_status check_counts(const boxindex *idx, const index_counts *c, fvm_error *err);
int ancestors_hide(const boxindex *idx, const uint16_t *key, size_t len, boxindex_entry *hider);

/* Defined in boxindex_write.c. */
fvm_status check_journal(const boxindex *idx, const index_header *h, fvm_error *err);

#endif
