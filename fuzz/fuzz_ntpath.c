/* fuzz_ntpath.c - libFuzzer target for the NT path module.
 *
 * The input is UTF-16LE. Byte 0 picks the input syntax and the operations;
 * code units U+F000.. expand to path tokens ("\??\", "..", "::$DATA",
 * "GLOBALROOT"...) so the fuzzer reaches deep forms without a dictionary;
 * U+FFFF splits the input into a path and a second string (a relative name
 * for join, a long prefix, a folder for is_within).
 *
 * Besides "never crash", it checks the properties the file virtualizer
 * relies on, and traps when one breaks:
 *  - a canonical drive/UNC path has no ".", "..", empty name, '/', or name
 *    ending in a dot or space, and its root is where it says;
 *  - normalizing a canonical path again gives the same path (one name for
 *    one file), equal and with the same hash;
 *  - to_box output lies within the box root, and from_box gives the host path
 *    back exactly;
 *  - nothing after "\??\C:\" leaves drive C, and a join below a drive or
 *    share folder stays on that drive or share;
 *  - is_within agrees with equality and never holds across kinds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/ntpath.h"

#define CHECK(cond)              \
    do {                         \
        if (!(cond))             \
            __builtin_trap();    \
    } while (0)

static const char *const tokens[] = {
    "\\??\\", "\\\\?\\", "\\\\.\\", "\\Device\\", "\\DosDevices\\", "\\GLOBAL??\\", "HarddiskVolume1",
    "HarddiskVolume2", "UNC\\", "GLOBALROOT", "Global\\", "..", ".", "\\..\\", "::$DATA", ":$DATA",
    "::$INDEX_ALLOCATION", ":$I30:$INDEX_ALLOCATION", "C:", "c:\\", "Z:", "pipe\\", "mailslot\\", "NamedPipe\\",
    "MailSlot\\", "Mup\\", "LanmanRedirector\\", ";LanmanRedirector\\", "NUL", "CON", "COM1", "CONOUT$",
    "PROGRA~1", "~1", "localhost", "C$", "127.0.0.1", "MYPC", "\\\\srv\\share\\", "SystemRoot", "unix",
    "Volume{11111111-2222-3333-4444-555555555555}", "PhysicalDrive0", "FVM\\boxes\\b1", "drive\\C\\", "unc\\",
    ". ", " .", "...", "/", "\\\\", "*", "?", ":s", ":$BITMAP",
};
#define TOKEN_BASE 0xF000u
#define TOKEN_COUNT (sizeof tokens / sizeof tokens[0])
#define SPLIT 0xFFFFu
#define MAX_EXPANDED 40000u

static const ntpath_volume volumes[] = {
    {(const uint16_t *)u"\\Device\\HarddiskVolume1", 23, 'C'},
    {(const uint16_t *)u"\\Device\\HarddiskVolume2", 23, 'Z'},
    {(const uint16_t *)u"\\??\\Volume{11111111-2222-3333-4444-555555555555}", 48, 'D'},
};

static const uint16_t box_root[] = u"\\??\\C:\\FVM\\boxes\\b1";
#define BOX_ROOT_LEN (sizeof box_root / sizeof box_root[0] - 1)

static ntpath path, again, joined, box_path, host, folder;
static uint16_t first[MAX_EXPANDED], second[MAX_EXPANDED];
static uint16_t scratch[NTPATH_MAX_UNITS + NTPATH_STREAM_MAX_UNITS + 8];

static ntpath_context make_context(ntpath_input input)
{
    ntpath_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.input = input;
    ctx.volumes = volumes;
    ctx.volume_count = 3;
    ctx.current_dir.units = (const uint16_t *)u"C:\\Users\\me\\work";
    ctx.current_dir.len = 16;
    ctx.drive_dirs['D' - 'A'].units = (const uint16_t *)u"D:\\data";
    ctx.drive_dirs['D' - 'A'].len = 7;
    ctx.system_root.units = (const uint16_t *)u"C:\\Windows";
    ctx.system_root.len = 10;
    ctx.computer_name.units = (const uint16_t *)u"MYPC";
    ctx.computer_name.len = 4;
    return ctx;
}

/* Decodes bytes into two expanded UTF-16 strings. */
static void decode(const uint8_t *data, size_t size, size_t *first_len, size_t *second_len)
{
    uint16_t *out = first;
    size_t *len = first_len;
    *first_len = *second_len = 0;
    for (size_t i = 0; i + 1 < size; i += 2) {
        uint16_t u = (uint16_t)(data[i] | (data[i + 1] << 8));
        if (u == SPLIT && out == first) {
            out = second;
            len = second_len;
            continue;
        }
        if (u >= TOKEN_BASE && u < TOKEN_BASE + TOKEN_COUNT) {
            const char *t = tokens[u - TOKEN_BASE];
            size_t n = strlen(t);
            if (*len + n > MAX_EXPANDED)
                break;
            for (size_t k = 0; k < n; k++)
                out[(*len)++] = (uint8_t)t[k];
            continue;
        }
        if (*len + 1 > MAX_EXPANDED)
            break;
        out[(*len)++] = u;
    }
}

