/* boxindex_check.c - boxindex_validate: checks every invariant a writer
 * keeps (header checksums and counters, the journal, each record, each probe
 * run of both tables) over a region read from disk, which is outside input,
 * without trusting any of it. boxindex.c's top comment gives the layout. */
#include "core/boxindex_internal.h"

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
