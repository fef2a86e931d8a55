/* fuzz_boxindex.c - libFuzzer target for the box index as outside input.
 *
 * The index file (<box>\index.fvm) is mapped by every boxed process, so a
 * corrupt or hostile one must be refused by boxindex_validate, and even
 * before that (or when a process scribbles on the mapping after it) no
 * lookup, iteration or write may leave the region. The region is copied to
 * a heap block of exactly its size, so AddressSanitizer sees any access
 * past it. Byte 0 picks a mode:
 *   0  the rest is the region as it is;
 *   1  the same, with the magic and version set and the layout, state,
 *      journal and record checksums fixed up, so the fuzzer reaches the
 *      structural checks behind them;
 *   2  the rest is a list of writes run on a fresh index (which must stay
 *      valid after each), then a byte of options (fix the checksums after
 *      corrupting, arm the journal) and (offset, xor) pairs that corrupt it;
 *   3  writes as in 2, then one write stopped at a fuzzed step (a crash),
 *      after which recovery must bring back a valid index.
 * Whatever the region, readers and writers run on it; when validate
 * accepts it, every entry it lists must be found again by lookup and among
 * its parent's children. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/boxindex.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

/* The paths writes use: nested folders, a stream, a root, UNC, and names
 * that share prefixes, so ancestors, children and chains interact. */
static const char *const paths[] = {
    "\\??\\C:\\A", "\\??\\C:\\A\\B", "\\??\\C:\\A\\B\\C", "\\??\\C:\\A\\F:S", "\\??\\C:\\AB", "\\??\\C:\\AB\\X",
    "\\??\\C:\\X", "\\??\\C:\\X\\Y", "\\??\\C:\\", "\\??\\D:\\A", "\\??\\UNC\\S\\H\\Z", "\\??\\UNC\\S\\H\\",
    "\\??\\C:\\A\\B\\D", "\\??\\C:\\A\\F", "\\??\\C:\\Long\\name\\with\\many\\parts.txt", "\\??\\C:\\X\\Y:T",
};
#define PATH_COUNT (sizeof paths / sizeof paths[0])

typedef struct fuzz_key {
    uint16_t key[64], path[64];
    boxindex_key k;
} fuzz_key;

static const boxindex_key *make_key(fuzz_key *f, unsigned which, int lower)
{
    const char *s = paths[which % PATH_COUNT];
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        f->key[i] = (unsigned char)s[i];
        f->path[i] = (uint16_t)(lower && s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    }
    f->k.hash = boxindex_key_hash(f->key, n);
    f->k.key = f->key;
    f->k.path = f->path;
    f->k.len = n;
    return &f->k;
}

static fvm_status run_write(boxindex *idx, uint8_t op, uint8_t a, uint8_t b)
{
    fuzz_key fa, fb;
    fvm_error err;
    boxindex_info info;
    memset(&info, 0, sizeof info);
    info.flags = (uint32_t)(b & 0x80 ? BOXINDEX_FLAG_HAS_BASE : 0) | (b & 0x40 ? BOXINDEX_FLAG_DIRECTORY : 0) |
                 (uint32_t)(b & 0x20) << 8;
    info.base.size = b;
    info.base.mtime = -(int64_t)a;
    memset(info.base.content_hash, a, sizeof info.base.content_hash);
    const boxindex_key *ka = make_key(&fa, a, a & 0x80), *kb = make_key(&fb, b, b & 0x10);
    switch (op % 7) {
    case 0: return boxindex_create(idx, ka, (op & 8) ? &info : NULL, &err);
    case 1: return boxindex_copy_up(idx, ka, &info, &err);
    case 2: return boxindex_delete(idx, ka, (op & 8) ? &info : NULL, &err);
    case 3: return boxindex_rename(idx, ka, kb, (op & 8) ? &info : NULL, (op & 16) ? &info : NULL, &err);
    case 4: return boxindex_update(idx, ka, &info, &err);
    case 5: return boxindex_forget(idx, ka, &err);
    default: return boxindex_recover(idx, &err);
    }
}

/* ---- readers on any region ------------------------------------------------------ */

typedef struct visit_ctx {
    const boxindex *idx;
    const unsigned char *lo, *hi;
    int valid;
    int found_self;
    const boxindex_entry *self;
} visit_ctx;

static void check_in_region(const visit_ctx *v, const void *p, size_t units)
{
    const unsigned char *b = p;
    CHECK(b >= v->lo && b <= v->hi && units <= (size_t)(v->hi - b) / 2u);
}

static int find_self(void *ctx, const boxindex_entry *e)
{
    visit_ctx *v = ctx;
    check_in_region(v, e->key, e->len);
    if (e->key_hash == v->self->key_hash && e->len == v->self->len && memcmp(e->key, v->self->key, e->len * 2) == 0)
        v->found_self = 1;
    return 0;
}

