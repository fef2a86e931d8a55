/* boxindex.c - the box index: a shared, lock-free-to-read hash index of what
 * a box did to host paths. See boxindex.h for the API and the state machine.
 *
 * Region layout (byte offsets from the start of the region; native
 * little-endian x64; every 64-bit field is 8-aligned):
 *
 *   0     header, 512 bytes:
 *           0..64    layout, written once by init: magic "FVMBOXIX", format
 *                    version, header size, total size, max entries, slot
 *                    count, offsets of the two tables and of the arena,
 *                    arena size;  64: layout_check = FNV-1a of bytes 0..64.
 *           128..168 state, changed by writers: generation, entries, hidden
 *                    (TOMBSTONE + RENAMED), deletion markers per table,
 *                    children, arena_used;  168: state_check = FNV-1a of
 *                    bytes 128..168.
 *           176      retired (set once, when the index is rebuilt elsewhere).
 *           192..328 journal: state word (idle or armed), then the write
 *                    being applied: generation and arena_used after it, op,
 *                    up to 4 slot changes (table, slot, old word, new word);
 *                    320: journal_check = FNV-1a of bytes 200..320.
 *           Every other header byte is zero.
 *   512   key table: slot_count (a power of two) 64-bit slot words; linear
 *         probing from a home slot mixed from the key hash; at most 3/4 of
 *         the slots hold entries or deletion markers, so probes end.
 *   512 + 8 * slot_count   children table: the same, keyed by the parent
 *         hash; a folder's children sit in its parent hash's probe chain.
 *   512 + 16 * slot_count  arena, append-only: 8 reserved bytes (so offset 0
 *         means "none"), then 96-byte records (8-aligned) and UTF-16 strings.
 *
 * A slot word is 0 (empty), 0xFFFFFFFF00000000 (deletion marker: probes go
 * on past it) or tag:ref, with tag = the high 32 bits of the hash (most
 * mismatches are rejected without reading the record) and ref = in the key
 * table the record's arena offset / 8, in the children table the key slot
 * number + 1 (stable while the key lives: entries never move).
 *
 * A record (struct index_record) is one immutable version of one entry: key
 * hash, parent hash, base version, arena offsets of the key, the original-
 * case path and (RENAMED) the target path, state, flags and a checksum.
 *
 * Concurrency. Writers hold the caller's lock. A write appends new records
 * (and, for a new path, its strings) past arena_used, where no slot points,
 * and publishes each with one release store of a slot word; readers load
 * slot words with acquire and read records that never change afterwards. So
 * a reader sees each entry before or after a write, never torn; a write that
 * changes two entries (rename) publishes the target before hiding the
 * source, so a reader may see both for an instant but never neither. Slots
 * never move; a deletion marker becomes empty again only when the next slot
 * is empty (no probe chain passes it then), which is safe under readers. The
 * arena is reclaimed only by rebuilding into a new region.
 *
 * Crash safety. Before changing any slot, the writer records the whole
 * change (old and new slot words, counters after) in the journal, then arms
 * it with one release store; it disarms it after the last counter. The
 * records the new words name are complete before arming. A writer killed
 * before arming changed nothing visible; one killed after arming left an
 * armed journal, which the next writer (on taking the lock) rolls forward:
 * it stores every new word still at its old value, clears dead markers,
 * recounts the tables and disarms. Re-running a recovery is harmless.
 *
 * Hostile regions. The file is outside input and every process of the box
 * can write the mapping, so: open copies the layout once and every access
 * is bounds-checked against that copy; records are copied before their
 * fields are checked and used; every probe loop is bounded by the slot
 * count. Lookups stay in bounds whatever the region holds; validate tells
 * whether it is also correct. */
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

static uint64_t load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static uint32_t load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV64_PRIME;
    return h;
}

static uint64_t round8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

static uint32_t load_limit(uint32_t slot_count) { return slot_count - slot_count / 4u; }

/* Home slots mix all 64 bits (FNV's low bits alone cluster on similar
 * paths); the tag is the high half, so home and tag are independent enough. */
static uint32_t home_slot(uint64_t hash, uint32_t slot_count)
{
    return (uint32_t)((hash * 0x9E3779B97F4A7C15ull) >> 32) & (slot_count - 1u);
}

static uint64_t make_word(uint64_t hash, uint32_t ref) { return (hash & 0xFFFFFFFF00000000ull) | ref; }
static uint32_t word_ref(uint64_t w) { return (uint32_t)w; }
static uint32_t word_tag(uint64_t w) { return (uint32_t)(w >> 32); }
static uint32_t hash_tag(uint64_t h) { return (uint32_t)(h >> 32); }

static int state_hides(uint16_t state) { return state == BOXINDEX_TOMBSTONE || state == BOXINDEX_RENAMED; }
static int state_live(uint16_t state) { return state == BOXINDEX_COPIED || state == BOXINDEX_CREATED; }

static void split64(uint64_t v, unsigned long *hi, unsigned long *lo)
{
    *hi = (unsigned long)(v >> 32);
    *lo = (unsigned long)(v & 0xFFFFFFFFu);
}

static index_header *header_of(const boxindex *idx) { return (index_header *)(void *)idx->mem; }

static uint64_t *table_of(const boxindex *idx, uint32_t table)
{
    uint64_t *keys = (uint64_t *)(void *)(idx->mem + HEADER_SIZE);
    return table == TABLE_KEYS ? keys : keys + idx->slot_count;
}

static unsigned long slot_offset(const boxindex *idx, uint32_t table, uint32_t slot)
{
    return (unsigned long)(HEADER_SIZE + 8u * ((table == TABLE_KEYS ? 0u : (uint64_t)idx->slot_count) + slot));
}

static unsigned long arena_offset(const boxindex *idx, uint64_t off) { return (unsigned long)(idx->arena_off + off); }

static uint32_t record_check(const index_record *r)
{
    uint64_t h = fnv_bytes(FNV64_OFFSET, r, RECORD_SIZE - 4u);
    return (uint32_t)(h ^ (h >> 32));
}

static uint64_t layout_check_of(const index_header *h) { return fnv_bytes(FNV64_OFFSET, h, LAYOUT_CHECKED_BYTES); }

static uint64_t state_check_of(const index_header *h)
{
    return fnv_bytes(FNV64_OFFSET, (const unsigned char *)h + STATE_BEGIN, STATE_CHECKED_END - STATE_BEGIN);
}

static uint64_t journal_check_of(const index_header *h)
{
    return fnv_bytes(FNV64_OFFSET, (const unsigned char *)h + JOURNAL_CHECKED_BEGIN,
                     JOURNAL_CHECKED_END - JOURNAL_CHECKED_BEGIN);
}

/* A copy of the record a key-table reference names, if it lies inside the
 * arena (limit: arena_size for readers, arena_used for strict checks).
 * Copying first means a process scribbling on the mapping cannot change a
 * field between its check and its use. */
static int record_copy(const boxindex *idx, uint32_t ref, uint64_t limit, index_record *out)
{
    uint64_t off = (uint64_t)ref * 8u;
    if (ref == 0 || off < ARENA_RESERVED || limit < RECORD_SIZE || off > limit - RECORD_SIZE)
        return 0;
    memcpy(out, idx->mem + idx->arena_off + off, RECORD_SIZE);
    return 1;
}

/* The string at arena offset off, len units, if inside [reserved, limit). */
static const uint16_t *units_at(const boxindex *idx, uint64_t off, uint64_t len, uint64_t limit)
{
    if ((off & 1u) || off < ARENA_RESERVED || off > limit || len > (limit - off) / 2u)
        return NULL;
    return (const uint16_t *)(const void *)(idx->mem + idx->arena_off + off);
}

/* ---- keys -------------------------------------------------------------------- */

static int is_unc_key(const uint16_t *k, size_t n)
{
    return n >= 8 && k[0] == '\\' && k[1] == '?' && k[2] == '?' && k[3] == '\\' && k[4] == 'U' && k[5] == 'N' &&
           k[6] == 'C' && k[7] == '\\';
}

/* A registry key: "\REGISTRY\" and at least one name. */
static int is_registry_key(const uint16_t *k, size_t n)
{
    static const char prefix[] = "\\REGISTRY\\";
    if (n < 10)
        return 0;
    for (size_t i = 0; i < 10; i++)
        if (k[i] != (uint16_t)prefix[i])
            return 0;
    return 1;
}

/* ntpath_hash starts by mixing in the path kind; a key's kind shows in it.
 * Registry keys have a kind of their own (BOXINDEX_KIND_REGISTRY), so a key
 * never shares a hash seed with a file path. */
static uint64_t key_hash_seed(const uint16_t *key, size_t len)
{
    uint64_t kind = is_registry_key(key, len) ? BOXINDEX_KIND_REGISTRY
                    : is_unc_key(key, len)    ? NTPATH_KIND_UNC
                                              : NTPATH_KIND_DRIVE;
    return (FNV64_OFFSET ^ kind) * FNV64_PRIME;
}

/* The units are upper case already, so this is ntpath_hash's loop without
 * folding: each unit as its low then its high byte. */
static uint64_t key_hash_unit(uint64_t h, uint16_t c)
{
    h = (h ^ (c & 0xFFu)) * FNV64_PRIME;
    return (h ^ (c >> 8)) * FNV64_PRIME;
}

uint64_t boxindex_key_hash_start(const uint16_t *key, size_t len)
{
    return key ? key_hash_seed(key, len) : 0;
}

uint64_t boxindex_key_hash_extend(uint64_t hash, const uint16_t *units, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hash = key_hash_unit(hash, units[i]);
    return hash;
}

uint64_t boxindex_key_hash(const uint16_t *key, size_t len)
{
    if (!key)
        return 0;
    uint64_t h = key_hash_seed(key, len);
    for (size_t i = 0; i < len; i++)
        h = key_hash_unit(h, key[i]);
    return h;
}

/* Checks that key is a canonical DRIVE ("\??\X:\...") or UNC
 * ("\??\UNC\server\share\...") key and finds its root and parent lengths.
 * After the root: non-empty names separated by single backslashes, no
 * trailing backslash, no NUL, and at most one ':' (a stream), in the last
 * name and not at its ends. */
static int registry_key_shape(const uint16_t *k, size_t n, size_t *root_out, size_t *parent_out);