static int is_file_kind(const ntpath *p)
{
    return p->kind == NTPATH_KIND_DRIVE || p->kind == NTPATH_KIND_UNC;
}

/* The shape every successful result must have. */
static void check_canonical(const ntpath *p)
{
    CHECK(p->kind != NTPATH_KIND_NONE);
    CHECK(p->len >= 1 && p->len <= NTPATH_MAX_UNITS && p->path[p->len] == 0);
    CHECK(p->stream_len <= NTPATH_STREAM_MAX_UNITS && p->stream[p->stream_len] == 0);
    CHECK(p->root_len <= p->len);
    for (size_t i = 0; i < p->len; i++)
        CHECK(p->path[i] != 0);
    for (size_t i = 0; i < p->stream_len; i++)
        CHECK(p->stream[i] != 0 && p->stream[i] != ':' && p->stream[i] != '\\' && p->stream[i] != '/');
    if (!is_file_kind(p)) {
        CHECK(p->stream_len == 0);
        return;
    }
    CHECK(p->path[0] == '\\' && p->path[1] == '?' && p->path[2] == '?' && p->path[3] == '\\');
    CHECK(p->path[p->root_len] == '\\');
    if (p->kind == NTPATH_KIND_DRIVE)
        CHECK(p->root_len == 6 && p->drive >= 'A' && p->drive <= 'Z' && p->path[4] == p->drive && p->path[5] == ':');
    else
        CHECK(p->server_len > 0 && p->share_len > 0 && p->share_offset + p->share_len == p->root_len);
    CHECK(((p->flags & NTPATH_FLAG_ROOT) != 0) == (p->len == p->root_len + 1));
    size_t i = p->root_len + 1;
    while (i < p->len) {
        size_t end = i;
        while (end < p->len && p->path[end] != '\\')
            end++;
        CHECK(end > i);                                            /* no empty name */
        CHECK(!(end - i == 1 && p->path[i] == '.'));               /* no "." */
        CHECK(!(end - i == 2 && p->path[i] == '.' && p->path[i + 1] == '.'));
        CHECK(p->path[end - 1] != '.' && p->path[end - 1] != ' '); /* no trailing dot or space */
        for (size_t k = i; k < end; k++)
            CHECK(p->path[k] != '/' && p->path[k] != ':' && p->path[k] >= 0x20);
        i = end + 1;
    }
    CHECK(p->path[p->len - 1] != '\\' || (p->flags & NTPATH_FLAG_ROOT));
}

static void check_same(const ntpath *a, const ntpath *b)
{
    CHECK(a->kind == b->kind && a->len == b->len && a->stream_len == b->stream_len);
    CHECK(memcmp(a->path, b->path, a->len * sizeof a->path[0]) == 0);
    CHECK(memcmp(a->stream, b->stream, a->stream_len * sizeof a->stream[0]) == 0);
}

/* Canonical text (with ":stream") normalized again as NT gives the same. */
static void check_idempotent(const ntpath *p)
{
    ntpath_context nt = make_context(NTPATH_INPUT_NT);
    size_t n = p->len;
    memcpy(scratch, p->path, n * sizeof scratch[0]);
    if (p->stream_len) {
        scratch[n++] = ':';
        memcpy(scratch + n, p->stream, p->stream_len * sizeof scratch[0]);
        n += p->stream_len;
    }
    if (n > NTPATH_MAX_UNITS)
        return; /* the stream pushed it past the limit: nothing to compare */
    fvm_status st = ntpath_normalize(scratch, n, &nt, &again, NULL);
    CHECK(st == FVM_OK);
    check_same(p, &again);
    CHECK(ntpath_equal(p, &again) && ntpath_hash(p) == ntpath_hash(&again));
}