static int visit_entry(void *ctx, const boxindex_entry *e)
{
    visit_ctx *v = ctx;
    check_in_region(v, e->key, e->len);
    check_in_region(v, e->path, e->len);
    if (e->renamed_to)
        check_in_region(v, e->renamed_to, e->renamed_to_len);
    CHECK(e->parent_len < e->len);

    boxindex_entry again;
    boxindex_state s = boxindex_lookup(v->idx, e->key_hash, e->key, e->len, &again);
    boxindex_hidden_by_ancestor(v->idx, e->key, e->len, NULL);
    visit_ctx sub = *v;
    sub.self = e;
    sub.found_self = 0;
    if (e->parent_len)
        boxindex_children(v->idx, e->parent_hash, e->key, e->parent_len, find_self, &sub);
    if (v->valid) {
        /* A valid index finds what it lists, where it lists it. */
        CHECK(s == e->state && again.key == e->key);
        CHECK(e->parent_len == 0 || sub.found_self);
        CHECK(e->key_hash == boxindex_key_hash(e->key, e->len));
    }
    return 0;
}

static void read_everything(const boxindex *idx, const unsigned char *mem, size_t size, int valid)
{
    visit_ctx v = {idx, mem, mem + size, valid, 0, NULL};
    boxindex_foreach(idx, visit_entry, &v);
    for (unsigned i = 0; i < PATH_COUNT; i++) {
        fuzz_key f;
        boxindex_entry e;
        const boxindex_key *k = make_key(&f, i, 0);
        if (boxindex_lookup(idx, k->hash, k->key, k->len, &e) != BOXINDEX_ABSENT) {
            check_in_region(&v, e.key, e.len);
            check_in_region(&v, e.path, e.len);
        }
        boxindex_hidden_by_ancestor(idx, k->key, k->len, NULL);
        visit_ctx c = v;
        c.self = &e;
        memset(&e, 0, sizeof e);
        boxindex_children(idx, k->hash, k->key, k->len, find_self, &c);
    }
    boxindex_stats s;
    boxindex_stats_get(idx, &s);
}

/* A valid index rebuilds into one twice as large, entry for entry. */
static int count_entry(void *ctx, const boxindex_entry *e)
{
    (*(uint32_t *)ctx)++;
    return 0;
}

static void rebuild_larger(boxindex *idx)
{
    fvm_error err;
    boxindex_stats s;
    boxindex big;
    uint32_t before = 0, after = 0;
    boxindex_stats_get(idx, &s);
    if (s.retired || s.max_entries > 4096 || s.arena_size > (1u << 20))
        return;   /* a retired index refuses a second rebuild (FVM_E_BUSY) */
    size_t size = boxindex_size_for(s.max_entries * 2u, (size_t)s.arena_size * 2u);
    unsigned char *mem = malloc(size);
    CHECK(boxindex_rebuild_into(idx, mem, size, s.max_entries * 2u, NULL, &big, &err) == FVM_OK);
    CHECK(boxindex_validate(mem, size, &err) == FVM_OK);
    boxindex_foreach(idx, count_entry, &before);
    boxindex_foreach(&big, count_entry, &after);
    CHECK(before == after && boxindex_is_retired(idx));
    read_everything(&big, mem, size, 1);
    free(mem);
}

/* Validate, read, repair if interrupted, and write: on a valid region every
 * write keeps it valid; on an invalid one, writes may fail but stay inside. */
static void exercise(unsigned char *mem, size_t size, const uint8_t *writes, size_t n)
{
    fvm_error err;
    boxindex idx;
    fvm_status st = boxindex_validate(mem, size, &err);
    if (boxindex_open(&idx, mem, size, NULL, &err) != FVM_OK) {
        CHECK(st != FVM_OK);
        return;
    }
    read_everything(&idx, mem, size, st == FVM_OK);
    if (st == FVM_E_BUSY) {
        fvm_status rec = boxindex_recover(&idx, &err);
        st = boxindex_validate(mem, size, &err);
        CHECK(st != FVM_E_BUSY || rec != FVM_OK);
        read_everything(&idx, mem, size, st == FVM_OK);
    }
    int was_valid = st == FVM_OK;
    for (size_t i = 0; i + 2 < n && i < 24; i += 3) {
        run_write(&idx, writes[i], writes[i + 1], writes[i + 2]);
        if (was_valid)
            CHECK(boxindex_validate(mem, size, &err) == FVM_OK);
    }
    read_everything(&idx, mem, size, was_valid);
    if (was_valid)
        rebuild_larger(&idx);
}

/* ---- mode 1: checksums fixed up -------------------------------------------------- */

