/* test_boxindex.c - the box index: the state machine of one path (copy-up,
 * create, delete, rename, update, forget), tombstones hiding what is below
 * them, case-insensitive keys that agree with core/ntpath, children
 * listing, full indexes and rebuild, the validator against each kind of
 * corruption (and every single-bit flip of a small index), recovery after a
 * crash at every step of a write, and the shared-memory protocol under fork:
 * 8 writers and a reader on one region, checked against a serial replay,
 * and a writer killed with SIGKILL while it holds the robust mutex.
 *
 * Paths are written as ASCII NT paths ("\\??\\C:\\Dir\\File"); the key is
 * their ASCII upper case, which is what ntpath_key gives for ASCII. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <uchar.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "core/boxindex.h"
#include "core/ntpath.h"

/* ---- fixtures --------------------------------------------------------------- */

#define REGION_BYTES (256u * 1024u)
static uint64_t region_a[REGION_BYTES / 8], region_b[REGION_BYTES / 8], region_c[REGION_BYTES / 8];

/* Keys from ASCII paths, in a ring so a call can use several at once. */
typedef struct test_key {
    uint16_t key[600], path[600];
    boxindex_key k;
} test_key;

static const boxindex_key *K(const char *s)
{
    static test_key ring[8];
    static unsigned next;
    test_key *t = &ring[next++ % 8];
    size_t n = strlen(s);
    assert_true(n < 600);
    for (size_t i = 0; i < n; i++) {
        t->path[i] = (unsigned char)s[i];
        t->key[i] = (uint16_t)toupper((unsigned char)s[i]);
    }
    t->k.hash = boxindex_key_hash(t->key, n);
    t->k.key = t->key;
    t->k.path = t->path;
    t->k.len = n;
    return &t->k;
}

static boxindex_state state_of(const boxindex *idx, const char *s, boxindex_entry *e)
{
    const boxindex_key *k = K(s);
    return boxindex_lookup(idx, k->hash, k->key, k->len, e);
}

static int hidden(const boxindex *idx, const char *s)
{
    const boxindex_key *k = K(s);
    return boxindex_hidden_by_ancestor(idx, k->key, k->len, NULL);
}

static int units_are(const uint16_t *u, size_t n, const char *s)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (u[i] != (unsigned char)s[i])
            return 0;
    return 1;
}

/* The host version used everywhere: every field follows from one seed, so
 * a reader can tell a torn entry from a whole one. */
static boxindex_info host(uint32_t flags, uint32_t seed)
{
    boxindex_info info;
    memset(&info, 0, sizeof info);
    info.flags = flags | BOXINDEX_FLAG_HAS_BASE;
    info.base.size = seed;
    info.base.mtime = (int64_t)seed * 7;
    memset(info.base.content_hash, (int)(uint8_t)(seed * 13u), sizeof info.base.content_hash);
    return info;
}

static int base_is(const boxindex_entry *e, uint32_t seed)
{
    if (!(e->flags & BOXINDEX_FLAG_HAS_BASE) || e->base.size != seed || e->base.mtime != (int64_t)seed * 7)
        return 0;
    for (size_t i = 0; i < sizeof e->base.content_hash; i++)
        if (e->base.content_hash[i] != (uint8_t)(seed * 13u))
            return 0;
    return 1;
}

/* A lock for single-process tests that catches a write taking it twice or
 * leaving it held. A simulated crash leaves it held; the test then clears
 * it, as a robust mutex hands an abandoned lock to the next owner. */
static int fake_held, fake_taken;
static int fake_lock(void *ctx)
{
    if (fake_held)
        fail_msg("the index lock was taken while held");
    fake_held = 1;
    fake_taken++;
    return 0;
}
static void fake_unlock(void *ctx)
{
    if (!fake_held)
        fail_msg("the index lock was released while free");
    fake_held = 0;
}
static const boxindex_lock fake = {fake_lock, fake_unlock, NULL};

static void assert_valid(const void *mem, size_t size)
{
    fvm_error err = {0};
    fvm_status st = boxindex_validate(mem, size, &err);
    if (st != FVM_OK)
        fail_msg("validate: %s: %s", fvm_status_name(st), err.message);
}

static void expect_ok(fvm_status st, const fvm_error *err)
{
    if (st != FVM_OK)
        fail_msg("expected ok, got %s: %s", fvm_status_name(st), err->message);
}

static void expect_status(fvm_status st, fvm_status want, const fvm_error *err, const char *in_message)
{
    if (st != want)
        fail_msg("expected %s, got %s: %s", fvm_status_name(want), fvm_status_name(st), err->message);
    if (in_message && !strstr(err->message, in_message))
        fail_msg("message '%s' does not contain '%s'", err->message, in_message);
}

static boxindex *fresh(boxindex *idx, void *mem, size_t size, uint32_t max_entries)
{
    fvm_error err = {0};
    expect_ok(boxindex_init(idx, mem, size, max_entries, &fake, &err), &err);
    return idx;
}

/* A canonical text of an index's content, sorted, for comparisons. */
typedef struct dump_buf {
    char *lines[4096];
    size_t count;
} dump_buf;

static void ascii_of(const uint16_t *u, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++)
        o += (size_t)(u[i] < 0x80 ? snprintf(out + o, cap - o, "%c", (char)u[i])
                                  : snprintf(out + o, cap - o, "\\u%04X", u[i]));
    out[o] = 0;
}

static int dump_visit(void *ctx, const boxindex_entry *e)
{
    dump_buf *d = ctx;
    char key[700], path[700], to[700] = "", line[2400];
    ascii_of(e->key, e->len, key, sizeof key);
    ascii_of(e->path, e->len, path, sizeof path);
    if (e->renamed_to)
        ascii_of(e->renamed_to, e->renamed_to_len, to, sizeof to);
    snprintf(line, sizeof line, "%s|%s|%s|%lx|%lu|%ld|%02x|%s", key, path, boxindex_state_name(e->state),
             (unsigned long)e->flags, (unsigned long)e->base.size, (long)e->base.mtime, e->base.content_hash[0], to);
    assert_true(d->count < 4096);
    d->lines[d->count++] = strdup(line);
    return 0;
}

static int compare_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Returns a malloc'd text, one entry a line. */
static char *dump(const boxindex *idx)
{
    static dump_buf d;
    d.count = 0;
    boxindex_foreach(idx, dump_visit, &d);
    qsort(d.lines, d.count, sizeof d.lines[0], compare_lines);
    size_t total = 1;
    for (size_t i = 0; i < d.count; i++)
        total += strlen(d.lines[i]) + 1;
    char *out = malloc(total), *o = out;
    *o = 0;
    for (size_t i = 0; i < d.count; i++) {
        o += sprintf(o, "%s\n", d.lines[i]);
        free(d.lines[i]);
    }
    return out;
}

/* ---- keys agree with ntpath ---------------------------------------------------- */

static void check_against_ntpath(const char16_t *input, const char *expect_key)
{
    static ntpath p, parent;
    static uint16_t key[NTPATH_MAX_UNITS + 300];
    size_t len;
    fvm_error err = {0};
    size_t input_len = 0;
    while (input[input_len])
        input_len++;
    expect_ok(ntpath_normalize((const uint16_t *)input, input_len, NULL, &p, &err), &err);
    expect_ok(ntpath_key(&p, key, sizeof key / sizeof key[0], &len, &err), &err);
    if (expect_key && !units_are(key, len, expect_key))
        fail_msg("key of input differs from %s", expect_key);
    assert_true(boxindex_key_hash(key, len) == ntpath_hash(&p));

    /* The parent's key is a prefix of the key and hashes like the parent's path. */
    size_t plen = boxindex_parent_len(key, len);
    assert_true(plen > 0 && plen < len);
    expect_ok(ntpath_normalize(key, plen, NULL, &parent, &err), &err);
    assert_true(boxindex_key_hash(key, plen) == ntpath_hash(&parent));
    static uint16_t pkey[NTPATH_MAX_UNITS + 300];
    size_t pkl;
    expect_ok(ntpath_key(&parent, pkey, sizeof pkey / sizeof pkey[0], &pkl, &err), &err);
    assert_int_equal(pkl, plen);
    assert_memory_equal(pkey, key, plen * 2);
}

static void test_key_hash_is_ntpath_hash(void **state)
{
    check_against_ntpath(u"C:\\Dir\\File.txt", "\\??\\C:\\DIR\\FILE.TXT");
    check_against_ntpath(u"c:\\a", "\\??\\C:\\A");
    check_against_ntpath(u"\\\\srv\\share\\x\\y", "\\??\\UNC\\SRV\\SHARE\\X\\Y");
    check_against_ntpath(u"\\\\srv\\share\\x", "\\??\\UNC\\SRV\\SHARE\\X");
    check_against_ntpath(u"C:\\dir\\file:stream", "\\??\\C:\\DIR\\FILE:STREAM");
    check_against_ntpath(u"C:\\Stra\u00dfe\\\u00e9t\u00e9\\\u0436", NULL);
    check_against_ntpath(u"\\??\\U:\\unc", "\\??\\U:\\UNC");
}