static int key_shape(const uint16_t *k, size_t n, size_t *root_out, size_t *parent_out)
{
    size_t root;
    if (k && n <= BOXINDEX_MAX_KEY_UNITS && is_registry_key(k, n))
        return registry_key_shape(k, n, root_out, parent_out);
    if (!k || n < 7 || n > BOXINDEX_MAX_KEY_UNITS || k[0] != '\\' || k[1] != '?' || k[2] != '?' || k[3] != '\\')
        return 0;
    if (is_unc_key(k, n)) {
        size_t i = 8;
        while (i < n && k[i] != '\\' && k[i] != 0)
            i++;
        if (i == 8 || i >= n || k[i] != '\\')
            return 0;
        size_t share = ++i;
        while (i < n && k[i] != '\\' && k[i] != 0)
            i++;
        if (i == share || i >= n || k[i] != '\\')
            return 0;
        root = i + 1;
    } else if (k[4] >= 'A' && k[4] <= 'Z' && k[5] == ':' && k[6] == '\\') {
        root = 7;
    } else {
        return 0;
    }
    size_t last_sep = root - 1, colon = 0;
    for (size_t i = root; i < n; i++) {
        if (k[i] == 0)
            return 0;
        if (k[i] == '\\') {
            if (i == last_sep + 1 || colon)
                return 0;
            last_sep = i;
        } else if (k[i] == ':') {
            if (colon || i == last_sep + 1)
                return 0;
            colon = i;
        }
    }
    if (n > root && (k[n - 1] == '\\' || k[n - 1] == ':'))
        return 0;
    *root_out = root;
    if (n == root)
        *parent_out = 0;
    else if (colon)
        *parent_out = colon;
    else
        *parent_out = last_sep + 1 == root ? root : last_sep;
    return 1;
}

/* "\REGISTRY\" then non-empty names separated by single backslashes, no
 * trailing backslash, no NUL, no lower-case ASCII (keys are upper-cased);
 * ':' is an ordinary character in a key name. The root is "\REGISTRY\";
 * the parent of "\REGISTRY\MACHINE" is that root. */
static int registry_key_shape(const uint16_t *k, size_t n, size_t *root_out, size_t *parent_out)
{
    const size_t root = 10;
    size_t last_sep = root - 1;
    for (size_t i = root; i < n; i++) {
        if (k[i] == 0 || (k[i] >= 'a' && k[i] <= 'z'))
            return 0;
        if (k[i] == '\\') {
            if (i == last_sep + 1)
                return 0;
            last_sep = i;
        }
    }
    if (n > root && k[n - 1] == '\\')
        return 0;
    *root_out = root;
    *parent_out = n == root ? 0 : last_sep + 1 == root ? root : last_sep;
    return 1;
}

int boxindex_key_is_registry(const uint16_t *key, size_t len)
{
    return key && is_registry_key(key, len);
}

size_t boxindex_parent_len(const uint16_t *key, size_t len)
{
    size_t root, parent;
    return key_shape(key, len, &root, &parent) ? parent : 0;
}

/* ---- layout -------------------------------------------------------------------- */

static uint32_t slots_for(uint32_t max_entries)
{
    uint32_t s = MIN_SLOTS;
    while (load_limit(s) < max_entries)
        s <<= 1;
    return s;
}

size_t boxindex_size_for(uint32_t max_entries, size_t arena_bytes)
{
    if (max_entries == 0 || max_entries > BOXINDEX_MAX_ENTRIES ||
        arena_bytes > BOXINDEX_MAX_ARENA_BYTES - ARENA_RESERVED - RECORD_SIZE)
        return 0;
    uint64_t arena = round8((uint64_t)arena_bytes + ARENA_RESERVED);
    if (arena < ARENA_RESERVED + RECORD_SIZE)
        arena = ARENA_RESERVED + RECORD_SIZE;
    uint64_t total = HEADER_SIZE + 16u * (uint64_t)slots_for(max_entries) + arena;
    if (total > (uint64_t)(size_t)-1)
        return 0;
    return (size_t)total;
}

/* Reads and checks the layout part of a header and fills idx from it. The
 * only function that trusts header fields: everything else uses idx. */
static fvm_status layout_from_header(boxindex *idx, const void *mem, size_t size, fvm_error *err)
{
    if (!mem)
        return fvm_error_set(err, FVM_E_INVALID, "box index: no region");
    if ((uintptr_t)mem & 7u)
        return fvm_error_set(err, FVM_E_INVALID, "box index: the region is not 8-byte aligned");
    if (size < HEADER_SIZE)
        return fvm_error_set(err, FVM_E_INVALID, "box index: %lu bytes, shorter than the %u-byte header",
                             (unsigned long)size, HEADER_SIZE);
    const index_header *h = mem;
    if (memcmp(h->magic, index_magic, sizeof index_magic) != 0)
        return fvm_error_set(err, FVM_E_INVALID, "box index: bad magic at offset 0 (not an index file)");
    if (h->version != BOXINDEX_FORMAT_VERSION)
        return fvm_error_set(err, FVM_E_UNSUPPORTED, "box index: format version %lu at offset 8, expected %u",
                             (unsigned long)h->version, BOXINDEX_FORMAT_VERSION);
    if (layout_check_of(h) != h->layout_check)
        return fvm_error_set(err, FVM_E_INVALID, "box index: layout checksum at offset 64 does not match bytes 0..64");
    if (h->header_size != HEADER_SIZE)
        return fvm_error_set(err, FVM_E_INVALID, "box index: header size %lu at offset 12, expected %u",
                             (unsigned long)h->header_size, HEADER_SIZE);
    uint32_t slots = h->slot_count;
    if (slots < MIN_SLOTS || slots > MAX_SLOTS || (slots & (slots - 1u)))
        return fvm_error_set(err, FVM_E_INVALID, "box index: slot count %lu at offset 28 is not a power of two in [%u, %u]",
                             (unsigned long)slots, MIN_SLOTS, MAX_SLOTS);
    if (h->max_entries == 0 || h->max_entries > BOXINDEX_MAX_ENTRIES || h->max_entries > load_limit(slots))
        return fvm_error_set(err, FVM_E_INVALID, "box index: max entries %lu at offset 24 does not fit %lu slots",
                             (unsigned long)h->max_entries, (unsigned long)slots);
    uint64_t child_off = HEADER_SIZE + 8u * (uint64_t)slots, arena_off = child_off + 8u * (uint64_t)slots;
    if (h->key_table_off != HEADER_SIZE || h->child_table_off != child_off || h->arena_off != arena_off)
        return fvm_error_set(err, FVM_E_INVALID, "box index: table or arena offset at offsets 32..56 does not follow "
                             "from %lu slots", (unsigned long)slots);
    if (h->arena_size < ARENA_RESERVED + RECORD_SIZE || h->arena_size > BOXINDEX_MAX_ARENA_BYTES ||
        (h->arena_size & 7u))
        return fvm_error_set(err, FVM_E_INVALID, "box index: arena size %lu at offset 56 is out of range",
                             (unsigned long)h->arena_size);
    if (h->total_size != arena_off + h->arena_size)
        return fvm_error_set(err, FVM_E_INVALID, "box index: total size at offset 16 does not match the layout");
    if (h->total_size > size)
        return fvm_error_set(err, FVM_E_INVALID, "box index: the header describes %lu bytes, the region has %lu",
                             (unsigned long)h->total_size, (unsigned long)size);
    memset(idx, 0, sizeof *idx);
    idx->mem = (unsigned char *)(uintptr_t)mem;
    idx->total_size = (size_t)h->total_size;
    idx->slot_count = slots;
    idx->max_entries = h->max_entries;
    idx->arena_off = (size_t)arena_off;
    idx->arena_size = (size_t)h->arena_size;
    return FVM_OK;
}

/* The mutable counters of the header, read or written together. */
typedef struct index_counts {
    uint64_t generation;
    uint32_t entries, hidden, key_markers, children, child_markers;
    uint64_t arena_used;
} index_counts;

static void read_counts(const boxindex *idx, index_counts *c)
{
    const index_header *h = header_of(idx);
    c->generation = load64(&h->generation);
    c->entries = load32(&h->entries);
    c->hidden = load32(&h->hidden);
    c->key_markers = load32(&h->key_markers);
    c->children = load32(&h->children);
    c->child_markers = load32(&h->child_markers);
    c->arena_used = load64(&h->arena_used);
}

static void write_counts(boxindex *idx, const index_counts *c)
{
    index_header *h = header_of(idx);
    store32(&h->entries, c->entries);
    store32(&h->hidden, c->hidden);
    store32(&h->key_markers, c->key_markers);
    store32(&h->children, c->children);
    store32(&h->child_markers, c->child_markers);
    store64(&h->arena_used, c->arena_used);
    store64(&h->generation, c->generation);
    store64(&h->state_check, state_check_of(h));
}

/* Plausibility of counters a writer is about to rely on. */
static fvm_status check_counts(const boxindex *idx, const index_counts *c, fvm_error *err)
{
    uint32_t limit = load_limit(idx->slot_count);
    if (c->arena_used < ARENA_RESERVED || c->arena_used > idx->arena_size || (c->arena_used & 7u))
        return fvm_error_set(err, FVM_E_INVALID, "box index: arena_used %lu at offset 160 is outside the %lu-byte arena",
                             (unsigned long)c->arena_used, (unsigned long)idx->arena_size);
    if (c->entries > idx->max_entries || c->hidden > c->entries || c->key_markers > limit ||
        c->entries + c->key_markers > limit || c->children > c->entries || c->child_markers > limit ||
        c->children + c->child_markers > limit)
        return fvm_error_set(err, FVM_E_INVALID, "box index: counters at offsets 136..156 exceed the capacity "
                             "(%lu entries, %lu hidden, %lu markers, %lu children, %lu child markers)",
                             (unsigned long)c->entries, (unsigned long)c->hidden, (unsigned long)c->key_markers,
                             (unsigned long)c->children, (unsigned long)c->child_markers);
    return FVM_OK;
}

