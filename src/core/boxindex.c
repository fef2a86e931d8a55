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
 * whether it is also correct.
 *
 * This file holds the layout, keys, init/open and every read; the writes
 * (and rebuild) are in boxindex_write.c, validate in boxindex_check.c, and
 * what they share in boxindex_internal.h. */
#include "core/boxindex_internal.h"

/* ---- keys -------------------------------------------------------------------- */

static int is_unc_key(const uint16_t *k, size_t n)
{
    return n >= 8 && k[0] == '\\' && k[1] == '?' && k[2] == '?' && k[3] == '\\' && k[4] == 'U' && k[5] == 'N' &&
           k[6] == 'C' && k[7] == '\\';
}

/* A registry key: "\REGISTRY\" and at least one name. */
int is_registry_key(const uint16_t *k, size_t n)
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

int key_shape(const uint16_t *k, size_t n, size_t *root_out, size_t *parent_out)
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
fvm_status layout_from_header(boxindex *idx, const void *mem, size_t size, fvm_error *err)
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


void read_counts(const boxindex *idx, index_counts *c)
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

void write_counts(boxindex *idx, const index_counts *c)
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
fvm_status check_counts(const boxindex *idx, const index_counts *c, fvm_error *err)
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


/* How the ancestors of key hide its host path: the strongest reason, and
 * the nearest hiding ancestor in hider. The ancestors are the prefixes that
 * end at the root, before a backslash after it, or before a stream's ':';
 * their hashes come from one pass over the key. */
int ancestors_hide(const boxindex *idx, const uint16_t *key, size_t len, boxindex_entry *hider)
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