static void test_key_shapes_and_parents(void **state)
{
    static const struct { const char *key; size_t parent; } good[] = {
        {"\\??\\C:\\", 0},
        {"\\??\\C:\\A", 7},
        {"\\??\\C:\\A\\B", 8},
        {"\\??\\C:\\A\\F:S", 10},
        {"\\??\\UNC\\SRV\\SHARE\\", 0},
        {"\\??\\UNC\\SRV\\SHARE\\X", 18},
        {"\\??\\UNC\\SRV\\SHARE\\X\\Y", 19},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const boxindex_key *k = K(good[i].key);
        if (boxindex_parent_len(k->key, k->len) != good[i].parent)
            fail_msg("parent of %s: %lu, expected %lu", good[i].key,
                     (unsigned long)boxindex_parent_len(k->key, k->len), (unsigned long)good[i].parent);
    }
    static const char *const bad[] = {
        "C:\\A", "\\??\\C:", "\\??\\C:A", "\\??\\1:\\A", "\\??\\C:\\A\\", "\\??\\C:\\A\\\\B", "\\??\\C:\\A:S\\B",
        "\\??\\C:\\A:S:T", "\\??\\C:\\:S", "\\??\\C:\\A:", "\\??\\UNC\\SRV", "\\??\\UNC\\\\SHARE\\X",
        "\\??\\UNC\\SRV\\SHARE", "\\Device\\X\\Y",
    };
    boxindex idx;
    fresh(&idx, region_a, sizeof region_a, 16);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fvm_error err = {0};
        const boxindex_key *k = K(bad[i]);
        assert_int_equal(boxindex_parent_len(k->key, k->len), 0);
        expect_status(boxindex_create(&idx, k, NULL, &err), FVM_E_INVALID, &err, "canonical");
    }
    /* A hash that is not the key's, and a path that is not the key's. */
    boxindex_key k = *K("\\??\\C:\\A");
    fvm_error err = {0};
    k.hash ^= 1;
    expect_status(boxindex_create(&idx, &k, NULL, &err), FVM_E_INVALID, &err, "hash");
    k = *K("\\??\\C:\\A\\B");
    uint16_t wrong[16];
    memcpy(wrong, k.path, k.len * 2);
    wrong[8] = 'x';
    k.path = wrong;
    expect_status(boxindex_create(&idx, &k, NULL, &err), FVM_E_INVALID, &err, "unit 8");
    assert_int_equal(fake_taken, 0);   /* refused before taking the lock */
    assert_valid(region_a, sizeof region_a);
}

/* ---- the state machine ---------------------------------------------------------- */

static void test_copy_up_update_delete_recreate(void **state)
{
    boxindex idx;
    boxindex_entry e;
    fvm_error err = {0};
    fresh(&idx, region_a, sizeof region_a, 64);
    const char *f = "\\??\\C:\\Data\\Report.docx";
    assert_int_equal(state_of(&idx, f, NULL), BOXINDEX_ABSENT);

    boxindex_info h = host(0, 1000);
    expect_ok(boxindex_copy_up(&idx, K(f), &h, &err), &err);
    assert_int_equal(state_of(&idx, f, &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 1000));
    assert_true(units_are(e.path, e.len, f));
    assert_true(units_are(e.key, e.len, "\\??\\C:\\DATA\\REPORT.DOCX"));
    assert_true(units_are(e.key, e.parent_len, "\\??\\C:\\DATA"));
    assert_true(e.parent_hash == boxindex_key_hash(e.key, e.parent_len));
    expect_status(boxindex_copy_up(&idx, K(f), &h, &err), FVM_E_EXISTS, &err, NULL);
    expect_status(boxindex_create(&idx, K(f), NULL, &err), FVM_E_EXISTS, &err, NULL);

    h = host(BOXINDEX_FLAG_CALLER_MASK & 0x4200, 2000);
    expect_ok(boxindex_update(&idx, K(f), &h, &err), &err);
    assert_int_equal(state_of(&idx, f, &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 2000));
    assert_int_equal(e.flags, 0x4200 | BOXINDEX_FLAG_HAS_BASE);

    /* Deleting a copied file leaves a tombstone that keeps the base. */
    expect_ok(boxindex_delete(&idx, K(f), NULL, &err), &err);
    assert_int_equal(state_of(&idx, f, &e), BOXINDEX_TOMBSTONE);
    assert_true(base_is(&e, 2000));
    expect_status(boxindex_delete(&idx, K(f), NULL, &err), FVM_E_NOTFOUND, &err, "already deleted");
    expect_status(boxindex_copy_up(&idx, K(f), &h, &err), FVM_E_NOTFOUND, &err, "deleted");

    /* Re-created: the host file is still the base. */
    expect_ok(boxindex_create(&idx, K(f), NULL, &err), &err);
    assert_int_equal(state_of(&idx, f, &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 2000));

    /* A box-created file disappears when deleted. */
    const char *n = "\\??\\C:\\Data\\new.txt";
    expect_ok(boxindex_create(&idx, K(n), NULL, &err), &err);
    assert_int_equal(state_of(&idx, n, &e), BOXINDEX_CREATED);
    assert_int_equal(e.flags & BOXINDEX_FLAG_HAS_BASE, 0);
    expect_status(boxindex_update(&idx, K(n), &h, &err), FVM_E_INVALID, &err, "created");
    expect_ok(boxindex_delete(&idx, K(n), NULL, &err), &err);
    assert_int_equal(state_of(&idx, n, NULL), BOXINDEX_ABSENT);
    expect_status(boxindex_update(&idx, K(n), &h, &err), FVM_E_NOTFOUND, &err, NULL);

    /* Deleting an untouched host file: a tombstone with the host's base. */
    const char *u = "\\??\\C:\\Data\\old.log";
    h = host(0, 3000);
    expect_ok(boxindex_delete(&idx, K(u), &h, &err), &err);
    assert_int_equal(state_of(&idx, u, &e), BOXINDEX_TOMBSTONE);
    assert_true(base_is(&e, 3000));
    expect_ok(boxindex_forget(&idx, K(u), &err), &err);
    assert_int_equal(state_of(&idx, u, NULL), BOXINDEX_ABSENT);
    expect_status(boxindex_forget(&idx, K(u), &err), FVM_E_NOTFOUND, &err, NULL);

    /* Create over a host file the caller knows of: COPIED. */
    expect_ok(boxindex_create(&idx, K(u), &h, &err), &err);
    assert_int_equal(state_of(&idx, u, &e), BOXINDEX_COPIED);

    boxindex_stats s;
    boxindex_stats_get(&idx, &s);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.hidden, 0);
    assert_false(fake_held);
    assert_valid(region_a, sizeof region_a);
}

static void test_case_insensitive(void **state)
{
    boxindex idx;
    boxindex_entry e;
    fvm_error err = {0};
    fresh(&idx, region_a, sizeof region_a, 16);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\Dir\\ReadMe.TXT"), NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\c:\\dir\\readme.txt", &e), BOXINDEX_CREATED);
    assert_true(units_are(e.path, e.len, "\\??\\C:\\Dir\\ReadMe.TXT"));
    assert_int_equal(state_of(&idx, "\\??\\C:\\DIR\\README.TXT", NULL), BOXINDEX_CREATED);
    expect_status(boxindex_create(&idx, K("\\??\\c:\\DIR\\readme.txt"), NULL, &err), FVM_E_EXISTS, &err, NULL);

    /* A rename that changes only the case keeps the entry and its state. */
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\Dir\\ReadMe.TXT"), K("\\??\\C:\\Dir\\README.txt"), NULL, NULL, &err),
              &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\dir\\readme.TXT", &e), BOXINDEX_CREATED);
    assert_true(units_are(e.path, e.len, "\\??\\C:\\Dir\\README.txt"));
    boxindex_stats s;
    boxindex_stats_get(&idx, &s);
    assert_int_equal(s.entries, 1);

    /* Non-ASCII keys from ntpath: the runtime's way of building keys. */
    static ntpath p;
    static uint16_t key[64];
    size_t len;
    expect_ok(ntpath_normalize((const uint16_t *)u"C:\\\u00e9t\u00e9", 6, NULL, &p, &err), &err);
    expect_ok(ntpath_key(&p, key, 64, &len, &err), &err);
    boxindex_key k = {ntpath_hash(&p), key, p.path, len};
    expect_ok(boxindex_create(&idx, &k, NULL, &err), &err);
    expect_ok(ntpath_normalize((const uint16_t *)u"c:\\\u00c9T\u00c9", 6, NULL, &p, &err), &err);
    expect_ok(ntpath_key(&p, key, 64, &len, &err), &err);
    assert_int_equal(boxindex_lookup(&idx, ntpath_hash(&p), key, len, &e), BOXINDEX_CREATED);
    assert_int_equal(e.path[7], 0xE9);
    assert_valid(region_a, sizeof region_a);
}