fvm_status boxindex_init(boxindex *idx, void *mem, size_t size, uint32_t max_entries, const boxindex_lock *lock,
                         fvm_error *err)
{
    if (!idx || !mem)
        return fvm_error_set(err, FVM_E_INVALID, "box index: no region");
    if ((uintptr_t)mem & 7u)
        return fvm_error_set(err, FVM_E_INVALID, "box index: the region is not 8-byte aligned");
    if (max_entries == 0 || max_entries > BOXINDEX_MAX_ENTRIES)
        return fvm_error_set(err, FVM_E_RANGE, "box index: %lu entries requested, the format holds 1..%lu",
                             (unsigned long)max_entries, (unsigned long)BOXINDEX_MAX_ENTRIES);
    size_t need = boxindex_size_for(max_entries, 0);
    if (need == 0 || size < need)
        return fvm_error_set(err, FVM_E_RANGE, "box index: %lu bytes cannot hold %lu entries (%lu needed)",
                             (unsigned long)size, (unsigned long)max_entries, (unsigned long)need);
    uint32_t slots = slots_for(max_entries);
    uint64_t arena_off = HEADER_SIZE + 16u * (uint64_t)slots;
    uint64_t arena = (uint64_t)size - arena_off;
    if (arena > BOXINDEX_MAX_ARENA_BYTES)
        arena = BOXINDEX_MAX_ARENA_BYTES;
    arena &= ~(uint64_t)7u;

    memset(mem, 0, (size_t)arena_off + ARENA_RESERVED);
    index_header *h = mem;
    memcpy(h->magic, index_magic, sizeof index_magic);
    h->version = BOXINDEX_FORMAT_VERSION;
    h->header_size = HEADER_SIZE;
    h->total_size = arena_off + arena;
    h->max_entries = max_entries;
    h->slot_count = slots;
    h->key_table_off = HEADER_SIZE;
    h->child_table_off = HEADER_SIZE + 8u * (uint64_t)slots;
    h->arena_off = arena_off;
    h->arena_size = arena;
    h->layout_check = layout_check_of(h);
    h->arena_used = ARENA_RESERVED;
    h->state_check = state_check_of(h);
    h->journal_check = journal_check_of(h);
    fvm_status st = layout_from_header(idx, mem, size, err);
    if (st == FVM_OK)
        idx->lock = lock;
    return st;
}

fvm_status boxindex_open(boxindex *idx, void *mem, size_t size, const boxindex_lock *lock, fvm_error *err)
{
    if (!idx)
        return fvm_error_set(err, FVM_E_INVALID, "box index: no handle");
    fvm_status st = layout_from_header(idx, mem, size, err);
    if (st == FVM_OK)
        idx->lock = lock;
    return st;
}

void boxindex_set_step_hook(boxindex *idx, boxindex_step_hook hook, void *ctx)
{
    idx->step_hook = hook;
    idx->step_ctx = ctx;
}

int boxindex_is_retired(const boxindex *idx)
{
    return idx && idx->mem && load32(&header_of(idx)->retired) != 0;
}

void boxindex_stats_get(const boxindex *idx, boxindex_stats *out)
{
    index_counts c;
    memset(out, 0, sizeof *out);
    if (!idx || !idx->mem)
        return;
    read_counts(idx, &c);
    out->generation = c.generation;
    out->entries = c.entries;
    out->hidden = c.hidden;
    out->max_entries = idx->max_entries;
    out->slot_count = idx->slot_count;
    out->key_markers = c.key_markers;
    out->child_markers = c.child_markers;
    out->arena_used = c.arena_used;
    out->arena_size = idx->arena_size;
    out->retired = boxindex_is_retired(idx);
}

const char *boxindex_state_name(boxindex_state state)
{
    switch (state) {
    case BOXINDEX_ABSENT: return "absent";
    case BOXINDEX_COPIED: return "copied";
    case BOXINDEX_CREATED: return "created";
    case BOXINDEX_TOMBSTONE: return "tombstone";
    case BOXINDEX_RENAMED: return "renamed";
    }
    return "unknown";
}

/* ---- reading ------------------------------------------------------------------- */

/* The entry view of a record; 0 when the record is malformed (a reader then
 * treats its slot as holding some other key). */
static int fill_entry(const boxindex *idx, const index_record *r, boxindex_entry *out)
{
    if (r->state < BOXINDEX_COPIED || r->state > BOXINDEX_RENAMED || r->key_len == 0 ||
        r->key_len > BOXINDEX_MAX_KEY_UNITS || r->parent_len >= r->key_len)
        return 0;
    const uint16_t *key = units_at(idx, r->key_off, r->key_len, idx->arena_size);
    const uint16_t *path = units_at(idx, r->path_off, r->key_len, idx->arena_size);
    const uint16_t *other = NULL;
    if (!key || !path)
        return 0;
    if (r->state == BOXINDEX_RENAMED) {
        other = units_at(idx, r->other_off, r->other_len, idx->arena_size);
        if (!other || r->other_len == 0 || r->other_len > BOXINDEX_MAX_KEY_UNITS)
            return 0;
    }
    if (!out)
        return 1;
    out->state = (boxindex_state)r->state;
    out->flags = r->flags;
    out->key_hash = r->key_hash;
    out->key = key;
    out->path = path;
    out->len = r->key_len;
    out->parent_hash = r->parent_hash;
    out->parent_len = r->parent_len;
    out->renamed_to = other;
    out->renamed_to_len = other ? r->other_len : 0;
    out->base.size = r->base_size;
    out->base.mtime = r->base_mtime;
    memcpy(out->base.content_hash, r->base_content_hash, sizeof out->base.content_hash);
    return 1;
}

/* Finds key's slot the way readers do; 1 and the record copy when found. */
static int find_for_reader(const boxindex *idx, uint64_t hash, const uint16_t *key, size_t len, index_record *rec)
{
    const uint64_t *slots = table_of(idx, TABLE_KEYS);
    uint32_t mask = idx->slot_count - 1u, i = home_slot(hash, idx->slot_count);
    for (uint32_t n = 0; n < idx->slot_count; n++, i = (i + 1u) & mask) {
        uint64_t w = load64(&slots[i]);
        if (w == SLOT_EMPTY)
            return 0;
        if (word_ref(w) == 0 || word_tag(w) != hash_tag(hash))
            continue;
        if (!record_copy(idx, word_ref(w), idx->arena_size, rec) || rec->key_hash != hash || rec->key_len != len)
            continue;
        const uint16_t *k = units_at(idx, rec->key_off, len, idx->arena_size);
        if (k && memcmp(k, key, len * 2u) == 0)
            return 1;
    }
    return 0;
}

boxindex_state boxindex_lookup(const boxindex *idx, uint64_t key_hash, const uint16_t *key, size_t key_len,
                               boxindex_entry *out)
{
    index_record rec;
    if (!idx || !idx->mem || !key || key_len == 0 || key_len > BOXINDEX_MAX_KEY_UNITS)
        return BOXINDEX_ABSENT;
    if (!find_for_reader(idx, key_hash, key, key_len, &rec) || !fill_entry(idx, &rec, out))
        return BOXINDEX_ABSENT;
    return (boxindex_state)rec.state;
}

enum { HIDDEN_NONE = 0, HIDDEN_BY_OPAQUE = 1, HIDDEN_BY_DELETE = 2 };

/* How the ancestors of key hide its host path: the strongest reason, and
 * the nearest hiding ancestor in hider. The ancestors are the prefixes that
 * end at the root, before a backslash after it, or before a stream's ':';
 * their hashes come from one pass over the key. */
static int ancestors_hide(const boxindex *idx, const uint16_t *key, size_t len, boxindex_entry *hider)
{
    size_t root, parent;
    int result = HIDDEN_NONE;
    if (!idx || !idx->mem || !key_shape(key, len, &root, &parent) || parent == 0)
        return HIDDEN_NONE;
    uint64_t h = key_hash_seed(key, len);
    const int streams = !is_registry_key(key, len);   /* in a registry key ':' is just a character */
    for (size_t prefix = 1; prefix < len; prefix++) {
        h = key_hash_unit(h, key[prefix - 1]);
        if (prefix != root && !(prefix > root && (key[prefix] == '\\' || (streams && key[prefix] == ':'))))
            continue;
        boxindex_entry e;
        boxindex_state s = boxindex_lookup(idx, h, key, prefix, &e);
        int why = state_hides((uint16_t)s) ? HIDDEN_BY_DELETE
                  : (s == BOXINDEX_COPIED && (e.flags & BOXINDEX_FLAG_OPAQUE)) ? HIDDEN_BY_OPAQUE
                                                                              : HIDDEN_NONE;
        if (why == HIDDEN_NONE)
            continue;
        if (why > result)
            result = why;
        if (hider)
            *hider = e;
    }
    return result;
}

int boxindex_hidden_by_ancestor(const boxindex *idx, const uint16_t *key, size_t key_len, boxindex_entry *hider)
{
    return ancestors_hide(idx, key, key_len, hider) != HIDDEN_NONE;
}

int boxindex_children(const boxindex *idx, uint64_t parent_hash, const uint16_t *parent_key, size_t parent_len,
                      boxindex_visit visit, void *ctx)
{
    if (!idx || !idx->mem || !visit || !parent_key || parent_len == 0 || parent_len >= BOXINDEX_MAX_KEY_UNITS)
        return 0;
    const uint64_t *children = table_of(idx, TABLE_CHILDREN), *keys = table_of(idx, TABLE_KEYS);
    uint32_t mask = idx->slot_count - 1u, i = home_slot(parent_hash, idx->slot_count);
    for (uint32_t n = 0; n < idx->slot_count; n++, i = (i + 1u) & mask) {
        uint64_t w = load64(&children[i]);
        if (w == SLOT_EMPTY)
            break;
        uint32_t ref = word_ref(w);
        if (ref == 0 || ref > idx->slot_count || word_tag(w) != hash_tag(parent_hash))
            continue;
        index_record rec;
        boxindex_entry e;
        uint64_t kw = load64(&keys[ref - 1u]);
        if (!record_copy(idx, word_ref(kw), idx->arena_size, &rec) || rec.parent_hash != parent_hash ||
            rec.parent_len != parent_len || !fill_entry(idx, &rec, &e) ||
            memcmp(e.key, parent_key, parent_len * 2u) != 0)
            continue;
        int rc = visit(ctx, &e);
        if (rc)
            return rc;
    }
    return 0;
}

