/* boxindex_write.c - the box index's writes: every change is planned
 * against the current state (new records and strings past arena_used, slot
 * changes and counters after), then committed through the header's journal
 * so that a writer killed at any instruction leaves a write the next writer
 * rolls forward; recovery does that roll-forward. The public operations
 * (copy-up, create, delete, rename, update, forget) follow, and last
 * rebuild, which replays every live entry into a new region.
 * boxindex.c's top comment gives the layout and the concurrency rules. */
#include "core/boxindex_internal.h"

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
fvm_status check_journal(const boxindex *idx, const index_header *h, fvm_error *err)
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