static void test_tombstones_hide_what_is_below(void **state)
{
    boxindex idx;
    boxindex_entry e;
    fvm_error err = {0};
    fresh(&idx, region_a, sizeof region_a, 64);
    boxindex_info dir = host(BOXINDEX_FLAG_DIRECTORY, 1);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\A"), &dir, &err), &err);

    assert_true(hidden(&idx, "\\??\\C:\\A\\B\\C"));
    assert_true(hidden(&idx, "\\??\\C:\\a\\b"));
    assert_true(hidden(&idx, "\\??\\C:\\A\\F:stream"));
    assert_false(hidden(&idx, "\\??\\C:\\AB"));
    assert_false(hidden(&idx, "\\??\\C:\\AB\\C"));
    assert_false(hidden(&idx, "\\??\\C:\\A"));           /* itself: its own entry says */
    assert_false(hidden(&idx, "\\??\\D:\\A\\B"));
    const boxindex_key *k = K("\\??\\C:\\A\\B\\C");
    assert_true(boxindex_hidden_by_ancestor(&idx, k->key, k->len, &e));
    assert_true(units_are(e.path, e.len, "\\??\\C:\\A"));
    assert_int_equal(e.state, BOXINDEX_TOMBSTONE);

    /* Nothing can appear below a deleted folder. */
    expect_status(boxindex_create(&idx, K("\\??\\C:\\A\\B"), NULL, &err), FVM_E_NOTFOUND, &err, "deleted");
    expect_status(boxindex_copy_up(&idx, K("\\??\\C:\\A\\B"), &dir, &err), FVM_E_NOTFOUND, &err, NULL);
    expect_status(boxindex_delete(&idx, K("\\??\\C:\\A\\B"), &dir, &err), FVM_E_NOTFOUND, &err, NULL);
    expect_status(boxindex_rename(&idx, K("\\??\\C:\\A\\B"), K("\\??\\C:\\X"), NULL, NULL, &err), FVM_E_NOTFOUND,
                  &err, "source");
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\X"), NULL, &err), &err);
    expect_status(boxindex_rename(&idx, K("\\??\\C:\\X"), K("\\??\\C:\\A\\X"), NULL, NULL, &err), FVM_E_NOTFOUND,
                  &err, "target");

    /* A stream of a deleted file is hidden too. */
    boxindex_info file = host(0, 2);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\Docs\\F.txt"), &file, &err), &err);
    assert_true(hidden(&idx, "\\??\\C:\\Docs\\F.txt:Zone.Identifier"));
    assert_false(hidden(&idx, "\\??\\C:\\Docs\\F.txt2"));

    /* Re-creating the folder: a new, empty box folder over the deleted host
     * folder. Host paths below stay hidden (OPAQUE); box entries appear. */
    boxindex_info newdir = {BOXINDEX_FLAG_DIRECTORY};
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\A"), &newdir, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\A", &e), BOXINDEX_COPIED);
    assert_int_equal(e.flags & (BOXINDEX_FLAG_OPAQUE | BOXINDEX_FLAG_DIRECTORY | BOXINDEX_FLAG_HAS_BASE),
                     BOXINDEX_FLAG_OPAQUE | BOXINDEX_FLAG_DIRECTORY | BOXINDEX_FLAG_HAS_BASE);
    assert_true(base_is(&e, 1));
    assert_true(hidden(&idx, "\\??\\C:\\A\\B"));
    expect_status(boxindex_copy_up(&idx, K("\\??\\C:\\A\\B"), &file, &err), FVM_E_NOTFOUND, &err, NULL);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\A\\B"), NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\A\\B", NULL), BOXINDEX_CREATED);
    /* Deleting the folder again drops OPAQUE: a tombstone hides anyway. */
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\A\\B"), NULL, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\A"), NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\A", &e), BOXINDEX_TOMBSTONE);
    assert_int_equal(e.flags & BOXINDEX_FLAG_OPAQUE, 0);
    /* A copied-up folder is not opaque: the host's contents show through. */
    expect_ok(boxindex_copy_up(&idx, K("\\??\\C:\\P"), &dir, &err), &err);
    assert_false(hidden(&idx, "\\??\\C:\\P\\Q"));
    assert_valid(region_a, sizeof region_a);
}

/* Registry keys share the index: their own root and hash seed, ':' an
 * ordinary character, tombstones hiding the keys below, and the validator
 * accepting them. */
static void test_registry_keys(void **state)
{
    boxindex idx;
    boxindex_entry e;
    fvm_error err = {0};
    fresh(&idx, region_a, sizeof region_a, 64);
    const boxindex_key *k = K("\\REGISTRY\\MACHINE\\Software\\A:B");
    assert_true(boxindex_key_is_registry(k->key, k->len));
    assert_int_equal(boxindex_parent_len(k->key, k->len), strlen("\\REGISTRY\\MACHINE\\Software"));
    k = K("\\REGISTRY\\MACHINE");
    assert_int_equal(boxindex_parent_len(k->key, k->len), 10);
    k = K("\\??\\C:\\X");
    assert_false(boxindex_key_is_registry(k->key, k->len));
    /* Same units after the prefix, another kind: another hash. */
    assert_true(K("\\REGISTRY\\A")->hash != boxindex_key_hash(K("\\??\\C:\\A")->key, 8));

    boxindex_info none = {0, {0}};
    expect_ok(boxindex_copy_up(&idx, K("\\REGISTRY\\MACHINE\\Software"), &none, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\REGISTRY\\MACHINE\\Software\\New"), &none, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\REGISTRY\\MACHINE\\Software\\Old"), &none, &err), &err);
    expect_ok(boxindex_copy_up(&idx, K("\\REGISTRY\\MACHINE\\Software\\A:B"), &none, &err), &err);
    assert_int_equal(state_of(&idx, "\\registry\\machine\\software\\new", &e), BOXINDEX_CREATED);
    assert_true(units_are(e.path, e.len, "\\REGISTRY\\MACHINE\\Software\\New"));
    assert_int_equal(state_of(&idx, "\\REGISTRY\\MACHINE\\SOFTWARE\\OLD", &e), BOXINDEX_TOMBSTONE);
    assert_true(hidden(&idx, "\\REGISTRY\\MACHINE\\Software\\Old\\Child"));
    assert_false(hidden(&idx, "\\REGISTRY\\MACHINE\\Software\\Older"));
    /* "A" is not a parent of "A:B" in the registry: deleting A hides nothing of A:B. */
    expect_ok(boxindex_delete(&idx, K("\\REGISTRY\\MACHINE\\Software\\A"), &none, &err), &err);
    assert_false(hidden(&idx, "\\REGISTRY\\MACHINE\\Software\\A:B"));
    assert_int_equal(state_of(&idx, "\\REGISTRY\\MACHINE\\Software\\A:B", &e), BOXINDEX_COPIED);
    /* Lower case, trailing or doubled backslashes are not keys. */
    boxindex_key bad = *K("\\REGISTRY\\MACHINE\\X\\");
    expect_status(boxindex_create(&idx, &bad, &none, &err), FVM_E_INVALID, &err, "registry");
    bad = *K("\\REGISTRY\\MACHINE\\\\X");
    expect_status(boxindex_create(&idx, &bad, &none, &err), FVM_E_INVALID, &err, NULL);
    assert_int_equal(boxindex_validate(region_a, sizeof region_a, &err), FVM_OK);
}

static void test_rename(void **state)
{
    boxindex idx;
    boxindex_entry e;
    fvm_error err = {0};
    fresh(&idx, region_a, sizeof region_a, 64);
    boxindex_info h = host(0, 10);

    /* A box-created file moves: nothing stays behind. */
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\new"), NULL, &err), &err);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\new"), K("\\??\\C:\\D\\moved"), NULL, NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\new", NULL), BOXINDEX_ABSENT);
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\moved", NULL), BOXINDEX_CREATED);

    /* A copied file: the source is RENAMED (base kept, target recorded). */
    expect_ok(boxindex_copy_up(&idx, K("\\??\\C:\\D\\host.txt"), &h, &err), &err);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\host.txt"), K("\\??\\C:\\E\\Host2.txt"), NULL, NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\host.txt", &e), BOXINDEX_RENAMED);
    assert_true(base_is(&e, 10));
    assert_true(units_are(e.renamed_to, e.renamed_to_len, "\\??\\C:\\E\\Host2.txt"));
    assert_int_equal(state_of(&idx, "\\??\\C:\\E\\host2.TXT", &e), BOXINDEX_CREATED);
    expect_status(boxindex_rename(&idx, K("\\??\\C:\\D\\host.txt"), K("\\??\\C:\\E\\x"), NULL, NULL, &err),
                  FVM_E_NOTFOUND, &err, "deleted");

    /* An untouched host file: its base comes from the caller. */
    boxindex_info h2 = host(BOXINDEX_FLAG_DIRECTORY, 20);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\Old"), K("\\??\\C:\\New"), &h2, NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\Old", &e), BOXINDEX_RENAMED);
    assert_true(base_is(&e, 20));
    assert_int_equal(state_of(&idx, "\\??\\C:\\New", &e), BOXINDEX_CREATED);
    assert_int_equal(e.flags, BOXINDEX_FLAG_DIRECTORY);
    assert_true(hidden(&idx, "\\??\\C:\\Old\\inside"));

    /* Onto a deleted host file: the target keeps the host's base there. */
    boxindex_info h3 = host(0, 30);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\T\\target"), &h3, &err), &err);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\moved"), K("\\??\\C:\\T\\target"), NULL, NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\T\\target", &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 30));
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\moved", NULL), BOXINDEX_ABSENT);

    /* Onto an untouched host file (replace): the caller gives its base. */
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\a"), NULL, &err), &err);
    boxindex_info h4 = host(0, 40);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\a"), K("\\??\\C:\\D\\b"), NULL, &h4, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\b", &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 40));

    /* Onto a live entry: replaced, its own base kept. */
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\c"), NULL, &err), &err);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\c"), K("\\??\\C:\\D\\B"), NULL, NULL, &err), &err);
    assert_int_equal(state_of(&idx, "\\??\\C:\\D\\b", &e), BOXINDEX_COPIED);
    assert_true(base_is(&e, 40));
    assert_true(units_are(e.path, e.len, "\\??\\C:\\D\\B"));

    expect_status(boxindex_rename(&idx, K("\\??\\C:\\New"), K("\\??\\C:\\New\\sub"), NULL, NULL, &err), FVM_E_INVALID,
                  &err, "below itself");
    boxindex_stats s;
    boxindex_stats_get(&idx, &s);
    assert_int_equal(s.hidden, 2);   /* host.txt and Old; the tombstone was renamed over */
    assert_valid(region_a, sizeof region_a);
}

/* ---- children --------------------------------------------------------------------- */

typedef struct child_list {
    char names[32][64];
    int count;
} child_list;