int boxindex_foreach(const boxindex *idx, boxindex_visit visit, void *ctx)
{
    if (!idx || !idx->mem || !visit)
        return 0;
    const uint64_t *keys = table_of(idx, TABLE_KEYS);
    for (uint32_t i = 0; i < idx->slot_count; i++) {
        index_record rec;
        boxindex_entry e;
        uint64_t w = load64(&keys[i]);
        if (!record_copy(idx, word_ref(w), idx->arena_size, &rec) || !fill_entry(idx, &rec, &e))
            continue;
        int rc = visit(ctx, &e);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- writing: plans ----------------------------------------------------------------
 *
 * A write is planned first against the current state: new records and
 * strings go past arena_used, and the slot changes and counters after the
 * write are collected in a plan. Nothing is visible yet, and a plan that
 * fails (full, not found...) is simply dropped. commit() then publishes it
 * through the journal. */

typedef struct write_plan {
    uint32_t op;
    unsigned count;
    journal_change change[JOURNAL_MAX_CHANGES];
    index_counts before, after;
} write_plan;

static void step(boxindex *idx, const char *what)
{
    idx->step++;
    if (idx->step_hook)
        idx->step_hook(idx->step_ctx, idx->step, what);
}

static int slot_claimed(const write_plan *p, uint32_t table, uint32_t slot)
{
    for (unsigned i = 0; i < p->count; i++)
        if (p->change[i].table == table && p->change[i].slot == slot)
            return 1;
    return 0;
}

static fvm_status plan_change(write_plan *p, uint32_t table, uint32_t slot, uint64_t old_word, uint64_t new_word,
                              fvm_error *err)
{
    if (p->count >= JOURNAL_MAX_CHANGES)
        return fvm_error_set(err, FVM_E_INVALID, "box index: a write needs more than %u slot changes",
                             JOURNAL_MAX_CHANGES);
    journal_change *c = &p->change[p->count++];
    c->table = table;
    c->slot = slot;
    c->old_word = old_word;
    c->new_word = new_word;
    return FVM_OK;
}

static fvm_status plan_append(boxindex *idx, write_plan *p, const void *data, size_t bytes, uint32_t *off,
                              fvm_error *err)
{
    uint64_t at = p->after.arena_used;
    if (bytes > idx->arena_size - at)
        return fvm_error_set(err, FVM_E_RANGE, "box index: arena full: %lu bytes needed at offset %lu, %lu free "
                             "(rebuild into a larger index)", (unsigned long)bytes,
                             arena_offset(idx, at), (unsigned long)(idx->arena_size - at));
    memcpy(idx->mem + idx->arena_off + at, data, bytes);
    *off = (uint32_t)at;
    p->after.arena_used = round8(at + bytes);
    return FVM_OK;
}

static fvm_status plan_record(boxindex *idx, write_plan *p, index_record *r, uint32_t *ref, fvm_error *err)
{
    uint32_t off;
    r->check = record_check(r);
    fvm_status st = plan_append(idx, p, r, RECORD_SIZE, &off, err);
    *ref = off / 8u;
    return st;
}

/* Where a key is, or where it would go. */
typedef struct key_probe {
    int found;
    uint32_t slot;          /* the entry's slot */
    uint64_t word;
    index_record rec;       /* a copy of its current record */
    int has_free;
    uint32_t free_slot;     /* the first marker or empty slot of the chain not already taken by this write */
    uint64_t free_word;
} key_probe;

/* Probes the key table for k. Slots this write already claimed count as
 * taken (rename may add two new keys); an empty slot claimed by it does not
 * end the chain, since it will not be empty once the write is published. */
static fvm_status probe_key(const boxindex *idx, const write_plan *p, const boxindex_key *k, key_probe *out,
                            fvm_error *err)
{
    const uint64_t *slots = table_of(idx, TABLE_KEYS);
    uint32_t mask = idx->slot_count - 1u, i = home_slot(k->hash, idx->slot_count);
    memset(out, 0, sizeof *out);
    for (uint32_t n = 0; n < idx->slot_count; n++, i = (i + 1u) & mask) {
        uint64_t w = load64(&slots[i]);
        int claimed = slot_claimed(p, TABLE_KEYS, i);
        if ((w == SLOT_EMPTY || w == SLOT_DELETED) && !out->has_free && !claimed) {
            out->has_free = 1;
            out->free_slot = i;
            out->free_word = w;
        }
        if (w == SLOT_EMPTY && !claimed)
            break;
        if (w == SLOT_EMPTY || w == SLOT_DELETED || word_tag(w) != hash_tag(k->hash))
            continue;
        index_record rec;
        if (!record_copy(idx, word_ref(w), p->before.arena_used, &rec))
            return fvm_error_set(err, FVM_E_INVALID, "box index: slot %lu at offset %lu names a record outside "
                                 "the arena", (unsigned long)i, slot_offset(idx, TABLE_KEYS, i));
        if (rec.key_hash != k->hash || rec.key_len != k->len)
            continue;
        const uint16_t *key = units_at(idx, rec.key_off, rec.key_len, p->before.arena_used);
        if (!key)
            return fvm_error_set(err, FVM_E_INVALID, "box index: the record at offset %lu has its key outside the "
                                 "arena", arena_offset(idx, (uint64_t)word_ref(w) * 8u));
        if (memcmp(key, k->key, k->len * 2u) == 0) {
            out->found = 1;
            out->slot = i;
            out->word = w;
            out->rec = rec;
            return FVM_OK;
        }
    }
    return FVM_OK;
}

/* In the children chain of parent_hash: the slot holding word, or with
 * word == SLOT_EMPTY the first free slot not claimed by this write. */
static int probe_child(const boxindex *idx, const write_plan *p, uint64_t parent_hash, uint64_t word,
                       uint32_t *slot, uint64_t *current)
{
    const uint64_t *slots = table_of(idx, TABLE_CHILDREN);
    uint32_t mask = idx->slot_count - 1u, i = home_slot(parent_hash, idx->slot_count);
    for (uint32_t n = 0; n < idx->slot_count; n++, i = (i + 1u) & mask) {
        uint64_t w = load64(&slots[i]);
        int claimed = slot_claimed(p, TABLE_CHILDREN, i);
        int match = word == SLOT_EMPTY ? (w == SLOT_EMPTY || w == SLOT_DELETED) && !claimed : w == word;
        if (match) {
            *slot = i;
            *current = w;
            return 1;
        }
        if (w == SLOT_EMPTY && !claimed)
            return 0;
    }
    return 0;
}

/* What an entry becomes. */
typedef struct entry_spec {
    uint16_t state;
    uint16_t flags;
    boxindex_base base;         /* used when flags has HAS_BASE */
    uint32_t other_off, other_len;
} entry_spec;

static void spec_set(entry_spec *s, uint16_t state, uint16_t flags, const boxindex_base *base)
{
    memset(s, 0, sizeof *s);
    s->state = state;
    s->flags = flags;
    if (base && (flags & BOXINDEX_FLAG_HAS_BASE))
        s->base = *base;
    else
        s->flags &= (uint16_t)~BOXINDEX_FLAG_HAS_BASE;
}

static boxindex_base record_base(const index_record *r)
{
    boxindex_base b;
    b.size = r->base_size;
    b.mtime = r->base_mtime;
    memcpy(b.content_hash, r->base_content_hash, sizeof b.content_hash);
    return b;
}

static int units_equal(const boxindex *idx, uint32_t off, const uint16_t *s, size_t len, uint64_t limit)
{
    const uint16_t *u = units_at(idx, off, len, limit);
    return u && memcmp(u, s, len * 2u) == 0;
}

/* Plans k's entry as spec: a new record in k's slot if it has one, else a
 * new entry (key and path strings, a key slot, a children slot). *path_off
 * receives the arena offset of the entry's original-case path. */
static fvm_status plan_put(boxindex *idx, write_plan *p, const boxindex_key *k, const key_probe *probe,
                           const entry_spec *spec, uint32_t *path_off, fvm_error *err)
{
    index_record r;
    fvm_status st;
    const uint16_t *path = k->path ? k->path : k->key;
    memset(&r, 0, sizeof r);
    if (probe->found) {
        r.key_off = probe->rec.key_off;
        r.path_off = probe->rec.path_off;
        if (!units_equal(idx, r.path_off, path, k->len, p->after.arena_used)) {
            if (memcmp(path, k->key, k->len * 2u) == 0)
                r.path_off = r.key_off;
            else if ((st = plan_append(idx, p, path, k->len * 2u, &r.path_off, err)) != FVM_OK)
                return st;
        }
    } else {
        if ((st = plan_append(idx, p, k->key, k->len * 2u, &r.key_off, err)) != FVM_OK)
            return st;
        r.path_off = r.key_off;
        if (memcmp(path, k->key, k->len * 2u) != 0 &&
            (st = plan_append(idx, p, path, k->len * 2u, &r.path_off, err)) != FVM_OK)
            return st;
    }
    size_t root, parent = 0;
    key_shape(k->key, k->len, &root, &parent);  /* the caller checked the shape */
    r.key_hash = k->hash;
    r.parent_len = (uint32_t)parent;
    r.parent_hash = parent ? boxindex_key_hash(k->key, parent) : 0;
    r.key_len = (uint32_t)k->len;
    r.state = spec->state;
    r.flags = spec->flags;
    r.other_off = spec->other_off;
    r.other_len = spec->other_len;
    if (spec->flags & BOXINDEX_FLAG_HAS_BASE) {
        r.base_size = spec->base.size;
        r.base_mtime = spec->base.mtime;
        memcpy(r.base_content_hash, spec->base.content_hash, sizeof r.base_content_hash);
    }
    uint32_t ref;
    if ((st = plan_record(idx, p, &r, &ref, err)) != FVM_OK)
        return st;
    if (path_off)
        *path_off = r.path_off;
    uint64_t word = make_word(k->hash, ref);
    p->after.hidden += (uint32_t)state_hides(r.state);

    if (probe->found) {
        p->after.hidden -= (uint32_t)state_hides(probe->rec.state);
        return plan_change(p, TABLE_KEYS, probe->slot, probe->word, word, err);
    }
    if (!probe->has_free)
        return fvm_error_set(err, FVM_E_RANGE, "box index: no free slot in the key table (rebuild into a larger index)");
    if ((st = plan_change(p, TABLE_KEYS, probe->free_slot, probe->free_word, word, err)) != FVM_OK)
        return st;
    p->after.entries++;
    if (probe->free_word == SLOT_DELETED)
        p->after.key_markers--;
    if (!parent)
        return FVM_OK;
    uint32_t cslot;
    uint64_t cword;
    if (!probe_child(idx, p, r.parent_hash, SLOT_EMPTY, &cslot, &cword))
        return fvm_error_set(err, FVM_E_RANGE, "box index: no free slot in the children table (rebuild into a "
                             "larger index)");
    if ((st = plan_change(p, TABLE_CHILDREN, cslot, cword, make_word(r.parent_hash, probe->free_slot + 1u), err)) !=
        FVM_OK)
        return st;
    p->after.children++;
    if (cword == SLOT_DELETED)
        p->after.child_markers--;
    return FVM_OK;
}

/* Plans the removal of a found entry: its key slot and its children slot
 * become deletion markers. */
static fvm_status plan_remove(boxindex *idx, write_plan *p, const key_probe *probe, fvm_error *err)
{
    fvm_status st = plan_change(p, TABLE_KEYS, probe->slot, probe->word, SLOT_DELETED, err);
    if (st != FVM_OK)
        return st;
    p->after.entries--;
    p->after.key_markers++;
    p->after.hidden -= (uint32_t)state_hides(probe->rec.state);
    if (probe->rec.parent_len == 0)
        return FVM_OK;
    uint32_t cslot;
    uint64_t cword, want = make_word(probe->rec.parent_hash, probe->slot + 1u);
    if (!probe_child(idx, p, probe->rec.parent_hash, want, &cslot, &cword))
        return fvm_error_set(err, FVM_E_INVALID, "box index: the children table has no slot for key slot %lu "
                             "(offset %lu)", (unsigned long)probe->slot, slot_offset(idx, TABLE_KEYS, probe->slot));
    if ((st = plan_change(p, TABLE_CHILDREN, cslot, cword, SLOT_DELETED, err)) != FVM_OK)
        return st;
    p->after.children--;
    p->after.child_markers++;
    return FVM_OK;
}

static fvm_status plan_fits(const boxindex *idx, const write_plan *p, fvm_error *err)
{
    uint32_t limit = load_limit(idx->slot_count);
    if (p->after.entries > idx->max_entries)
        return fvm_error_set(err, FVM_E_RANGE, "box index full: it holds %lu entries at most (rebuild into a "
                             "larger index)", (unsigned long)idx->max_entries);
    if ((uint64_t)p->after.entries + p->after.key_markers > limit ||
        (uint64_t)p->after.children + p->after.child_markers > limit)
        return fvm_error_set(err, FVM_E_RANGE, "box index full: deletion markers crowd the %lu-slot tables "
                             "(rebuild to drop them)", (unsigned long)idx->slot_count);
    return FVM_OK;
}

/* ---- writing: journal, commit and recovery --------------------------------------------- */

/* Turns deletion markers that end a probe chain back into empty slots,
 * starting at slot and walking back. No chain passes a marker whose next
 * slot is empty, so readers see the same answers either way. */
static uint32_t clear_dead_markers(boxindex *idx, uint32_t table, uint32_t slot)
{
    uint64_t *slots = table_of(idx, table);
    uint32_t mask = idx->slot_count - 1u, n = 0;
    if (load64(&slots[(slot + 1u) & mask]) != SLOT_EMPTY)
        return 0;
    while (n < idx->slot_count && load64(&slots[slot]) == SLOT_DELETED) {
        store64(&slots[slot], SLOT_EMPTY);
        n++;
        slot = (slot - 1u) & mask;
    }
    return n;
}

static fvm_status commit(boxindex *idx, write_plan *p, fvm_error *err)
{
    index_header *h = header_of(idx);
    fvm_status st = plan_fits(idx, p, err);
    if (st != FVM_OK)
        return st;
    step(idx, "records written");

    p->after.generation = p->before.generation + 1u;
    h->journal_generation = p->after.generation;
    h->journal_arena_used = p->after.arena_used;
    h->journal_op = p->op;
    h->journal_count = p->count;
    memset(h->journal_changes, 0, sizeof h->journal_changes);
    memcpy(h->journal_changes, p->change, p->count * sizeof p->change[0]);
    h->journal_check = journal_check_of(h);
    step(idx, "journal written");
    store64(&h->journal_state, JOURNAL_ARMED);
    step(idx, "journal armed");

    for (unsigned i = 0; i < p->count; i++) {
        store64(&table_of(idx, p->change[i].table)[p->change[i].slot], p->change[i].new_word);
        step(idx, "slot stored");
    }
    for (unsigned i = 0; i < p->count; i++) {
        if (p->change[i].new_word != SLOT_DELETED)
            continue;
        uint32_t cleared = clear_dead_markers(idx, p->change[i].table, p->change[i].slot);
        if (p->change[i].table == TABLE_KEYS)
            p->after.key_markers -= cleared;
        else
            p->after.child_markers -= cleared;
    }
    step(idx, "markers cleared");
    write_counts(idx, &p->after);
    step(idx, "counters written");
    store64(&h->journal_state, JOURNAL_IDLE);
    step(idx, "journal cleared");
    return FVM_OK;
}

/* Checks an armed journal (h: a private copy of the header): its checksum,
 * and that each change names a slot of the tables, that the slot holds the
 * change's old or new word (or empty: a marker cleared), and that new words
 * reference records or slots in bounds. */
static fvm_status check_journal(const boxindex *idx, const index_header *h, fvm_error *err)
{
    if (h->journal_state == JOURNAL_IDLE)
        return FVM_OK;
    if (h->journal_state != JOURNAL_ARMED) {
        unsigned long hi, lo;
        split64(h->journal_state, &hi, &lo);
        return fvm_error_set(err, FVM_E_INVALID, "box index: journal state 0x%08lx%08lx at offset 192 is neither "
                             "idle nor armed", hi, lo);
    }
    if (journal_check_of(h) != h->journal_check)
        return fvm_error_set(err, FVM_E_INVALID, "box index: armed journal fails its checksum at offset 320");
    if (h->journal_op < OP_COPY_UP || h->journal_op > OP_LAST || h->journal_count == 0 ||
        h->journal_count > JOURNAL_MAX_CHANGES)
        return fvm_error_set(err, FVM_E_INVALID, "box index: journal op %lu with %lu changes at offset 216",
                             (unsigned long)h->journal_op, (unsigned long)h->journal_count);
    uint64_t used = h->journal_arena_used;
    if (used < ARENA_RESERVED || used > idx->arena_size || (used & 7u))
        return fvm_error_set(err, FVM_E_INVALID, "box index: journal arena_used %lu at offset 208 is outside the "
                             "arena", (unsigned long)used);
    for (uint32_t i = 0; i < h->journal_count; i++) {
        const journal_change *c = &h->journal_changes[i];
        unsigned long at = (unsigned long)(offsetof(index_header, journal_changes) + i * sizeof *c);
        if (c->table > TABLE_CHILDREN || c->slot >= idx->slot_count)
            return fvm_error_set(err, FVM_E_INVALID, "box index: journal change %lu at offset %lu names no slot",
                                 (unsigned long)i, at);
        uint64_t now = load64(&table_of(idx, c->table)[c->slot]);
        if (now != c->old_word && now != c->new_word && !(now == SLOT_EMPTY && c->new_word == SLOT_DELETED))
            return fvm_error_set(err, FVM_E_INVALID, "box index: journal change %lu at offset %lu: slot %lu "
                                 "holds neither the old nor the new word", (unsigned long)i, at,
                                 (unsigned long)c->slot);
        uint64_t w = c->new_word;
        index_record rec;
        int ok = w == SLOT_EMPTY || w == SLOT_DELETED ||
                 (c->table == TABLE_KEYS ? record_copy(idx, word_ref(w), used, &rec)
                                         : word_ref(w) != 0 && word_ref(w) <= idx->slot_count);
        if (!ok)
            return fvm_error_set(err, FVM_E_INVALID, "box index: journal change %lu at offset %lu: the new word "
                                 "references nothing valid", (unsigned long)i, at);
    }
    return FVM_OK;
}

/* Rolls an armed journal forward (the lock is held). It works from a copy
 * of the header checked once, so a process scribbling on the mapping
 * meanwhile cannot steer it outside the tables. */
static fvm_status recover_locked(boxindex *idx, fvm_error *err)
{
    index_header *shared = header_of(idx);
    index_header h;
    if (load64(&shared->journal_state) == JOURNAL_IDLE)
        return FVM_OK;
    memcpy(&h, shared, sizeof h);
    fvm_status st = check_journal(idx, &h, err);
    if (st != FVM_OK)
        return st;
    for (uint32_t i = 0; i < h.journal_count; i++) {
        const journal_change *c = &h.journal_changes[i];
        uint64_t *slot = &table_of(idx, c->table)[c->slot];
        if (load64(slot) == c->old_word)
            store64(slot, c->new_word);
        step(idx, "recovery: slot stored");
    }
    /* Any marker the interrupted write (or an earlier one) left at the end
     * of a chain goes, then the counters are recounted from the tables. */
    index_counts c;
    memset(&c, 0, sizeof c);
    for (uint32_t t = TABLE_KEYS; t <= TABLE_CHILDREN; t++) {
        uint64_t *slots = table_of(idx, t);
        for (uint32_t i = 0; i < idx->slot_count; i++)
            if (load64(&slots[i]) == SLOT_EMPTY)
                clear_dead_markers(idx, t, (i - 1u) & (idx->slot_count - 1u));
        for (uint32_t i = 0; i < idx->slot_count; i++) {
            uint64_t w = load64(&slots[i]);
            if (w == SLOT_DELETED) {
                if (t == TABLE_KEYS)
                    c.key_markers++;
                else
                    c.child_markers++;
            } else if (w != SLOT_EMPTY && t == TABLE_CHILDREN) {
                c.children++;
            } else if (w != SLOT_EMPTY) {
                index_record rec;
                if (!record_copy(idx, word_ref(w), h.journal_arena_used, &rec))
                    return fvm_error_set(err, FVM_E_INVALID, "box index: recovery: slot %lu at offset %lu names "
                                         "a record outside the arena", (unsigned long)i,
                                         slot_offset(idx, TABLE_KEYS, i));
                c.entries++;
                c.hidden += (uint32_t)state_hides(rec.state);
            }
        }
    }
    step(idx, "recovery: tables recounted");
    c.generation = h.journal_generation;
    c.arena_used = h.journal_arena_used;
    write_counts(idx, &c);
    step(idx, "recovery: counters written");
    store64(&shared->journal_state, JOURNAL_IDLE);
    step(idx, "recovery: journal cleared");
    return FVM_OK;
}

/* Takes the lock, repairs an interrupted write, and reads the counters the
 * write starts from. On success the caller must call write_end. */
static fvm_status write_begin(boxindex *idx, write_plan *p, uint32_t op, fvm_error *err)
{
    if (!idx || !idx->mem)
        return fvm_error_set(err, FVM_E_INVALID, "box index: not open");
    idx->step = 0;
    memset(p, 0, sizeof *p);
    p->op = op;
    if (idx->lock && idx->lock->lock(idx->lock->ctx) != 0)
        return fvm_error_set(err, FVM_E_BUSY, "box index: could not take the writers' lock");
    fvm_status st = recover_locked(idx, err);
    if (st == FVM_OK && boxindex_is_retired(idx))
        st = fvm_error_set(err, FVM_E_BUSY, "box index: rebuilt into a new region: reopen it");
    if (st == FVM_OK) {
        const index_header *h = header_of(idx);
        read_counts(idx, &p->before);
        if (load64(&h->state_check) != state_check_of(h))
            st = fvm_error_set(err, FVM_E_INVALID, "box index: the state at offsets 128..168 fails its checksum");
        else
            st = check_counts(idx, &p->before, err);
    }
    if (st != FVM_OK) {
        if (idx->lock)
            idx->lock->unlock(idx->lock->ctx);
        return st;
    }
    p->after = p->before;
    return FVM_OK;
}

static fvm_status write_end(boxindex *idx, write_plan *p, fvm_status planned, fvm_error *err)
{
    fvm_status st = planned == FVM_OK ? commit(idx, p, err) : planned;
    if (idx->lock)
        idx->lock->unlock(idx->lock->ctx);
    return st;
}

fvm_status boxindex_recover(boxindex *idx, fvm_error *err)
{
    write_plan p;
    fvm_status st = write_begin(idx, &p, OP_UPDATE, err);
    if (st != FVM_OK)
        return st;
    if (idx->lock)
        idx->lock->unlock(idx->lock->ctx);
    return FVM_OK;
}

/* ---- writing: the operations ---------------------------------------------------- */

static fvm_status check_key_arg(const boxindex_key *k, const char *what, fvm_error *err)
{
    size_t root, parent;
    if (!k || !k->key)
        return fvm_error_set(err, FVM_E_INVALID, "box index: no %s key", what);
    if (!key_shape(k->key, k->len, &root, &parent))
        return fvm_error_set(err, FVM_E_INVALID, "box index: the %s key (%lu units) is not a canonical upper-case "
                             "drive, UNC or registry path", what, (unsigned long)k->len);
    if (k->hash != boxindex_key_hash(k->key, k->len))
        return fvm_error_set(err, FVM_E_INVALID, "box index: the %s key's hash is not ntpath_hash of it", what);
    if (k->path)
        for (size_t i = 0; i < k->len; i++)
            if ((k->path[i] == '\\') != (k->key[i] == '\\') || (k->path[i] == ':') != (k->key[i] == ':'))
                return fvm_error_set(err, FVM_E_INVALID, "box index: the %s path differs from its key at unit %lu",
                                     what, (unsigned long)i);
    return FVM_OK;
}

static fvm_status check_info_arg(const boxindex_info *info, fvm_error *err)
{
    if (info && (info->flags & ~(uint32_t)KNOWN_FLAGS))
        return fvm_error_set(err, FVM_E_INVALID, "box index: unknown flags 0x%lx",
                             (unsigned long)(info->flags & ~(uint32_t)KNOWN_FLAGS));
    return FVM_OK;
}

static uint16_t info_flags(const boxindex_info *info, uint32_t keep)
{
    return (uint16_t)(info ? info->flags & keep : 0u);
}

static const boxindex_base *info_base(const boxindex_info *info) { return info ? &info->base : NULL; }

static fvm_status not_found(const boxindex_key *k, const char *why, fvm_error *err)
{
    return fvm_error_set(err, FVM_E_NOTFOUND, "box index: %s (key of %lu units, hash %08lx...)", why,
                         (unsigned long)k->len, (unsigned long)(k->hash >> 32));
}

/* Flags of an entry that exists in the box over a host path: a folder's
 * host contents stay hidden behind the box folder (OPAQUE). */
static uint16_t copied_flags(uint16_t carried, uint16_t base_flag)
{
    uint16_t f = (uint16_t)(carried | base_flag);
    if (f & BOXINDEX_FLAG_DIRECTORY)
        f |= BOXINDEX_FLAG_OPAQUE;
    return f;
}

fvm_status boxindex_copy_up(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err)
{
    write_plan p;
    key_probe probe;
    entry_spec spec;
    fvm_status st = check_key_arg(key, "copy-up", err);
    if (st == FVM_OK)
        st = check_info_arg(info, err);
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_COPY_UP, err)) != FVM_OK)
        return st;
    st = probe_key(idx, &p, key, &probe, err);
    if (st == FVM_OK && probe.found)
        st = state_live(probe.rec.state) ? fvm_error_set(err, FVM_E_EXISTS, "box index: already in the box")
                                         : not_found(key, "deleted in the box: nothing to copy up", err);
    if (st == FVM_OK && ancestors_hide(idx, key->key, key->len, NULL))
        st = not_found(key, "a folder above it is deleted or replaced in the box", err);
    if (st == FVM_OK) {
        spec_set(&spec, BOXINDEX_COPIED, info_flags(info, CARRIED_FLAGS | BOXINDEX_FLAG_HAS_BASE), info_base(info));
        st = plan_put(idx, &p, key, &probe, &spec, NULL, err);
    }
    return write_end(idx, &p, st, err);
}