/* Host -> box -> host, and the box path stays in the box. */
static void check_box_round_trip(const ntpath *p, const ntpath_context *ctx)
{
    size_t n = 0;
    fvm_status st = ntpath_to_box(p, box_root, BOX_ROOT_LEN, scratch, sizeof scratch / sizeof scratch[0], &n, NULL);
    if (!is_file_kind(p)) {
        CHECK(st == FVM_E_UNSUPPORTED);
        return;
    }
    if (st != FVM_OK) {
        CHECK(st == FVM_E_RANGE);
        return;
    }
    CHECK(n <= NTPATH_MAX_UNITS && scratch[n] == 0);
    ntpath_context nt = make_context(NTPATH_INPUT_NT);
    CHECK(ntpath_normalize(box_root, BOX_ROOT_LEN, &nt, &folder, NULL) == FVM_OK);
    CHECK(ntpath_normalize(scratch, n, &nt, &box_path, NULL) == FVM_OK);
    CHECK(ntpath_is_within(&box_path, &folder));
    CHECK(ntpath_from_box(&box_path, box_root, BOX_ROOT_LEN, &host, NULL) == FVM_OK);
    check_same(p, &host);
    (void)ctx;
}

static void check_join(const ntpath *dir, const uint16_t *rel, size_t rel_len, const ntpath_context *ctx)
{
    if (ntpath_join(dir, rel, rel_len, ctx, &joined, NULL) != FVM_OK) {
        CHECK(joined.kind == NTPATH_KIND_NONE);
        return;
    }
    check_canonical(&joined);
    if (dir->kind == NTPATH_KIND_DRIVE && joined.kind == NTPATH_KIND_DRIVE)
        CHECK(joined.drive == dir->drive);
    if (dir->kind == NTPATH_KIND_DRIVE || dir->kind == NTPATH_KIND_UNC) {
        /* Below a drive or share folder nothing leaves that root. */
        CHECK(joined.kind == dir->kind);
        CHECK(joined.root_len == dir->root_len && memcmp(joined.path, dir->path, dir->root_len * 2) == 0);
    }
    check_idempotent(&joined);
    if (rel_len > 0 && rel[0] == '\\')
        __builtin_trap(); /* must have been refused */
}

static void check_within(const ntpath *a, const ntpath *b)
{
    int ab = ntpath_is_within(a, b), ba = ntpath_is_within(b, a);
    if (ab)
        CHECK(a->kind == b->kind && is_file_kind(a) && a->len >= b->len && b->stream_len == 0);
    if (ab && ba && a->stream_len == 0)
        CHECK(ntpath_equal(a, b));
    if (ntpath_equal(a, b) && is_file_kind(a) && a->stream_len == 0)
        CHECK(ab && ba);
    if (is_file_kind(a) && a->stream_len == 0)
        CHECK(ntpath_is_within(a, a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t first_len, second_len;
    decode(data + 1, size - 1, &first_len, &second_len);
    ntpath_context ctx = make_context((ntpath_input)(mode % 3));

    fvm_error err;
    fvm_status st = ntpath_normalize(first, first_len, &ctx, &path, &err);
    if (st != FVM_OK) {
        CHECK(path.kind == NTPATH_KIND_NONE);
        CHECK(memchr(err.message, 0, sizeof err.message) != NULL);
        return 0;
    }
    check_canonical(&path);
    check_idempotent(&path);
    /* Nothing after "\??\X:\" or "\\?\X:\" leaves drive X. */
    int verbatim_prefix = first[1] == '\\' && ctx.input != NTPATH_INPUT_NT; /* "\\?\" is NT-invalid junk in NT input */
    if (first_len >= 7 && first[0] == '\\' && (first[1] == '?' || verbatim_prefix) && first[2] == '?' &&
        first[3] == '\\' && first[5] == ':' && first[6] == '\\' &&
        ((first[4] >= 'A' && first[4] <= 'Z') || (first[4] >= 'a' && first[4] <= 'z')))
        CHECK(path.kind == NTPATH_KIND_DRIVE && path.drive == (first[4] & ~0x20));
    check_box_round_trip(&path, &ctx);

    uint16_t key[64];
    size_t key_len;
    if (ntpath_key(&path, key, 64, &key_len, NULL) == FVM_OK)
        CHECK(key_len == path.len + (path.stream_len ? 1 + path.stream_len : 0));

    if (mode & 0x10)
        check_join(&path, second, second_len, &ctx);
    if ((mode & 0x20) && is_file_kind(&path)) {
        /* Replace a prefix ending at some name boundary with the second string. */
        size_t cut = path.root_len + 1 + (second_len ? second[0] : 0) % (path.len - path.root_len);
        while (cut < path.len && path.path[cut] != '\\')
            cut++;
        if (ntpath_replace_prefix(&path, cut, second, second_len, &ctx, &joined, NULL) == FVM_OK) {
            check_canonical(&joined);
            check_idempotent(&joined);
        }
    }
    if (mode & 0x40) {
        if (ntpath_normalize(second, second_len, &ctx, &folder, NULL) == FVM_OK) {
            check_within(&path, &folder);
            check_within(&folder, &path);
        }
    }
    return 0;
}