static int collect_child(void *ctx, const boxindex_entry *e)
{
    child_list *l = ctx;
    assert_true(l->count < 32);
    ascii_of(e->path + e->parent_len, e->len - e->parent_len, l->names[l->count++], 64);
    return 0;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

static char *children_of(const boxindex *idx, const char *folder)
{
    static child_list l;
    static char out[2048];
    const boxindex_key *k = K(folder);
    l.count = 0;
    boxindex_children(idx, k->hash, k->key, k->len, collect_child, &l);
    qsort(l.names, (size_t)l.count, sizeof l.names[0], compare_names);
    out[0] = 0;
    for (int i = 0; i < l.count; i++) {
        strcat(out, l.names[i]);
        strcat(out, " ");
    }
    return out;
}

static int stop_at_first(void *ctx, const boxindex_entry *e) { return 7; }

static void test_children(void **state)
{
    boxindex idx;
    fvm_error err = {0};
    boxindex_info h = host(0, 5);
    fresh(&idx, region_a, sizeof region_a, 64);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\one"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\Two"), NULL, &err), &err);
    expect_ok(boxindex_copy_up(&idx, K("\\??\\C:\\D\\three"), &h, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\D\\gone"), &h, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\Sub\\deep"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\DD\\x"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\D\\one:ads"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\Top"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\UNC\\srv\\share\\u"), NULL, &err), &err);

    assert_string_equal(children_of(&idx, "\\??\\C:\\D"), "\\Two \\gone \\one \\three ");
    assert_string_equal(children_of(&idx, "\\??\\c:\\d"), "\\Two \\gone \\one \\three ");
    assert_string_equal(children_of(&idx, "\\??\\C:\\D\\Sub"), "\\deep ");
    assert_string_equal(children_of(&idx, "\\??\\C:\\D\\one"), ":ads ");
    assert_string_equal(children_of(&idx, "\\??\\C:\\"), "Top ");
    assert_string_equal(children_of(&idx, "\\??\\UNC\\SRV\\SHARE\\"), "u ");
    assert_string_equal(children_of(&idx, "\\??\\C:\\Nothing"), "");

    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\D\\one:ads"), NULL, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\D\\one"), NULL, &err), &err);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\D\\Two"), K("\\??\\C:\\DD\\Two"), NULL, NULL, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\D\\three"), NULL, &err), &err);
    assert_string_equal(children_of(&idx, "\\??\\C:\\D"), "\\gone \\three ");
    assert_string_equal(children_of(&idx, "\\??\\C:\\DD"), "\\Two \\x ");
    const boxindex_key *k = K("\\??\\C:\\DD");
    assert_int_equal(boxindex_children(&idx, k->hash, k->key, k->len, stop_at_first, NULL), 7);
    assert_valid(region_a, sizeof region_a);
}

/* ---- capacity and rebuild ------------------------------------------------------------ */

static void test_full_index_is_range(void **state)
{
    boxindex idx;
    fvm_error err = {0};
    char name[64];
    fresh(&idx, region_a, sizeof region_a, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\F\\file%d", i);
        expect_ok(boxindex_create(&idx, K(name), NULL, &err), &err);
    }
    boxindex_stats before, after;
    boxindex_stats_get(&idx, &before);
    expect_status(boxindex_create(&idx, K("\\??\\C:\\F\\six"), NULL, &err), FVM_E_RANGE, &err, "full");
    boxindex_stats_get(&idx, &after);
    assert_true(before.generation == after.generation && after.entries == 5);
    /* Changing an existing entry still works when the table is full. */
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\F\\file0"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\F\\six"), NULL, &err), &err);
    assert_valid(region_a, sizeof region_a);

    /* Arena full: a region with room for a few paths only. */
    size_t size = boxindex_size_for(100, 400);
    assert_true(size > 0 && size < sizeof region_b);
    fresh(&idx, region_b, size, 100);
    fvm_status st = FVM_OK;
    int made = 0;
    for (int i = 0; i < 100 && st == FVM_OK; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\F\\file%d", i);
        st = boxindex_create(&idx, K(name), NULL, &err);
        made += st == FVM_OK;
    }
    expect_status(st, FVM_E_RANGE, &err, "arena full");
    assert_true(made >= 2 && made < 10);
    assert_false(fake_held);
    assert_valid(region_b, size);

    /* Too small a region, too many entries. */
    expect_status(boxindex_init(&idx, region_b, 600, 100, NULL, &err), FVM_E_RANGE, &err, "cannot hold");
    expect_status(boxindex_init(&idx, region_b, size, 0, NULL, &err), FVM_E_RANGE, &err, NULL);
    assert_int_equal(boxindex_size_for(BOXINDEX_MAX_ENTRIES + 1, 10), 0);
    expect_status(boxindex_init(&idx, (char *)region_b + 4, size, 10, NULL, &err), FVM_E_INVALID, &err, "aligned");
}

static void test_markers_do_not_fill_the_table(void **state)
{
    /* Thousands of creates and deletes in a 16-entry index: deletion markers
     * at the end of a chain turn back into empty slots. */
    boxindex idx;
    fvm_error err = {0};
    char name[64];
    size_t size = boxindex_size_for(16, 200000);
    fresh(&idx, region_a, size, 16);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\Churn\\f%d", i);
        expect_ok(boxindex_create(&idx, K(name), NULL, &err), &err);
        if (i >= 8) {
            snprintf(name, sizeof name, "\\??\\C:\\Churn\\f%d", i - 8);
            expect_ok(boxindex_delete(&idx, K(name), NULL, &err), &err);
        }
    }
    boxindex_stats s;
    boxindex_stats_get(&idx, &s);
    assert_int_equal(s.entries, 8);
    assert_true(s.entries + s.key_markers <= s.slot_count - s.slot_count / 4);
    assert_valid(region_a, size);
}

static void test_rebuild_into_larger(void **state)
{
    boxindex old, big;
    fvm_error err = {0};
    char name[64];
    size_t small = boxindex_size_for(20, 4000);
    fresh(&old, region_a, small, 20);
    boxindex_info h = host(0, 77), d = host(BOXINDEX_FLAG_DIRECTORY, 78);
    expect_ok(boxindex_delete(&old, K("\\??\\C:\\Gone"), &d, &err), &err);
    expect_ok(boxindex_rename(&old, K("\\??\\C:\\R\\from"), K("\\??\\C:\\R\\To"), &h, NULL, &err), &err);
    fvm_status st = FVM_OK;
    for (int i = 0; st == FVM_OK; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\Many\\File%d", i);
        st = i % 2 ? boxindex_create(&old, K(name), NULL, &err) : boxindex_copy_up(&old, K(name), &h, &err);
    }
    expect_status(st, FVM_E_RANGE, &err, "full");
    char *before = dump(&old);

    /* Too small a target: FVM_E_RANGE, old unchanged and still writable. */
    size_t tiny = boxindex_size_for(4, 4000);
    fake_lock(NULL);
    expect_status(boxindex_rebuild_into(&old, region_b, tiny, 4, &fake, &big, &err), FVM_E_RANGE, &err, "full");
    fake_unlock(NULL);
    assert_false(boxindex_is_retired(&old));

    size_t large = boxindex_size_for(200, 40000);
    fake_lock(NULL);   /* the caller holds old's lock during a rebuild */
    expect_ok(boxindex_rebuild_into(&old, region_b, large, 200, &fake, &big, &err), &err);
    fake_unlock(NULL);
    assert_valid(region_b, large);
    char *after = dump(&big);
    assert_string_equal(before, after);
    free(before);
    free(after);

    assert_true(boxindex_is_retired(&old));
    expect_status(boxindex_create(&old, K("\\??\\C:\\Late"), NULL, &err), FVM_E_BUSY, &err, "reopen");
    assert_int_equal(state_of(&old, "\\??\\C:\\Gone", NULL), BOXINDEX_TOMBSTONE);   /* still readable */
    assert_valid(region_a, small);   /* retired is a valid state */
    expect_ok(boxindex_create(&big, K("\\??\\C:\\Late"), NULL, &err), &err);
    assert_true(hidden(&big, "\\??\\C:\\Gone\\x"));
    boxindex_entry e;
    assert_int_equal(state_of(&big, "\\??\\C:\\R\\from", &e), BOXINDEX_RENAMED);
    assert_true(units_are(e.renamed_to, e.renamed_to_len, "\\??\\C:\\R\\To"));
    assert_valid(region_b, large);
}

/* ---- validation ---------------------------------------------------------------------- */

/* The region layout (boxindex.c's top comment), for building corruptions
 * that pass the checksums and reach the deeper checks. */
static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
static uint32_t rd32(const unsigned char *m, size_t off) { uint32_t v; memcpy(&v, m + off, 4); return v; }
static uint64_t rd64(const unsigned char *m, size_t off) { uint64_t v; memcpy(&v, m + off, 8); return v; }
static void wr32(unsigned char *m, size_t off, uint32_t v) { memcpy(m + off, &v, 4); }
static void wr64(unsigned char *m, size_t off, uint64_t v) { memcpy(m + off, &v, 8); }
static void fix_layout(unsigned char *m) { wr64(m, 64, fnv(m, 64)); }
static void fix_state(unsigned char *m) { wr64(m, 168, fnv(m + 128, 40)); }
static void fix_journal(unsigned char *m) { wr64(m, 320, fnv(m + 200, 120)); }
static void fix_record(unsigned char *r)
{
    uint64_t h = fnv(r, 92);
    wr32(r, 92, (uint32_t)(h ^ (h >> 32)));
}
static uint32_t slots_of(const unsigned char *m) { return rd32(m, 28); }
static size_t key_slot(const unsigned char *m, uint32_t i) { (void)m; return 512u + 8u * i; }
static size_t child_slot(const unsigned char *m, uint32_t i) { return 512u + 8u * (slots_of(m) + i); }
static size_t arena(const unsigned char *m) { return 512u + 16u * slots_of(m); }
static uint32_t home(const unsigned char *m, uint64_t hash)
{
    return (uint32_t)((hash * 0x9E3779B97F4A7C15ull) >> 32) & (slots_of(m) - 1u);
}
/* The first live key slot at or after from, and its record's offset. */
static uint32_t live_slot(const unsigned char *m, uint32_t from, size_t *record)
{
    for (uint32_t n = 0; n < slots_of(m); n++) {
        uint32_t i = (from + n) & (slots_of(m) - 1u);
        uint64_t w = rd64(m, key_slot(m, i));
        if ((uint32_t)w != 0) {
            *record = arena(m) + 8u * (uint32_t)w;
            return i;
        }
    }
    fail_msg("no live slot");
    return 0;
}