/* What a path becomes when something appears at it (create, or the target
 * of a rename) carrying the flags carried: over a deleted host path it is
 * COPIED with the old base (the host file is still the base); over a box
 * entry it keeps that entry's base; over nothing it is CREATED, or COPIED
 * when host says the host has a file there. */
static void spec_for_new(const key_probe *probe, uint16_t carried, const boxindex_info *host, entry_spec *spec)
{
    if (probe->found) {
        boxindex_base kept = record_base(&probe->rec);
        uint16_t base_flag = probe->rec.flags & BOXINDEX_FLAG_HAS_BASE;
        if (probe->rec.state == BOXINDEX_CREATED)
            spec_set(spec, BOXINDEX_CREATED, carried, NULL);
        else
            spec_set(spec, BOXINDEX_COPIED, copied_flags(carried, base_flag), &kept);
    } else if (host && (host->flags & BOXINDEX_FLAG_HAS_BASE)) {
        spec_set(spec, BOXINDEX_COPIED, copied_flags(carried, BOXINDEX_FLAG_HAS_BASE), &host->base);
    } else {
        spec_set(spec, BOXINDEX_CREATED, carried, NULL);
    }
}

/* What a path that goes away becomes, keeping a found entry's flags and
 * base, or taking them from host for an untouched host path. */