static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

static void put64(unsigned char *m, size_t off, uint64_t v) { memcpy(m + off, &v, 8); }

static void fix_checksums(unsigned char *m, size_t size)
{
    static const uint32_t version = BOXINDEX_FORMAT_VERSION;
    if (size < 512)
        return;
    memcpy(m, "FVMBOXIX", 8);
    memcpy(m + 8, &version, 4);
    uint32_t slots;
    memcpy(&slots, m + 28, 4);
    if (slots >= 8 && slots <= (1u << 20) && !(slots & (slots - 1u)) && 512u + 16u * (uint64_t)slots <= size) {
        size_t arena = 512u + 16u * (size_t)slots;
        for (uint32_t i = 0; i < slots; i++) {
            uint64_t w;
            memcpy(&w, m + 512u + 8u * i, 8);
            size_t rec = arena + 8u * (size_t)(uint32_t)w;
            if ((uint32_t)w && rec + 96u <= size) {
                uint64_t h = fnv(m + rec, 92);
                uint32_t c = (uint32_t)(h ^ (h >> 32));
                memcpy(m + rec + 92, &c, 4);
            }
        }
    }
    put64(m, 64, fnv(m, 64));
    put64(m, 168, fnv(m + 128, 40));
    put64(m, 320, fnv(m + 200, 120));
}

/* ---- modes 2 and 3: built by the API ------------------------------------------------ */

static jmp_buf crash_jump;
static unsigned crash_step;

static void crash_hook(void *ctx, unsigned step, const char *what)
{
    if (step == crash_step)
        longjmp(crash_jump, 1);
}

static size_t build(unsigned char **out, const uint8_t *data, size_t n, size_t *used)
{
    fvm_error err;
    boxindex idx;
    uint32_t max_entries = 1u + (n ? data[0] % 24u : 0u);
    size_t arena = 200u + (n > 1 ? data[1] : 0u) * 24u;
    size_t size = boxindex_size_for(max_entries, arena);
    unsigned char *mem = malloc(size);
    CHECK(boxindex_init(&idx, mem, size, max_entries, NULL, &err) == FVM_OK);
    size_t i = 2;
    for (; i + 2 < n && i < 2 + 3 * 40; i += 3) {
        if (data[i] == 0xFF)   /* ends the write list */
            break;
        run_write(&idx, data[i], data[i + 1], data[i + 2]);
        CHECK(boxindex_validate(mem, size, &err) == FVM_OK);
    }
    *used = i + 1 < n ? i + 1 : n;
    *out = mem;
    return size;
}

static void crash_and_recover(unsigned char *mem, size_t size, const uint8_t *rest, size_t n)
{
    fvm_error err;
    boxindex idx;
    if (n < 4)
        return;
    CHECK(boxindex_open(&idx, mem, size, NULL, &err) == FVM_OK);
    crash_step = 1u + rest[0] % 16u;
    boxindex_set_step_hook(&idx, crash_hook, NULL);
    if (setjmp(crash_jump) == 0)
        run_write(&idx, rest[1], rest[2], rest[3]);
    boxindex_set_step_hook(&idx, NULL, NULL);
    fvm_status st = boxindex_validate(mem, size, &err);
    CHECK(st == FVM_OK || st == FVM_E_BUSY);
    read_everything(&idx, mem, size, st == FVM_OK);
    CHECK(boxindex_recover(&idx, &err) == FVM_OK);
    CHECK(boxindex_validate(mem, size, &err) == FVM_OK);
    exercise(mem, size, rest + 4, n - 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 4u;
    data++;
    size--;
    if (mode <= 1) {
        unsigned char *mem = malloc(size ? size : 1);
        memcpy(mem, data, size);
        if (mode == 1)
            fix_checksums(mem, size);
        exercise(mem, size, (const uint8_t *)"\x00\x01\x02\x03\x04\x05\x02\x00\x01\x05\x02\x00", 12);
        free(mem);
        return 0;
    }
    unsigned char *mem;
    size_t used, region = build(&mem, data, size, &used);
    if (mode == 2) {
        uint8_t options = used < size ? data[used++] : 0;
        for (size_t i = used; i + 2 < size; i += 3) {
            size_t off = ((size_t)data[i] << 8 | data[i + 1]) % region;
            mem[off] ^= data[i + 2];
        }
        if (options & 2)
            put64(mem, 192, 0x44454D5241584449ull);   /* the journal's "armed" word */
        if (options & 1)
            fix_checksums(mem, region);
        exercise(mem, region, (const uint8_t *)"\x00\x03\x04\x03\x00\x0C\x02\x01\x00", 9);
    } else {
        crash_and_recover(mem, region, data + used, size - used);
    }
    free(mem);
    return 0;
}