static size_t build_sample(boxindex *idx, void *mem)
{
    fvm_error err = {0};
    size_t size = boxindex_size_for(12, 6000);
    boxindex_info h = host(0, 9), d = host(BOXINDEX_FLAG_DIRECTORY, 8);
    fresh(idx, mem, size, 12);
    expect_ok(boxindex_create(idx, K("\\??\\C:\\S\\a"), NULL, &err), &err);
    expect_ok(boxindex_copy_up(idx, K("\\??\\C:\\S\\b"), &h, &err), &err);
    expect_ok(boxindex_delete(idx, K("\\??\\C:\\S\\c"), &h, &err), &err);
    expect_ok(boxindex_rename(idx, K("\\??\\C:\\S\\d"), K("\\??\\C:\\T\\e"), &h, NULL, &err), &err);
    expect_ok(boxindex_delete(idx, K("\\??\\C:\\Dir"), &d, &err), &err);
    expect_ok(boxindex_create(idx, K("\\??\\UNC\\srv\\sh\\f"), NULL, &err), &err);
    expect_ok(boxindex_create(idx, K("\\??\\C:\\S\\g"), NULL, &err), &err);
    expect_ok(boxindex_delete(idx, K("\\??\\C:\\S\\g"), NULL, &err), &err);
    assert_valid(mem, size);
    return size;
}

typedef void (*corruptor)(unsigned char *m);

static void expect_invalid(const unsigned char *good, size_t size, corruptor corrupt, const char *in_message)
{
    unsigned char *m = (unsigned char *)region_c;
    fvm_error err = {0};
    memcpy(m, good, size);
    corrupt(m);
    fvm_status st = boxindex_validate(m, size, &err);
    if (st == FVM_OK)
        fail_msg("corruption expected to mention '%s' was not detected", in_message);
    if (!strstr(err.message, in_message))
        fail_msg("message '%s' does not contain '%s'", err.message, in_message);
    /* Whatever validate said, readers stay in bounds (ASan watches). */
    boxindex idx;
    if (boxindex_open(&idx, m, size, NULL, &err) == FVM_OK) {
        char *d = dump(&idx);
        free(d);
        state_of(&idx, "\\??\\C:\\S\\a", NULL);
        hidden(&idx, "\\??\\C:\\Dir\\x\\y");
        children_of(&idx, "\\??\\C:\\S");
    }
}

static void c_magic(unsigned char *m) { m[3] ^= 1; }
static void c_version(unsigned char *m) { m[8] = 9; }
static void c_slots_unchecked(unsigned char *m) { m[28] ^= 0x10; }
static void c_slots(unsigned char *m) { wr32(m, 28, 24); fix_layout(m); }
static void c_total(unsigned char *m) { wr64(m, 16, rd64(m, 16) + 8); wr64(m, 56, rd64(m, 56) + 8); fix_layout(m); }
static void c_reserved(unsigned char *m) { m[100] = 1; }
static void c_state_unchecked(unsigned char *m) { m[136] += 1; }
static void c_count(unsigned char *m) { wr32(m, 136, rd32(m, 136) + 1); fix_state(m); }
static void c_arena_used(unsigned char *m) { wr64(m, 160, rd64(m, 56) + 64); fix_state(m); }
static void c_slot_garbage(unsigned char *m)
{
    for (uint32_t i = 0;; i++)
        if (rd64(m, key_slot(m, i)) == 0) {
            wr64(m, key_slot(m, i), 0x1234ull << 32);
            return;
        }
}
static void c_slot_ref(unsigned char *m)
{
    size_t rec;
    uint32_t s = live_slot(m, 0, &rec);
    uint64_t w = rd64(m, key_slot(m, s));
    wr64(m, key_slot(m, s), (w & 0xFFFFFFFF00000000ull) | 0x00FFFFF0u);
}
static void c_record_byte(unsigned char *m)
{
    size_t rec;
    live_slot(m, 0, &rec);
    m[rec + 88] ^= 2;
}
static void c_record_key_off(unsigned char *m)
{
    size_t rec;
    live_slot(m, 0, &rec);
    wr32(m, rec + 64, 0x7FFFFFF0u);
    fix_record(m + rec);
}
static void c_record_state(unsigned char *m)
{
    size_t rec;
    live_slot(m, 0, &rec);
    m[rec + 88] = 9;
    fix_record(m + rec);
}
static void c_record_flags(unsigned char *m)
{
    size_t rec;
    live_slot(m, 0, &rec);
    m[rec + 90] |= BOXINDEX_FLAG_OPAQUE;
    m[rec + 90] &= (unsigned char)~BOXINDEX_FLAG_DIRECTORY;
    fix_record(m + rec);
}
static void c_record_hash(unsigned char *m)
{
    size_t rec;
    uint32_t s = live_slot(m, 0, &rec);
    wr64(m, rec, rd64(m, rec) ^ 0x100);   /* low bits: the tag still matches */
    fix_record(m + rec);
    (void)s;
}
static void c_record_parent(unsigned char *m)
{
    size_t rec;
    live_slot(m, 0, &rec);
    wr32(m, rec + 76, rd32(m, rec + 76) - 1);
    fix_record(m + rec);
}
/* Moves an entry to an empty slot that an empty slot separates from its home. */
static void c_cut_off(unsigned char *m)
{
    size_t rec;
    uint32_t s = live_slot(m, 0, &rec), mask = slots_of(m) - 1u;
    uint32_t h = home(m, rd64(m, rec));
    for (uint32_t t = 0; t <= mask; t++) {
        if (t == h || rd64(m, key_slot(m, t)) || rd64(m, key_slot(m, (t - 1u) & mask)) || t == s)
            continue;
        wr64(m, key_slot(m, t), rd64(m, key_slot(m, s)));
        wr64(m, key_slot(m, s), 0);
        return;
    }
    fail_msg("no slot to cut off");
}
/* Copies an entry that ends a chain into the empty slot after it. */
static void c_duplicate(unsigned char *m)
{
    uint32_t mask = slots_of(m) - 1u;
    for (uint32_t s = 0; s <= mask; s++) {
        uint64_t w = rd64(m, key_slot(m, s));
        if ((uint32_t)w && rd64(m, key_slot(m, (s + 1u) & mask)) == 0) {
            wr64(m, key_slot(m, (s + 1u) & mask), w);
            return;
        }
    }
    fail_msg("no chain end");
}
static void c_child_cleared(unsigned char *m)
{
    for (uint32_t i = 0;; i++)
        if ((uint32_t)rd64(m, child_slot(m, i))) {
            wr64(m, child_slot(m, i), 0);
            return;
        }
}
static void c_child_ref(unsigned char *m)
{
    for (uint32_t i = 0;; i++)
        if ((uint32_t)rd64(m, child_slot(m, i))) {
            wr64(m, child_slot(m, i), (rd64(m, child_slot(m, i)) & 0xFFFFFFFF00000000ull) | 0xFFFFu);
            return;
        }
}
static void c_journal_state(unsigned char *m) { wr64(m, 192, 5); }
static void c_journal_check(unsigned char *m)
{
    wr64(m, 192, 0x44454D5241584449ull);   /* re-armed: the last write's journal is still whole... */
    m[230] ^= 1;                           /* ...until a byte of it changes */
}
static void c_journal_slot(unsigned char *m)
{
    wr64(m, 192, 0x44454D5241584449ull);
    wr32(m, 216, 3);
    wr32(m, 220, 1);
    wr32(m, 224, 0);
    wr32(m, 228, 0x7FFFFFFF);
    wr64(m, 208, rd64(m, 160));
    fix_journal(m);
}
static void c_retired(unsigned char *m) { m[176] = 2; }
static void c_arena_reserved(unsigned char *m) { m[arena(m) + 3] = 1; }