static void spec_for_gone(const key_probe *probe, uint16_t state, const boxindex_info *host, entry_spec *spec)
{
    if (probe->found) {
        boxindex_base kept = record_base(&probe->rec);
        spec_set(spec, state, probe->rec.flags & (CARRIED_FLAGS | BOXINDEX_FLAG_HAS_BASE), &kept);
    } else {
        spec_set(spec, state, info_flags(host, CARRIED_FLAGS | BOXINDEX_FLAG_HAS_BASE), info_base(host));
    }
}

fvm_status boxindex_create(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err)
{
    write_plan p;
    key_probe probe;
    entry_spec spec;
    fvm_status st = check_key_arg(key, "create", err);
    if (st == FVM_OK)
        st = check_info_arg(info, err);
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_CREATE, err)) != FVM_OK)
        return st;
    st = probe_key(idx, &p, key, &probe, err);
    if (st == FVM_OK && probe.found && state_live(probe.rec.state))
        st = fvm_error_set(err, FVM_E_EXISTS, "box index: already in the box");
    if (st == FVM_OK && ancestors_hide(idx, key->key, key->len, NULL) == HIDDEN_BY_DELETE)
        st = not_found(key, "a folder above it is deleted in the box", err);
    if (st == FVM_OK) {
        spec_for_new(&probe, info_flags(info, CARRIED_FLAGS), info, &spec);
        st = plan_put(idx, &p, key, &probe, &spec, NULL, err);
    }
    return write_end(idx, &p, st, err);
}

fvm_status boxindex_delete(boxindex *idx, const boxindex_key *key, const boxindex_info *host, fvm_error *err)
{
    write_plan p;
    key_probe probe;
    entry_spec spec;
    fvm_status st = check_key_arg(key, "delete", err);
    if (st == FVM_OK)
        st = check_info_arg(host, err);
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_DELETE, err)) != FVM_OK)
        return st;
    st = probe_key(idx, &p, key, &probe, err);
    if (st == FVM_OK && probe.found && state_hides(probe.rec.state))
        st = not_found(key, "already deleted in the box", err);
    if (st == FVM_OK && !probe.found && ancestors_hide(idx, key->key, key->len, NULL))
        st = not_found(key, "a folder above it is deleted or replaced in the box", err);
    if (st == FVM_OK && probe.found && probe.rec.state == BOXINDEX_CREATED) {
        st = plan_remove(idx, &p, &probe, err);
    } else if (st == FVM_OK) {
        spec_for_gone(&probe, BOXINDEX_TOMBSTONE, host, &spec);
        st = plan_put(idx, &p, key, &probe, &spec, NULL, err);
    }
    return write_end(idx, &p, st, err);
}

static int same_key(const boxindex_key *a, const boxindex_key *b)
{
    return a->hash == b->hash && a->len == b->len && memcmp(a->key, b->key, a->len * 2u) == 0;
}

/* 1 when b lies below a (a folder moved into itself, a file onto its stream). */
static int key_below(const boxindex_key *a, const boxindex_key *b)
{
    return b->len > a->len && memcmp(a->key, b->key, a->len * 2u) == 0 &&
           (b->key[a->len] == '\\' || (!is_registry_key(a->key, a->len) && b->key[a->len] == ':'));
}

/* A rename to the same key changes only the case of the path. */
static fvm_status plan_rename_case(boxindex *idx, write_plan *p, const boxindex_key *to,
                                   const boxindex_info *from_host, fvm_error *err)
{
    key_probe probe;
    entry_spec spec;
    fvm_status st = probe_key(idx, p, to, &probe, err);
    if (st != FVM_OK)
        return st;
    if (probe.found && state_hides(probe.rec.state))
        return not_found(to, "rename source is deleted in the box", err);
    if (!probe.found && ancestors_hide(idx, to->key, to->len, NULL))
        return not_found(to, "a folder above the rename source is deleted or replaced in the box", err);
    if (probe.found) {
        boxindex_base kept = record_base(&probe.rec);
        spec_set(&spec, probe.rec.state, probe.rec.flags, &kept);
    } else {
        spec_set(&spec, BOXINDEX_COPIED, info_flags(from_host, CARRIED_FLAGS | BOXINDEX_FLAG_HAS_BASE),
                 info_base(from_host));
    }
    return plan_put(idx, p, to, &probe, &spec, NULL, err);
}