static void test_validate_catches_corruption(void **state)
{
    boxindex idx;
    fvm_error err = {0};
    const unsigned char *good = (const unsigned char *)region_a;
    size_t size = build_sample(&idx, region_a);

    expect_invalid(good, size, c_magic, "magic at offset 0");
    expect_invalid(good, size, c_version, "version 9 at offset 8");
    expect_invalid(good, size, c_slots_unchecked, "layout checksum at offset 64");
    expect_invalid(good, size, c_slots, "slot count 24 at offset 28");
    expect_invalid(good, size, c_total, "describes");
    expect_invalid(good, size, c_reserved, "offset 100");
    expect_invalid(good, size, c_state_unchecked, "state at offsets 128..168 fails its checksum");
    expect_invalid(good, size, c_count, "differ from the tables");
    expect_invalid(good, size, c_arena_used, "arena_used");
    expect_invalid(good, size, c_slot_garbage, "neither empty, a marker nor a reference");
    expect_invalid(good, size, c_slot_ref, "outside the used arena");
    expect_invalid(good, size, c_record_byte, "fails its checksum");
    expect_invalid(good, size, c_record_key_off, "outside the used arena");
    expect_invalid(good, size, c_record_state, "has state 9");
    expect_invalid(good, size, c_record_flags, "do not fit its state");
    expect_invalid(good, size, c_record_hash, "hash is not the key's");
    expect_invalid(good, size, c_record_parent, "parent length");
    expect_invalid(good, size, c_cut_off, "cut off from its home slot");
    expect_invalid(good, size, c_duplicate, "repeats the key of slot");
    expect_invalid(good, size, c_child_cleared, "children");
    expect_invalid(good, size, c_child_ref, "names no key slot");
    expect_invalid(good, size, c_journal_state, "neither idle nor armed");
    expect_invalid(good, size, c_journal_check, "armed journal fails its checksum");
    expect_invalid(good, size, c_journal_slot, "names no slot");
    expect_invalid(good, size, c_retired, "retired flag");
    expect_invalid(good, size, c_arena_reserved, "reserved arena byte");

    expect_status(boxindex_validate(region_a, 100, &err), FVM_E_INVALID, &err, "shorter than");
    expect_status(boxindex_validate(region_a, size - 8, &err), FVM_E_INVALID, &err, "describes");
    expect_status(boxindex_validate((char *)region_a + 1, size, &err), FVM_E_INVALID, &err, "aligned");
    expect_status(boxindex_validate(NULL, size, &err), FVM_E_INVALID, &err, NULL);
    /* Writers check the header state (not the whole index) before a write,
     * and refuse a corrupt one rather than repair it blindly. */
    memcpy(region_c, region_a, size);
    c_state_unchecked((unsigned char *)region_c);
    boxindex bad;
    expect_ok(boxindex_open(&bad, region_c, size, &fake, &err), &err);
    expect_status(boxindex_create(&bad, K("\\??\\C:\\S\\z"), NULL, &err), FVM_E_INVALID, &err, "checksum");
    memcpy(region_c, region_a, size);
    c_journal_slot((unsigned char *)region_c);
    expect_status(boxindex_create(&bad, K("\\??\\C:\\S\\z"), NULL, &err), FVM_E_INVALID, &err, "names no slot");
    expect_status(boxindex_recover(&bad, &err), FVM_E_INVALID, &err, "names no slot");
    memcpy(region_c, region_a, size);
    c_magic((unsigned char *)region_c);
    expect_status(boxindex_open(&bad, region_c, size, &fake, &err), FVM_E_INVALID, &err, "magic");
    assert_false(fake_held);
}

/* Every single-bit flip of a small index: validate never crashes, readers
 * stay in bounds, and a flip is detected wherever the format protects the
 * bytes. The sample has one record per key and upper-case paths (the path
 * is the key string), so every used byte is protected except the journal
 * body (stale when idle), the retired flag and the unused arena. */
static void test_every_bit_flip(void **state)
{
    boxindex idx;
    fvm_error err = {0};
    size_t size = boxindex_size_for(6, 3000);
    boxindex_info h = host(0, 9), d = host(BOXINDEX_FLAG_DIRECTORY, 8);
    fresh(&idx, region_a, size, 6);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\S\\A"), NULL, &err), &err);
    expect_ok(boxindex_copy_up(&idx, K("\\??\\C:\\S\\B"), &h, &err), &err);
    expect_ok(boxindex_delete(&idx, K("\\??\\C:\\DIR"), &d, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\UNC\\SRV\\SH\\F"), NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\"), NULL, &err), &err);
    assert_valid(region_a, size);
    const unsigned char *good = (const unsigned char *)region_a;
    size_t used_end = arena(good) + rd64(good, 160);
    unsigned char *m = (unsigned char *)region_c;
    unsigned long undetected = 0, detected = 0;
    /* The protected bytes: the header but the journal body and the retired
     * flag, the tables, and in the arena each record and its key string
     * (the padding between them is not protected). */
    static unsigned char protected_bytes[REGION_BYTES];
    memset(protected_bytes, 1, arena(good));
    memset(protected_bytes + 200, 0, 128);
    protected_bytes[176] = 0;
    memset(protected_bytes + arena(good), 0, used_end - arena(good));
    for (uint32_t i = 0; i < slots_of(good); i++) {
        uint64_t w = rd64(good, key_slot(good, i));
        if (!(uint32_t)w)
            continue;
        size_t rec = arena(good) + 8u * (uint32_t)w;
        memset(protected_bytes + rec, 1, 96);
        memset(protected_bytes + arena(good) + rd32(good, rec + 64), 1, 2u * rd32(good, rec + 72));
        assert_int_equal(rd32(good, rec + 64), rd32(good, rec + 68));   /* path == key */
    }
    for (size_t off = 0; off < used_end; off++) {
        int protected_byte = protected_bytes[off];
        for (int bit = 0; bit < 8; bit++) {
            memcpy(m, good, size);
            m[off] ^= (unsigned char)(1u << bit);
            fvm_status st = boxindex_validate(m, size, &err);
            if (st == FVM_OK && protected_byte)
                fail_msg("flip of bit %d at offset %lu not detected", bit, (unsigned long)off);
            if (st == FVM_OK)
                undetected++;
            else
                detected++;
            boxindex view;
            if (boxindex_open(&view, m, size, NULL, &err) == FVM_OK) {
                free(dump(&view));
                state_of(&view, "\\??\\C:\\S\\A", NULL);
                hidden(&view, "\\??\\C:\\DIR\\X\\Y");
                children_of(&view, "\\??\\C:\\S");
            }
        }
    }
    print_message("bit flips: %lu detected, %lu in unprotected bytes\n", detected, undetected);
}

/* ---- crash recovery -------------------------------------------------------------------- */

static jmp_buf crash_jump;
static unsigned crash_at, steps_seen, armed_step;

static void crash_hook(void *ctx, unsigned step, const char *what)
{
    steps_seen = step;
    if (strcmp(what, "journal armed") == 0)
        armed_step = step;
    if (step == crash_at)
        longjmp(crash_jump, 1);
}

typedef void (*scenario_fn)(boxindex *idx, int setup);

static void run_ok(fvm_status st, const fvm_error *err) { expect_ok(st, err); }

static void sc_create(boxindex *idx, int setup)
{
    fvm_error err = {0};
    if (!setup)
        run_ok(boxindex_create(idx, K("\\??\\C:\\W\\new"), NULL, &err), &err);
}
static void sc_delete_created(boxindex *idx, int setup)
{
    fvm_error err = {0};
    if (setup)
        run_ok(boxindex_create(idx, K("\\??\\C:\\W\\mine"), NULL, &err), &err);
    else
        run_ok(boxindex_delete(idx, K("\\??\\C:\\W\\mine"), NULL, &err), &err);
}
static void sc_delete_copied(boxindex *idx, int setup)
{
    fvm_error err = {0};
    boxindex_info h = host(0, 4);
    if (setup)
        run_ok(boxindex_copy_up(idx, K("\\??\\C:\\W\\copied"), &h, &err), &err);
    else
        run_ok(boxindex_delete(idx, K("\\??\\C:\\W\\copied"), NULL, &err), &err);
}
static void sc_rename_untouched(boxindex *idx, int setup)
{
    fvm_error err = {0};
    boxindex_info h = host(0, 5);
    if (!setup)
        run_ok(boxindex_rename(idx, K("\\??\\C:\\W\\host"), K("\\??\\C:\\V\\moved"), &h, NULL, &err), &err);
}
static void sc_rename_over_tombstone(boxindex *idx, int setup)
{
    fvm_error err = {0};
    boxindex_info h = host(0, 6);
    if (setup) {
        run_ok(boxindex_create(idx, K("\\??\\C:\\W\\src"), NULL, &err), &err);
        run_ok(boxindex_delete(idx, K("\\??\\C:\\W\\dst"), &h, &err), &err);
    } else {
        run_ok(boxindex_rename(idx, K("\\??\\C:\\W\\src"), K("\\??\\C:\\W\\dst"), NULL, NULL, &err), &err);
    }
}
static void sc_forget(boxindex *idx, int setup)
{
    fvm_error err = {0};
    if (setup)
        run_ok(boxindex_create(idx, K("\\??\\C:\\W\\x\\y"), NULL, &err), &err);
    else
        run_ok(boxindex_forget(idx, K("\\??\\C:\\W\\x\\y"), &err), &err);
}

/* The common start: some entries around the ones a scenario touches, so
 * chains and deletion markers are not trivial. */
static size_t crash_base(boxindex *idx, scenario_fn sc)
{
    fvm_error err = {0};
    char name[64];
    size_t size = boxindex_size_for(24, 20000);
    boxindex_set_step_hook(idx, NULL, NULL);
    fresh(idx, region_a, size, 24);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\W\\n%d", i);
        run_ok(boxindex_create(idx, K(name), NULL, &err), &err);
    }
    run_ok(boxindex_delete(idx, K("\\??\\C:\\W\\n3"), NULL, &err), &err);
    sc(idx, 1);
    return size;
}

static int line_in(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void crash_every_step(scenario_fn sc)
{
    boxindex idx;
    fvm_error err = {0};
    size_t size = crash_base(&idx, sc);
    char *before = dump(&idx);
    crash_at = 0;
    armed_step = 0;
    boxindex_set_step_hook(&idx, crash_hook, NULL);
    sc(&idx, 0);
    unsigned total = steps_seen, armed = armed_step;
    char *after = dump(&idx);
    assert_true(total >= 6 && armed > 0);
    assert_string_not_equal(before, after);

    for (unsigned k = 1; k <= total; k++) {
        crash_base(&idx, sc);
        boxindex_set_step_hook(&idx, crash_hook, NULL);
        crash_at = k;
        if (setjmp(crash_jump) == 0) {
            sc(&idx, 0);
            fail_msg("step %u was not reached", k);
        }
        fake_held = 0;   /* the writer died; its lock passes to the next owner */
        boxindex_set_step_hook(&idx, NULL, NULL);

        /* Readers never wait for recovery: every entry reads as before or
         * after the write (a two-entry write may show one of each). */
        char *unrecovered = dump(&idx);
        for (char *line = unrecovered, *end; *line; line = end + 1) {
            end = strchr(line, '\n');
            *end = 0;
            if (!line_in(before, line) && !line_in(after, line))
                fail_msg("crash at step %u: a reader sees '%s', neither before nor after the write", k, line);
        }
        free(unrecovered);
        fvm_status st = boxindex_validate(region_a, size, &err);
        if (k < armed)
            assert_int_equal(st, FVM_OK);
        else if (k < total)
            expect_status(st, FVM_E_BUSY, &err, "recover first");

        /* A crash during recovery is recovered from too. */
        if (k >= armed && k < total) {
            boxindex_set_step_hook(&idx, crash_hook, NULL);
            crash_at = 2;
            if (setjmp(crash_jump) == 0)
                boxindex_recover(&idx, &err);
            fake_held = 0;
            boxindex_set_step_hook(&idx, NULL, NULL);
        }
        expect_ok(boxindex_recover(&idx, &err), &err);
        assert_valid(region_a, size);
        char *now = dump(&idx);
        if (strcmp(now, k < armed ? before : after) != 0)
            fail_msg("crash at step %u of %u (armed at %u): content is\n%s\nexpected\n%s", k, total, armed, now,
                     k < armed ? before : after);
        free(now);
        /* And the index goes on working. */
        expect_ok(boxindex_create(&idx, K("\\??\\C:\\W\\later"), NULL, &err), &err);
        assert_valid(region_a, size);
        assert_false(fake_held);
    }
    free(before);
    free(after);
}

static void test_crash_at_every_step(void **state)
{
    crash_every_step(sc_create);
    crash_every_step(sc_delete_created);
    crash_every_step(sc_delete_copied);
    crash_every_step(sc_rename_untouched);
    crash_every_step(sc_rename_over_tombstone);
    crash_every_step(sc_forget);
}

/* ---- many processes ---------------------------------------------------------------------- */

#define WRITERS 8
#define OPS_PER_WRITER 3000
#define NAMES 40
#define NAME_LEN 24   /* "\\??\\C:\\Shared\\FileNN.dat" */

typedef struct op_record {
    uint32_t seq;          /* order of the op under the lock */
    uint8_t op, a, b, variant;
    uint32_t seed;
    int32_t status;
} op_record;

typedef struct shared_area {
    pthread_mutex_t mutex;
    uint32_t next_seq;
    volatile int writers_done;
    volatile unsigned paused_step;
    int reader_failures;
    unsigned long reader_lookups, reader_children, reader_found;
    char reader_message[256];
    op_record log[WRITERS][OPS_PER_WRITER];
} shared_area;

typedef struct process_lock {
    shared_area *shared;
    uint32_t seq;
    int owner_died;
} process_lock;

static int robust_lock(void *ctx)
{
    process_lock *pl = ctx;
    int r = pthread_mutex_lock(&pl->shared->mutex);
    if (r == EOWNERDEAD) {
        pthread_mutex_consistent(&pl->shared->mutex);
        pl->owner_died++;
        r = 0;
    }
    if (r != 0)
        return -1;
    pl->seq = pl->shared->next_seq++;
    return 0;
}

static void robust_unlock(void *ctx)
{
    process_lock *pl = ctx;
    pthread_mutex_unlock(&pl->shared->mutex);
}

static void *map_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static shared_area *new_shared_area(void)
{
    shared_area *sh = map_shared(sizeof *sh);
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    assert_int_equal(pthread_mutex_init(&sh->mutex, &attr), 0);
    pthread_mutexattr_destroy(&attr);
    return sh;
}

/* The names all processes fight over, in a folder; variant picks the case
 * the path is spelled in (the key is the same). */
static const boxindex_key *shared_name(unsigned n, unsigned variant)
{
    char s[64];
    snprintf(s, sizeof s, variant & 1 ? "\\??\\C:\\Shared\\File%02u.dat" : "\\??\\C:\\shared\\file%02u.DAT", n);
    return K(s);
}

static fvm_status apply_op(boxindex *idx, const op_record *o, fvm_error *err)
{
    boxindex_info info = host(0, o->seed), other = host(0, o->seed + 1);
    const boxindex_key *a = shared_name(o->a, o->variant);
    switch (o->op) {
    case 0: return boxindex_create(idx, a, (o->variant & 2) ? &info : NULL, err);
    case 1: return boxindex_copy_up(idx, a, &info, err);
    case 2: return boxindex_delete(idx, a, &info, err);
    case 3: return boxindex_rename(idx, a, shared_name(o->b, o->variant >> 1), &info,
                                   (o->variant & 4) ? &other : NULL, err);
    case 4: return boxindex_update(idx, a, (o->variant & 2) ? &info : NULL, err);
    default: return boxindex_forget(idx, a, err);
    }
}

static void random_op(op_record *o, unsigned *rng)
{
    static const uint8_t weights[] = {0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5};
    o->op = weights[rand_r(rng) % sizeof weights];
    o->a = (uint8_t)(rand_r(rng) % NAMES);
    o->b = (uint8_t)(rand_r(rng) % NAMES);
    o->variant = (uint8_t)(rand_r(rng) & 7);
    o->seed = (uint32_t)rand_r(rng) & 0xFFFFFF;
}

static int op_order(const void *a, const void *b)
{
    uint32_t x = ((const op_record *)a)->seq, y = ((const op_record *)b)->seq;
    return x < y ? -1 : x > y;
}

/* A reader's checks: an entry it sees must be one a writer could have
 * written, whole. */
static int entry_is_possible(const boxindex_entry *e, const boxindex_key *asked, char *why, size_t cap)
{
    char expect_prefix[] = "\\??\\C:\\SHARED\\FILE";
    if (asked && (e->len != asked->len || memcmp(e->key, asked->key, asked->len * 2) != 0))
        return snprintf(why, cap, "found another key"), 0;
    if (e->len != NAME_LEN)
        return snprintf(why, cap, "length %lu", (unsigned long)e->len), 0;
    for (size_t i = 0; i < sizeof expect_prefix - 1; i++)
        if (e->key[i] != (unsigned char)expect_prefix[i])
            return snprintf(why, cap, "key unit %lu", (unsigned long)i), 0;
    for (size_t i = 0; i < e->len; i++)
        if (toupper(e->path[i] < 128 ? e->path[i] : 0) != e->key[i])
            return snprintf(why, cap, "path differs from key at %lu", (unsigned long)i), 0;
    if (e->state < BOXINDEX_COPIED || e->state > BOXINDEX_RENAMED)
        return snprintf(why, cap, "state %d", (int)e->state), 0;
    if (e->flags & ~(uint32_t)BOXINDEX_FLAG_HAS_BASE)
        return snprintf(why, cap, "flags %x", (unsigned)e->flags), 0;
    if (e->state == BOXINDEX_CREATED && (e->flags & BOXINDEX_FLAG_HAS_BASE))
        return snprintf(why, cap, "created with a base"), 0;
    if ((e->flags & BOXINDEX_FLAG_HAS_BASE) && !base_is(e, (uint32_t)e->base.size))
        return snprintf(why, cap, "torn base version"), 0;
    if (!(e->flags & BOXINDEX_FLAG_HAS_BASE) && (e->base.size || e->base.mtime))
        return snprintf(why, cap, "base without HAS_BASE"), 0;
    if ((e->state == BOXINDEX_RENAMED) != (e->renamed_to != NULL))
        return snprintf(why, cap, "rename target"), 0;
    if (e->renamed_to && e->renamed_to_len != e->len)
        return snprintf(why, cap, "rename target length"), 0;
    return 1;
}

static void reader_check(shared_area *sh, const char *what, const char *why)
{
    if (sh->reader_failures++ == 0)
        snprintf(sh->reader_message, sizeof sh->reader_message, "%s: %.200s", what, why);
}

static int reader_child_visit(void *ctx, const boxindex_entry *e)
{
    shared_area *sh = ctx;
    char why[128];
    if (!entry_is_possible(e, NULL, why, sizeof why))
        reader_check(sh, "child", why);
    if (e->parent_len != 13)
        reader_check(sh, "child", "parent length");
    sh->reader_children++;
    return 0;
}

/* Looks up names and lists the folder until the writers are done. */
static void reader_process(shared_area *sh, void *mem, size_t size)
{
    boxindex idx;
    fvm_error err = {0};
    unsigned rng = 12345;
    if (boxindex_open(&idx, mem, size, NULL, &err) != FVM_OK) {
        reader_check(sh, "open", err.message);
        _exit(1);
    }
    const boxindex_key *folder = K("\\??\\C:\\SHARED");
    boxindex_key folder_key = *folder;
    static uint16_t folder_units[16];
    memcpy(folder_units, folder->key, folder->len * 2);
    folder_key.key = folder_units;
    while (!sh->writers_done) {
        boxindex_entry e;
        char why[128];
        const boxindex_key *k = shared_name((unsigned)rand_r(&rng) % NAMES, 0);
        boxindex_state s = boxindex_lookup(&idx, k->hash, k->key, k->len, &e);
        sh->reader_lookups++;
        if (s != BOXINDEX_ABSENT) {
            sh->reader_found++;
            if (s != e.state || !entry_is_possible(&e, k, why, sizeof why))
                reader_check(sh, "lookup", why);
        }
        if (boxindex_hidden_by_ancestor(&idx, k->key, k->len, NULL))
            reader_check(sh, "hidden", "a name is hidden by an ancestor nobody deleted");
        if ((sh->reader_lookups & 63) == 0)
            boxindex_children(&idx, folder_key.hash, folder_key.key, folder_key.len, reader_child_visit, sh);
    }
    _exit(0);
}

static void writer_process(shared_area *sh, void *mem, size_t size, unsigned w)
{
    boxindex idx;
    fvm_error err = {0};
    process_lock pl = {sh, 0, 0};
    boxindex_lock lock = {robust_lock, robust_unlock, &pl};
    unsigned rng = 1000u + w * 7919u;
    if (boxindex_open(&idx, mem, size, &lock, &err) != FVM_OK)
        _exit(1);
    for (unsigned i = 0; i < OPS_PER_WRITER; i++) {
        op_record *o = &sh->log[w][i];
        random_op(o, &rng);
        pl.seq = UINT32_MAX;
        o->status = (int32_t)apply_op(&idx, o, &err);
        o->seq = pl.seq;
        if (o->status != FVM_OK && o->status != FVM_E_EXISTS && o->status != FVM_E_NOTFOUND &&
            o->status != FVM_E_INVALID)
            _exit(2);
    }
    _exit(0);
}

static int wait_ok(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_many_processes_match_serial_replay(void **state)
{
    size_t size = boxindex_size_for(256, 24u << 20);
    void *mem = map_shared(size);
    shared_area *sh = new_shared_area();
    boxindex idx, replay;
    fvm_error err = {0};
    expect_ok(boxindex_init(&idx, mem, size, 256, NULL, &err), &err);
    expect_ok(boxindex_create(&idx, K("\\??\\C:\\Shared"), &(boxindex_info){BOXINDEX_FLAG_DIRECTORY}, &err), &err);

    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0)
        reader_process(sh, mem, size);
    pid_t writers[WRITERS];
    for (unsigned w = 0; w < WRITERS; w++) {
        writers[w] = fork();
        assert_true(writers[w] >= 0);
        if (writers[w] == 0)
            writer_process(sh, mem, size, w);
    }
    int writers_ok = 1;
    for (unsigned w = 0; w < WRITERS; w++)
        writers_ok &= wait_ok(writers[w]);
    sh->writers_done = 1;
    int reader_ok = wait_ok(reader);
    assert_true(writers_ok);
    if (sh->reader_failures)
        fail_msg("the reader saw %d impossible entries; first: %s", sh->reader_failures, sh->reader_message);
    assert_true(reader_ok);
    print_message("reader: %lu lookups (%lu found), %lu children seen while %d writers ran %d ops each\n",
                  sh->reader_lookups, sh->reader_found, sh->reader_children, WRITERS, OPS_PER_WRITER);
    assert_true(sh->reader_lookups > 0);
    assert_valid(mem, size);

    /* Replay the logs in lock order on a private index: every status and
     * the final content must be the same. */
    static op_record all[WRITERS * OPS_PER_WRITER];
    memcpy(all, sh->log, sizeof all);
    qsort(all, WRITERS * OPS_PER_WRITER, sizeof all[0], op_order);
    void *private_mem = malloc(size);
    expect_ok(boxindex_init(&replay, private_mem, size, 256, NULL, &err), &err);
    expect_ok(boxindex_create(&replay, K("\\??\\C:\\Shared"), &(boxindex_info){BOXINDEX_FLAG_DIRECTORY}, &err), &err);
    unsigned long outcomes[10] = {0};
    for (size_t i = 0; i < WRITERS * OPS_PER_WRITER; i++) {
        if (all[i].seq != i)
            fail_msg("sequence %lu is %lu: every op takes the lock exactly once", (unsigned long)i,
                     (unsigned long)all[i].seq);
        fvm_status st = apply_op(&replay, &all[i], &err);
        if ((int32_t)st != all[i].status)
            fail_msg("op %lu (kind %d) gave %s in the shared index, %s in the replay: %s", (unsigned long)i,
                     all[i].op, fvm_status_name((fvm_status)all[i].status), fvm_status_name(st), err.message);
        outcomes[st < 10 ? st : 9]++;
    }
    print_message("replayed %d ops: %lu ok, %lu exists, %lu not found\n", WRITERS * OPS_PER_WRITER,
                  outcomes[FVM_OK], outcomes[FVM_E_EXISTS], outcomes[FVM_E_NOTFOUND]);
    expect_ok(boxindex_open(&idx, mem, size, NULL, &err), &err);
    char *shared_dump = dump(&idx), *replay_dump = dump(&replay);
    assert_string_equal(shared_dump, replay_dump);
    free(shared_dump);
    free(replay_dump);
    free(private_mem);
    munmap(mem, size);
    munmap(sh, sizeof *sh);
}

/* A writer is killed with SIGKILL while it holds the lock, at every step of
 * a rename that adds two entries; the next writer gets EOWNERDEAD, the
 * index repairs itself, and validate passes. */
static void paused_hook(void *ctx, unsigned step, const char *what)
{
    shared_area *sh = ctx;
    if (step == crash_at) {
        sh->paused_step = step;
        for (;;)
            pause();
    }
}

static void test_writer_killed_holding_the_lock(void **state)
{
    size_t size = boxindex_size_for(64, 100000);
    void *mem = map_shared(size);
    void *start = malloc(size);
    shared_area *sh = new_shared_area();
    boxindex idx;
    fvm_error err = {0};
    char name[64];
    expect_ok(boxindex_init(&idx, mem, size, 64, NULL, &err), &err);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "\\??\\C:\\K\\f%d", i);
        expect_ok(boxindex_create(&idx, K(name), NULL, &err), &err);
    }
    memcpy(start, mem, size);

    /* Count the steps of the op, and find where the journal is armed. */
    boxindex_info h = host(0, 3);
    crash_at = 0;
    armed_step = 0;
    boxindex_set_step_hook(&idx, crash_hook, NULL);
    expect_ok(boxindex_rename(&idx, K("\\??\\C:\\K\\host"), K("\\??\\C:\\K\\moved"), &h, NULL, &err), &err);
    unsigned total = steps_seen, armed = armed_step;

    for (unsigned k = 1; k <= total; k++) {
        memcpy(mem, start, size);
        sh->paused_step = 0;
        crash_at = k;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            process_lock pl = {sh, 0, 0};
            boxindex_lock lock = {robust_lock, robust_unlock, &pl};
            boxindex child;
            if (boxindex_open(&child, mem, size, &lock, &err) != FVM_OK)
                _exit(1);
            boxindex_set_step_hook(&child, paused_hook, sh);
            boxindex_rename(&child, K("\\??\\C:\\K\\host"), K("\\??\\C:\\K\\moved"), &h, NULL, &err);
            _exit(3);
        }
        for (int wait = 0; sh->paused_step != k; wait++) {
            if (wait > 10000)
                fail_msg("the writer never reached step %u", k);
            usleep(1000);
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        process_lock pl = {sh, 0, 0};
        boxindex_lock lock = {robust_lock, robust_unlock, &pl};
        boxindex next;
        expect_ok(boxindex_open(&next, mem, size, &lock, &err), &err);
        expect_ok(boxindex_create(&next, K("\\??\\C:\\K\\after"), NULL, &err), &err);
        assert_int_equal(pl.owner_died, 1);
        assert_valid(mem, size);
        boxindex_state moved = state_of(&next, "\\??\\C:\\K\\moved", NULL);
        boxindex_state src = state_of(&next, "\\??\\C:\\K\\host", NULL);
        if (k < armed)
            assert_true(moved == BOXINDEX_ABSENT && src == BOXINDEX_ABSENT);
        else
            assert_true(moved == BOXINDEX_CREATED && src == BOXINDEX_RENAMED);
    }
    print_message("killed a writer at each of %u steps (journal armed at step %u)\n", total, armed);
    free(start);
    munmap(mem, size);
    munmap(sh, sizeof *sh);
}