static fvm_status plan_rename(boxindex *idx, write_plan *p, const boxindex_key *from, const boxindex_key *to,
                              const boxindex_info *from_host, const boxindex_info *to_host, fvm_error *err)
{
    key_probe src, dst;
    entry_spec spec;
    uint32_t to_path_off = 0;
    fvm_status st = probe_key(idx, p, from, &src, err);
    if (st == FVM_OK)
        st = probe_key(idx, p, to, &dst, err);
    if (st != FVM_OK)
        return st;
    if (src.found && state_hides(src.rec.state))
        return not_found(from, "rename source is deleted in the box", err);
    if (!src.found && ancestors_hide(idx, from->key, from->len, NULL))
        return not_found(from, "a folder above the rename source is deleted or replaced in the box", err);
    if (ancestors_hide(idx, to->key, to->len, NULL) == HIDDEN_BY_DELETE)
        return not_found(to, "a folder above the rename target is deleted in the box", err);

    /* The target first: a reader may then see the file at both names for an
     * instant, never at neither. */
    uint16_t moving = src.found ? (uint16_t)(src.rec.flags & CARRIED_FLAGS) : info_flags(from_host, CARRIED_FLAGS);
    spec_for_new(&dst, moving, to_host, &spec);
    if ((st = plan_put(idx, p, to, &dst, &spec, &to_path_off, err)) != FVM_OK)
        return st;
    if (src.found && src.rec.state == BOXINDEX_CREATED)
        return plan_remove(idx, p, &src, err);
    /* Probe again: the target may have taken the free slot found before. */
    if ((st = probe_key(idx, p, from, &src, err)) != FVM_OK)
        return st;
    spec_for_gone(&src, BOXINDEX_RENAMED, from_host, &spec);
    spec.other_off = to_path_off;
    spec.other_len = (uint32_t)to->len;
    return plan_put(idx, p, from, &src, &spec, NULL, err);
}

fvm_status boxindex_rename(boxindex *idx, const boxindex_key *from, const boxindex_key *to,
                           const boxindex_info *from_host, const boxindex_info *to_host, fvm_error *err)
{
    write_plan p;
    fvm_status st = check_key_arg(from, "rename source", err);
    if (st == FVM_OK)
        st = check_key_arg(to, "rename target", err);
    if (st == FVM_OK)
        st = check_info_arg(from_host, err);
    if (st == FVM_OK)
        st = check_info_arg(to_host, err);
    if (st == FVM_OK && key_below(from, to))
        st = fvm_error_set(err, FVM_E_INVALID, "box index: cannot move a path below itself");
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_RENAME, err)) != FVM_OK)
        return st;
    st = same_key(from, to) ? plan_rename_case(idx, &p, to, from_host, err)
                            : plan_rename(idx, &p, from, to, from_host, to_host, err);
    return write_end(idx, &p, st, err);
}

fvm_status boxindex_update(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err)
{
    write_plan p;
    key_probe probe;
    entry_spec spec;
    fvm_status st = check_key_arg(key, "update", err);
    if (st == FVM_OK)
        st = check_info_arg(info, err);
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_UPDATE, err)) != FVM_OK)
        return st;
    st = probe_key(idx, &p, key, &probe, err);
    if (st == FVM_OK && !probe.found)
        st = not_found(key, "no entry to update", err);
    uint16_t flags = info_flags(info, CARRIED_FLAGS | BOXINDEX_FLAG_HAS_BASE);
    if (st == FVM_OK && probe.rec.state == BOXINDEX_CREATED && (flags & BOXINDEX_FLAG_HAS_BASE))
        st = fvm_error_set(err, FVM_E_INVALID, "box index: a created entry has no host base version");
    if (st == FVM_OK) {
        if ((probe.rec.flags & BOXINDEX_FLAG_OPAQUE) && (flags & BOXINDEX_FLAG_DIRECTORY))
            flags |= BOXINDEX_FLAG_OPAQUE;
        spec_set(&spec, probe.rec.state, flags, info_base(info));
        spec.other_off = probe.rec.other_off;
        spec.other_len = probe.rec.other_len;
        st = plan_put(idx, &p, key, &probe, &spec, NULL, err);
    }
    return write_end(idx, &p, st, err);
}

fvm_status boxindex_forget(boxindex *idx, const boxindex_key *key, fvm_error *err)
{
    write_plan p;
    key_probe probe;
    fvm_status st = check_key_arg(key, "forget", err);
    if (st != FVM_OK || (st = write_begin(idx, &p, OP_FORGET, err)) != FVM_OK)
        return st;
    st = probe_key(idx, &p, key, &probe, err);
    if (st == FVM_OK && !probe.found)
        st = not_found(key, "no entry to forget", err);
    if (st == FVM_OK)
        st = plan_remove(idx, &p, &probe, err);
    return write_end(idx, &p, st, err);
}

/* ---- rebuild -------------------------------------------------------------------------- */

typedef struct rebuild_ctx {
    boxindex *dst;
    fvm_error *err;
    fvm_status status;
} rebuild_ctx;

/* Inserts one entry of the old index as it is (state, flags, base, target). */
static int rebuild_visit(void *ctx, const boxindex_entry *e)
{
    rebuild_ctx *rc = ctx;
    write_plan p;
    key_probe probe;
    boxindex_key k = {e->key_hash, e->key, e->path, e->len};
    entry_spec spec;
    fvm_status st = write_begin(rc->dst, &p, OP_INSERT, rc->err);
    if (st != FVM_OK) {
        rc->status = st;
        return 1;
    }
    st = probe_key(rc->dst, &p, &k, &probe, rc->err);
    if (st == FVM_OK && probe.found)
        st = fvm_error_set(rc->err, FVM_E_INVALID, "box index: a key occurs twice in the index being rebuilt");
    spec_set(&spec, (uint16_t)e->state, (uint16_t)e->flags, &e->base);
    if (st == FVM_OK && e->state == BOXINDEX_RENAMED) {
        spec.other_len = (uint32_t)e->renamed_to_len;
        st = plan_append(rc->dst, &p, e->renamed_to, e->renamed_to_len * 2u, &spec.other_off, rc->err);
    }
    if (st == FVM_OK)
        st = plan_put(rc->dst, &p, &k, &probe, &spec, NULL, rc->err);
    rc->status = write_end(rc->dst, &p, st, rc->err);
    return rc->status != FVM_OK;
}

fvm_status boxindex_rebuild_into(boxindex *old, void *mem, size_t size, uint32_t max_entries,
                                 const boxindex_lock *lock, boxindex *out, fvm_error *err)
{
    if (!old || !old->mem || !out)
        return fvm_error_set(err, FVM_E_INVALID, "box index: rebuild needs an open index and a handle");
    if (boxindex_is_retired(old))
        return fvm_error_set(err, FVM_E_BUSY, "box index: already rebuilt into another region");
    fvm_status st = recover_locked(old, err);
    if (st == FVM_OK)
        st = boxindex_validate(old->mem, old->total_size, err);
    if (st == FVM_OK)
        st = boxindex_init(out, mem, size, max_entries, NULL, err);
    if (st != FVM_OK)
        return st;
    rebuild_ctx rc = {out, err, FVM_OK};
    boxindex_foreach(old, rebuild_visit, &rc);
    if (rc.status != FVM_OK)
        return rc.status;
    out->lock = lock;
    store32(&header_of(old)->retired, 1u);
    return FVM_OK;
}

/* ---- validation ------------------------------------------------------------------------ */

/* Checks a live key-table slot's record against every rule a writer
 * follows, and returns a copy of it. */
static fvm_status check_record(const boxindex *idx, uint32_t slot, uint64_t word, uint64_t used, index_record *r,
                               fvm_error *err)
{
    unsigned long at = slot_offset(idx, TABLE_KEYS, slot);
    uint64_t roff = (uint64_t)word_ref(word) * 8u;
    size_t root, parent;
    if (!record_copy(idx, word_ref(word), used, r))
        return fvm_error_set(err, FVM_E_INVALID, "box index: slot %lu at offset %lu references offset %lu, outside "
                             "the used arena", (unsigned long)slot, at, arena_offset(idx, roff));
    unsigned long rat = arena_offset(idx, roff);
    if (r->check != record_check(r))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu fails its checksum", rat);
    if (word_tag(word) != hash_tag(r->key_hash))
        return fvm_error_set(err, FVM_E_INVALID, "box index: slot %lu at offset %lu has a tag that is not its "
                             "record's hash", (unsigned long)slot, at);
    if (r->state < BOXINDEX_COPIED || r->state > BOXINDEX_RENAMED)
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu has state %lu", rat,
                             (unsigned long)r->state);
    if ((r->flags & ~(uint32_t)KNOWN_FLAGS) ||
        ((r->flags & BOXINDEX_FLAG_OPAQUE) &&
         (r->state != BOXINDEX_COPIED || !(r->flags & BOXINDEX_FLAG_DIRECTORY))) ||
        ((r->flags & BOXINDEX_FLAG_HAS_BASE) && r->state == BOXINDEX_CREATED))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu has flags 0x%lx that do not fit "
                             "its state", rat, (unsigned long)r->flags);
    static const uint8_t zero[32];
    if (!(r->flags & BOXINDEX_FLAG_HAS_BASE) &&
        (r->base_size || r->base_mtime || memcmp(r->base_content_hash, zero, sizeof zero)))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu has a base version without "
                             "HAS_BASE", rat);
    const uint16_t *key = units_at(idx, r->key_off, r->key_len, used);
    const uint16_t *path = units_at(idx, r->path_off, r->key_len, used);
    if (!key || !path || r->key_len == 0)
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: key or path (offsets %lu, %lu, "
                             "%lu units) outside the used arena", rat, (unsigned long)r->key_off,
                             (unsigned long)r->path_off, (unsigned long)r->key_len);
    if (!key_shape(key, r->key_len, &root, &parent))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: the key at offset %lu is not "
                             "a canonical drive, UNC or registry key", rat, arena_offset(idx, r->key_off));
    if (boxindex_key_hash(key, r->key_len) != r->key_hash)
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: the hash is not the key's", rat);
    if (r->parent_len != parent || r->parent_hash != (parent ? boxindex_key_hash(key, parent) : 0))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: parent length or hash is not "
                             "the key's", rat);
    for (uint32_t i = 0; i < r->key_len; i++)
        if ((path[i] == '\\') != (key[i] == '\\') || (path[i] == ':') != (key[i] == ':'))
            return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: the path differs from the "
                                 "key at unit %lu", rat, (unsigned long)i);
    if (r->state == BOXINDEX_RENAMED
            ? (r->other_len == 0 || r->other_len > BOXINDEX_MAX_KEY_UNITS ||
               !units_at(idx, r->other_off, r->other_len, used))
            : (r->other_off || r->other_len))
        return fvm_error_set(err, FVM_E_INVALID, "box index: record at offset %lu: bad rename target (offset %lu, "
                             "%lu units)", rat, (unsigned long)r->other_off, (unsigned long)r->other_len);
    return FVM_OK;
}

/* The number of non-empty slots ending at each slot, in one pass started
 * after an empty slot: slot s is reachable from home h when every slot from
 * h to s is non-empty, that is when (s - h) mod slots < run(s). */
typedef struct run_walk {
    uint32_t start, n, slot, run;
} run_walk;