static int reset_lock(void **state)
{
    fake_held = 0;
    fake_taken = 0;
    return 0;
}

static void test_incremental_prefix_hashes(void **state)
{
    static const uint16_t key[] = u"\\??\\C:\\DATA\\SUB\\FILE.TXT";
    size_t len = sizeof key / sizeof key[0] - 1;
    uint64_t h = boxindex_key_hash_start(key, len);
    for (size_t i = 0; i <= len; i++) {
        assert_true(h == boxindex_key_hash(key, i) || i < 7);   /* prefixes shorter than a root are not keys */
        if (i < len)
            h = boxindex_key_hash_extend(h, key + i, 1);
    }
    static const uint16_t unc[] = u"\\??\\UNC\\SRV\\SHARE\\X";
    size_t ulen = sizeof unc / sizeof unc[0] - 1;
    assert_true(boxindex_key_hash_extend(boxindex_key_hash_start(unc, ulen), unc, ulen) ==
                boxindex_key_hash(unc, ulen));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incremental_prefix_hashes),
        cmocka_unit_test_setup(test_key_hash_is_ntpath_hash, reset_lock),
        cmocka_unit_test_setup(test_key_shapes_and_parents, reset_lock),
        cmocka_unit_test_setup(test_copy_up_update_delete_recreate, reset_lock),
        cmocka_unit_test_setup(test_case_insensitive, reset_lock),
        cmocka_unit_test_setup(test_tombstones_hide_what_is_below, reset_lock),
        cmocka_unit_test_setup(test_rename, reset_lock),
        cmocka_unit_test_setup(test_children, reset_lock),
        cmocka_unit_test_setup(test_full_index_is_range, reset_lock),
        cmocka_unit_test_setup(test_markers_do_not_fill_the_table, reset_lock),
        cmocka_unit_test_setup(test_rebuild_into_larger, reset_lock),
        cmocka_unit_test_setup(test_registry_keys, reset_lock),
        cmocka_unit_test_setup(test_validate_catches_corruption, reset_lock),
        cmocka_unit_test_setup(test_every_bit_flip, reset_lock),
        cmocka_unit_test_setup(test_crash_at_every_step, reset_lock),
        cmocka_unit_test_setup(test_many_processes_match_serial_replay, reset_lock),
        cmocka_unit_test_setup(test_writer_killed_holding_the_lock, reset_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