static int first_empty(const boxindex *idx, uint32_t table, uint32_t *slot)
{
    const uint64_t *slots = table_of(idx, table);
    for (uint32_t i = 0; i < idx->slot_count; i++)
        if (slots[i] == SLOT_EMPTY)
            return (*slot = i), 1;
    return 0;
}

static int run_next(const boxindex *idx, uint32_t table, run_walk *w)
{
    if (w->n >= idx->slot_count)
        return 0;
    w->n++;
    w->slot = (w->start + w->n) & (idx->slot_count - 1u);
    w->run = table_of(idx, table)[w->slot] == SLOT_EMPTY ? 0 : w->run + 1u;
    return 1;
}

static uint32_t distance(const boxindex *idx, uint32_t from, uint32_t to) { return (to - from) & (idx->slot_count - 1u); }

static fvm_status check_key_table(const boxindex *idx, uint64_t used, index_counts *found, fvm_error *err)
{
    const uint64_t *slots = table_of(idx, TABLE_KEYS);
    index_record r, other;
    uint32_t start;
    for (uint32_t i = 0; i < idx->slot_count; i++) {
        uint64_t w = slots[i];
        if (w == SLOT_EMPTY)
            continue;
        if (w == SLOT_DELETED) {
            found->key_markers++;
            continue;
        }
        if (word_ref(w) == 0) {
            unsigned long hi, lo;
            split64(w, &hi, &lo);
            return fvm_error_set(err, FVM_E_INVALID, "box index: key slot %lu at offset %lu holds 0x%08lx%08lx, "
                                 "neither empty, a marker nor a reference", (unsigned long)i,
                                 slot_offset(idx, TABLE_KEYS, i), hi, lo);
        }
        fvm_status st = check_record(idx, i, w, used, &r, err);
        if (st != FVM_OK)
            return st;
        found->entries++;
        found->hidden += (uint32_t)state_hides(r.state);
        found->children += r.parent_len != 0;
    }
    if (!first_empty(idx, TABLE_KEYS, &start))
        return fvm_error_set(err, FVM_E_INVALID, "box index: the key table at offset %u has no empty slot",
                             HEADER_SIZE);
    run_walk walk = {start, 0, start, 0};
    while (run_next(idx, TABLE_KEYS, &walk)) {
        uint64_t w = slots[walk.slot];
        if (w == SLOT_EMPTY || w == SLOT_DELETED)
            continue;
        record_copy(idx, word_ref(w), used, &r);
        uint32_t home = home_slot(r.key_hash, idx->slot_count), dist = distance(idx, home, walk.slot);
        if (dist >= walk.run)
            return fvm_error_set(err, FVM_E_INVALID, "box index: key slot %lu at offset %lu is cut off from its "
                                 "home slot %lu by an empty slot", (unsigned long)walk.slot,
                                 slot_offset(idx, TABLE_KEYS, walk.slot), (unsigned long)home);
        for (uint32_t j = home; j != walk.slot; j = (j + 1u) & (idx->slot_count - 1u)) {
            uint64_t wj = slots[j];
            if (wj == SLOT_DELETED || word_tag(wj) != word_tag(w))
                continue;
            record_copy(idx, word_ref(wj), used, &other);
            if (other.key_hash == r.key_hash && other.key_len == r.key_len &&
                memcmp(idx->mem + idx->arena_off + other.key_off, idx->mem + idx->arena_off + r.key_off,
                       r.key_len * 2u) == 0)
                return fvm_error_set(err, FVM_E_INVALID, "box index: key slot %lu at offset %lu repeats the key of "
                                     "slot %lu", (unsigned long)walk.slot, slot_offset(idx, TABLE_KEYS, walk.slot),
                                     (unsigned long)j);
        }
    }
    return FVM_OK;
}

/* Each key with a parent has exactly one children slot, in its parent's
 * chain; each children slot names such a key. */
static fvm_status check_children_table(const boxindex *idx, uint64_t used, index_counts *found, fvm_error *err)
{
    const uint64_t *slots = table_of(idx, TABLE_CHILDREN), *keys = table_of(idx, TABLE_KEYS);
    uint32_t start, live = 0;
    index_record r;
    for (uint32_t i = 0; i < idx->slot_count; i++) {
        uint64_t w = slots[i];
        unsigned long at = slot_offset(idx, TABLE_CHILDREN, i);
        if (w == SLOT_EMPTY)
            continue;
        if (w == SLOT_DELETED) {
            found->child_markers++;
            continue;
        }
        uint32_t ref = word_ref(w);
        if (ref == 0 || ref > idx->slot_count)
            return fvm_error_set(err, FVM_E_INVALID, "box index: children slot %lu at offset %lu names no key slot",
                                 (unsigned long)i, at);
        uint64_t kw = keys[ref - 1u];
        if (kw == SLOT_EMPTY || kw == SLOT_DELETED || !record_copy(idx, word_ref(kw), used, &r) ||
            r.parent_len == 0 || hash_tag(r.parent_hash) != word_tag(w))
            return fvm_error_set(err, FVM_E_INVALID, "box index: children slot %lu at offset %lu names key slot %lu, "
                                 "which is not a child of that parent", (unsigned long)i, at,
                                 (unsigned long)(ref - 1u));
        live++;
    }
    if (live != found->children)
        return fvm_error_set(err, FVM_E_INVALID, "box index: the children table at offset %lu holds %lu children, "
                             "the key table %lu", slot_offset(idx, TABLE_CHILDREN, 0), (unsigned long)live,
                             (unsigned long)found->children);
    if (!first_empty(idx, TABLE_CHILDREN, &start))
        return fvm_error_set(err, FVM_E_INVALID, "box index: the children table at offset %lu has no empty slot",
                             slot_offset(idx, TABLE_CHILDREN, 0));
    run_walk walk = {start, 0, start, 0};
    while (run_next(idx, TABLE_CHILDREN, &walk)) {
        uint64_t w = slots[walk.slot];
        if (w == SLOT_EMPTY || w == SLOT_DELETED)
            continue;
        record_copy(idx, word_ref(keys[word_ref(w) - 1u]), used, &r);
        uint32_t home = home_slot(r.parent_hash, idx->slot_count);
        if (distance(idx, home, walk.slot) >= walk.run)
            return fvm_error_set(err, FVM_E_INVALID, "box index: children slot %lu at offset %lu is cut off from "
                                 "its home slot %lu by an empty slot", (unsigned long)walk.slot,
                                 slot_offset(idx, TABLE_CHILDREN, walk.slot), (unsigned long)home);
    }
    /* Every child slot lies in its parent's chain (above); now each key must
     * be named exactly once there. */
    for (uint32_t k = 0; k < idx->slot_count; k++) {
        uint64_t kw = keys[k];
        if (kw == SLOT_EMPTY || kw == SLOT_DELETED)
            continue;
        record_copy(idx, word_ref(kw), used, &r);
        if (r.parent_len == 0)
            continue;
        uint64_t want = make_word(r.parent_hash, k + 1u);
        uint32_t seen = 0, i = home_slot(r.parent_hash, idx->slot_count);
        for (uint32_t n = 0; n < idx->slot_count && slots[i] != SLOT_EMPTY; n++, i = (i + 1u) & (idx->slot_count - 1u))
            seen += slots[i] == want;
        if (seen != 1)
            return fvm_error_set(err, FVM_E_INVALID, "box index: key slot %lu at offset %lu is named by %lu children "
                                 "slots, expected one", (unsigned long)k, slot_offset(idx, TABLE_KEYS, k),
                                 (unsigned long)seen);
    }
    return FVM_OK;
}

static fvm_status check_header_rest(const boxindex *idx, fvm_error *err)
{
    const unsigned char *m = idx->mem;
    static const struct { unsigned from, to; } zeroed[] = {
        {72, 128}, {152 + 4, 160}, {180, 192}, {328, HEADER_SIZE},
    };
    for (size_t z = 0; z < sizeof zeroed / sizeof zeroed[0]; z++)
        for (unsigned i = zeroed[z].from; i < zeroed[z].to; i++)
            if (m[i])
                return fvm_error_set(err, FVM_E_INVALID, "box index: reserved header byte at offset %u is not zero", i);
    uint32_t retired = header_of(idx)->retired;
    if (retired > 1)
        return fvm_error_set(err, FVM_E_INVALID, "box index: retired flag at offset 176 is %lu",
                             (unsigned long)retired);
    for (unsigned i = 0; i < ARENA_RESERVED; i++)
        if (m[idx->arena_off + i])
            return fvm_error_set(err, FVM_E_INVALID, "box index: reserved arena byte at offset %lu is not zero",
                                 arena_offset(idx, i));
    return FVM_OK;
}

fvm_status boxindex_validate(const void *mem, size_t size, fvm_error *err)
{
    boxindex view;
    index_counts c, found;
    fvm_status st = layout_from_header(&view, mem, size, err);
    if (st == FVM_OK)
        st = check_header_rest(&view, err);
    if (st == FVM_OK)
        st = check_journal(&view, header_of(&view), err);
    if (st == FVM_OK && header_of(&view)->journal_state != JOURNAL_IDLE)
        return fvm_error_set(err, FVM_E_BUSY, "box index: a write was interrupted (journal armed at offset 192): "
                             "recover first");
    if (st != FVM_OK)
        return st;
    const index_header *h = header_of(&view);
    if (state_check_of(h) != h->state_check)
        return fvm_error_set(err, FVM_E_INVALID, "box index: the state at offsets 128..168 fails its checksum");
    read_counts(&view, &c);
    if ((st = check_counts(&view, &c, err)) != FVM_OK)
        return st;
    memset(&found, 0, sizeof found);
    if ((st = check_key_table(&view, c.arena_used, &found, err)) != FVM_OK ||
        (st = check_children_table(&view, c.arena_used, &found, err)) != FVM_OK)
        return st;
    if (found.entries != c.entries || found.hidden != c.hidden || found.key_markers != c.key_markers ||
        found.children != c.children || found.child_markers != c.child_markers)
        return fvm_error_set(err, FVM_E_INVALID, "box index: header counts at offsets 136..156 (%lu entries, %lu "
                             "hidden, %lu markers, %lu children, %lu child markers) differ from the tables (%lu, %lu, "
                             "%lu, %lu, %lu)", (unsigned long)c.entries, (unsigned long)c.hidden,
                             (unsigned long)c.key_markers, (unsigned long)c.children, (unsigned long)c.child_markers,
                             (unsigned long)found.entries, (unsigned long)found.hidden,
                             (unsigned long)found.key_markers, (unsigned long)found.children,
                             (unsigned long)found.child_markers);
    return FVM_OK;
}
