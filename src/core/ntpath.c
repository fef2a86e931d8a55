/* ntpath.c - see ntpath.h for the rules; this file says why at each place.
 *
 * The idea: parsing is a small dispatcher that recognizes the root of a path
 * (a drive, a share, a pipe file system, a device, an object directory),
 * writes its canonical spelling into out->path, and then appends the
 * remaining names one at a time. Appending a ".." pops the last name but
 * never the root, so no spelling can climb out of the root it started in.
 * Relative paths start by parsing the current directory into the same buffer.
 * Nothing is allocated; the only scratch space is out->path itself.
 *
 * Only memcpy/memset and fvm_error_set are used: this file is also compiled
 * into the CRT-free runtime DLL.
 *
 * The names after the root are appended by ntpath_names.c; the parsing
 * state and the per-unit helpers both files use are in ntpath_internal.h. */
#include "core/ntpath_internal.h"

/* The file reads top-down: the public functions first, then what they call,
 * down to errors and upper-casing at the end. */
static fvm_status join_stream(parse *p);
static fvm_status join_names(parse *p);
static fvm_status join_below_object_directory(parse *p, int *handled);
static int path_is_ascii(const ntpath *path, const char *lit);
static void copy_path(ntpath *dst, const ntpath *src);
static int is_file_kind(ntpath_kind kind);
static fvm_status check_box_root(const uint16_t *root, size_t n, fvm_error *err);
static int is_root_name_char(uint16_t c);
static int starts_with_folder(const uint16_t *table, const uint16_t *path, size_t path_len, const uint16_t *prefix,
                              size_t n);
static int compare_folded(const uint16_t *table, const uint16_t *a, size_t an, const uint16_t *b, size_t bn);
static uint64_t hash_units(uint64_t h, const uint16_t *table, const uint16_t *s, size_t n);
static fvm_status parse_source(parse *p);
static fvm_status check_input(parse *p);
static fvm_status finish(parse *p);
static void describe_names(ntpath *out);
static int looks_like_short_name(const uint16_t *s, size_t n);
static fvm_status dispatch_form(parse *p);
static int starts_like_nt(const uint16_t *s, size_t n);
static fvm_status win32_drive_absolute(parse *p);
static fvm_status win32_drive_relative(parse *p);
static fvm_status win32_rooted(parse *p);
static fvm_status win32_relative(parse *p);
static fvm_status need_current_dir(parse *p, const char *form);
static fvm_status win32_unc(parse *p);
static fvm_status become_dos_device(parse *p, size_t at, size_t len);
static fvm_status dispatch_object_root(parse *p, size_t pos, syntax syn);
static fvm_status dispatch_dos_namespace(parse *p, size_t pos, syntax syn);
static fvm_status dispatch_device(parse *p, size_t pos, syntax syn);
static fvm_status system_root(parse *p, size_t pos, syntax syn);
static fvm_status parse_base(parse *p, ntpath_string base, const char *what);
static fvm_status drive_root(parse *p, uint16_t letter, size_t pos, syntax syn, int volume_if_bare);
static fvm_status set_drive_root(parse *p, uint16_t letter, size_t at);
static fvm_status unc_after_prefix(parse *p, size_t pos, syntax syn, int skip_redirector_parts);
static fvm_status unc_root(parse *p, size_t server_at, size_t server_len, size_t share_at, size_t share_len,
                           size_t pos, syntax syn);
static fvm_status check_root_name(parse *p, size_t at, size_t *len, const char *what);
static int is_loopback_server(const parse *p, const uint16_t *s, size_t n);
static uint16_t volume_drive(const parse *p, const uint16_t *name, size_t n, int in_dos_namespace);
static fvm_status pipe_root(parse *p, ntpath_kind kind, size_t pos, syntax syn);
static fvm_status object_root(parse *p, ntpath_kind kind, const char *prefix, size_t name_at, size_t name_len,
                              int upper, size_t pos, syntax syn);
static uint16_t builtin_upcase(uint16_t c);

/* ---- public: normalize, join, replace_prefix ----------------------------- */

fvm_status ntpath_normalize(const uint16_t *path, size_t len, const ntpath_context *ctx, ntpath *out, fvm_error *err)
{
    if (!out)
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_normalize: no output given");
    if (!ctx)
        ctx = &no_context;
    parse p = {out, ctx, err, path, len, "path", ctx->input, 0, 0};
    return parse_source(&p);
}

fvm_status ntpath_join(const ntpath *dir, const uint16_t *rel, size_t len, const ntpath_context *ctx, ntpath *out,
                       fvm_error *err)
{
    if (!dir || !out)
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_join: no directory or output given");
    if (!ctx)
        ctx = &no_context;
    parse p = {out, ctx, err, rel, len, "relative name", NTPATH_INPUT_NT, 0, 0};
    fvm_status st = FVM_OK;
    if (dir->kind == NTPATH_KIND_NONE)
        st = fvm_error_set(err, FVM_E_INVALID, "ntpath_join: the directory path is not filled");
    else if (len == 0) /* NT: an empty name opens the directory itself */
        copy_path(out, dir);
    else if (dir->stream_len > 0)
        st = fvm_error_set(err, FVM_E_INVALID, "ntpath_join: the directory handle is a stream, not a directory");
    else if ((st = check_input(&p)) != FVM_OK)
        ;
    else if (rel[0] == '\\')
        st = fail_at(&p, FVM_E_INVALID, 0, len,
                     "a name relative to a directory handle must not start with a backslash (NT returns "
                     "STATUS_INVALID_PARAMETER):");
    else {
        copy_path(out, dir);
        out->flags &= ~(uint32_t)(NTPATH_FLAG_DEFAULT_STREAM | NTPATH_FLAG_DIRECTORY_INDEX);
        st = rel[0] == ':' ? join_stream(&p) : join_names(&p);
        if (st == FVM_OK)
            st = finish(&p);
    }
    if (st != FVM_OK)
        out->kind = NTPATH_KIND_NONE;
    return st;
}

/* ":stream" relative to a handle open on a file. */
static fvm_status join_stream(parse *p)
{
    ntpath *out = p->out;
    if (!is_file_kind(out->kind) || (out->flags & NTPATH_FLAG_ROOT))
        return fail_at(p, FVM_E_INVALID, 0, p->n, "a stream relative to something that is not a file:");
    size_t slash = find_unit(p->s, p->n, '\\');
    if (slash < p->n)
        return fail_at(p, FVM_E_INVALID, slash, p->n - slash, "a stream name cannot go on into a folder:");
    return parse_stream(p, 1, p->n - 1, 1, 0);
}

/* Names relative to a directory handle, by the kind of the directory. */
static fvm_status join_names(parse *p)
{
    ntpath *out = p->out;
    if (out->kind == NTPATH_KIND_OTHER_NT || out->kind == NTPATH_KIND_DEVICE) {
        int handled = 0;
        fvm_status st = join_below_object_directory(p, &handled);
        if (handled || st != FVM_OK)
            return st;
    }
    if (out->kind == NTPATH_KIND_DEVICE && (out->flags & NTPATH_FLAG_RAW_STORAGE))
        /* As "\??\PhysicalDrive0\x" itself: storage we cannot map. */
        return fvm_error_set(p->err, FVM_E_NOTFOUND,
                             "a name below a raw disk handle is storage the volume table does not map (%s)", p->what);
    if (out->kind == NTPATH_KIND_VOLUME) { /* relative to a volume handle: its root folder */
        out->kind = NTPATH_KIND_DRIVE;
        out->flags &= ~(uint32_t)NTPATH_FLAG_RAW_STORAGE;
    }
    reopen_for_append(out);
    if (is_file_kind(out->kind))
        return append_names(p, 0, RULE_FILE);
    if (out->kind == NTPATH_KIND_PIPE || out->kind == NTPATH_KIND_MAILSLOT)
        return append_verbatim(p, 0, 1);
    return append_names(p, 0, 0);
}

/* A name relative to an object directory is parsed as if it followed the
 * directory's name: "\??" + "C:\x" is the drive path C:\x, since the object
 * manager resolves the C: link below \??. Canonical directory names make the
 * few such directories easy to recognize. */
static fvm_status join_below_object_directory(parse *p, int *handled)
{
    ntpath *out = p->out;
    *handled = 1;
    if (path_is_ascii(out, "\\")) {
        reset_output(out, p->ctx);
        return dispatch_object_root(p, 0, SYNTAX_NT);
    }
    if (path_is_ascii(out, "\\??")) {
        reset_output(out, p->ctx);
        return dispatch_dos_namespace(p, 0, SYNTAX_NT);
    }
    if (path_is_ascii(out, "\\Device")) {
        reset_output(out, p->ctx);
        return dispatch_device(p, 0, SYNTAX_NT);
    }
    if (path_is_ascii(out, "\\Device\\Mup") || path_is_ascii(out, "\\Device\\LanmanRedirector")) {
        reset_output(out, p->ctx);
        return unc_after_prefix(p, 0, SYNTAX_NT, 1);
    }
    *handled = 0;
    return FVM_OK;
}

static int path_is_ascii(const ntpath *path, const char *lit)
{
    return equals_ascii(path->path, path->len, lit);
}

static void copy_path(ntpath *dst, const ntpath *src)
{
    if (dst == src)
        return;
    dst->kind = src->kind;
    dst->flags = src->flags;
    dst->drive = src->drive;
    dst->len = src->len;
    dst->root_len = src->root_len;
    dst->server_offset = src->server_offset;
    dst->server_len = src->server_len;
    dst->share_offset = src->share_offset;
    dst->share_len = src->share_len;
    dst->name_offset = src->name_offset;
    dst->short_name_end = src->short_name_end;
    dst->stream_len = src->stream_len;
    dst->upcase_table = src->upcase_table;
    memcpy(dst->path, src->path, (src->len + 1) * sizeof src->path[0]);
    memcpy(dst->stream, src->stream, (src->stream_len + 1) * sizeof src->stream[0]);
}

fvm_status ntpath_replace_prefix(const ntpath *path, size_t prefix_len, const uint16_t *long_prefix, size_t long_len,
                                 const ntpath_context *ctx, ntpath *out, fvm_error *err)
{
    if (!path || !out || out == path)
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_replace_prefix: the output must be a different path");
    if (!is_file_kind(path->kind))
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_replace_prefix: only drive and UNC paths have prefixes to expand");
    if (prefix_len < path->root_len || prefix_len > path->len ||
        (prefix_len < path->len && path->path[prefix_len] != '\\'))
        return fvm_error_set(err, FVM_E_INVALID,
                             "ntpath_replace_prefix: offset %lu is not the end of a name (root ends at %lu, path at %lu)",
                             (unsigned long)prefix_len, (unsigned long)path->root_len, (unsigned long)path->len);
    if (!ctx)
        ctx = &no_context;
    parse p = {out, ctx, err, long_prefix, long_len, "long prefix", NTPATH_INPUT_ANY, 0, 0};
    fvm_status st = parse_source(&p);
    if (st != FVM_OK)
        return st;
    if (!is_file_kind(out->kind) || out->stream_len > 0) {
        out->kind = NTPATH_KIND_NONE;
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_replace_prefix: the long prefix is not a folder or file path");
    }
    reopen_for_append(out);
    out->flags &= ~(uint32_t)(NTPATH_FLAG_DEFAULT_STREAM | NTPATH_FLAG_DIRECTORY_INDEX);
    out->flags |= path->flags & ~(uint32_t)(NTPATH_FLAG_ROOT | NTPATH_FLAG_SHORT_NAME | NTPATH_FLAG_WILDCARDS);
    p.s = path->path;
    p.n = path->len;
    p.what = "path";
    st = append_names(&p, prefix_len, RULE_FILE);
    if (st == FVM_OK) {
        memcpy(out->stream, path->stream, (path->stream_len + 1) * sizeof path->stream[0]);
        out->stream_len = path->stream_len;
        st = finish(&p);
    }
    if (st != FVM_OK)
        out->kind = NTPATH_KIND_NONE;
    return st;
}

static int is_file_kind(ntpath_kind kind)
{
    return kind == NTPATH_KIND_DRIVE || kind == NTPATH_KIND_UNC;
}

/* ---- host <-> box -------------------------------------------------------- */

fvm_status ntpath_to_box(const ntpath *host, const uint16_t *box_root_nt, size_t box_root_len, uint16_t *out,
                         size_t cap, size_t *out_len, fvm_error *err)
{
    fvm_status st = check_box_root(box_root_nt, box_root_len, err);
    if (st != FVM_OK)
        return st;
    if (!host || !is_file_kind(host->kind))
        return fvm_error_set(err, FVM_E_UNSUPPORTED, "only drive and UNC paths have a place in the box (this is a %s)",
                             host ? ntpath_kind_name(host->kind) : "missing path");
    /* The part that names the host root inside the box, then the names
     * below the root (nothing for the root itself). */
    uint16_t drive_part[9] = {'\\', 'd', 'r', 'i', 'v', 'e', '\\', host->drive, 0};
    size_t tail_at = host->root_len, tail_len = (host->flags & NTPATH_FLAG_ROOT) ? 0 : host->len - host->root_len;
    size_t root_part_len = host->kind == NTPATH_KIND_DRIVE ? 8 : 5 + host->server_len + 1 + host->share_len;
    size_t total = box_root_len + root_part_len + tail_len + (host->stream_len ? 1 + host->stream_len : 0);
    if (total > NTPATH_MAX_UNITS || !out || total + 1 > cap)
        return fvm_error_set(err, FVM_E_RANGE, "the box path would be %lu units long (limit %lu, buffer %lu)",
                             (unsigned long)total, (unsigned long)NTPATH_MAX_UNITS,
                             (unsigned long)(cap ? cap - 1 : 0));
    size_t o = 0;
    memcpy(out, box_root_nt, box_root_len * sizeof *out);
    o += box_root_len;
    if (host->kind == NTPATH_KIND_DRIVE) {
        memcpy(out + o, drive_part, 8 * sizeof *out);
        o += 8;
    } else {
        static const uint16_t unc_part[5] = {'\\', 'u', 'n', 'c', '\\'};
        memcpy(out + o, unc_part, sizeof unc_part);
        o += 5;
        memcpy(out + o, host->path + host->server_offset, host->server_len * sizeof *out);
        o += host->server_len;
        out[o++] = '\\';
        memcpy(out + o, host->path + host->share_offset, host->share_len * sizeof *out);
        o += host->share_len;
    }
    memcpy(out + o, host->path + tail_at, tail_len * sizeof *out);
    o += tail_len;
    if (host->stream_len) {
        out[o++] = ':';
        memcpy(out + o, host->stream, host->stream_len * sizeof *out);
        o += host->stream_len;
    }
    out[o] = 0;
    if (out_len)
        *out_len = o;
    return FVM_OK;
}

fvm_status ntpath_from_box(const ntpath *boxed, const uint16_t *box_root_nt, size_t box_root_len, ntpath *host,
                           fvm_error *err)
{
    fvm_status st = check_box_root(box_root_nt, box_root_len, err);
    if (st != FVM_OK)
        return st;
    if (!boxed || !host || boxed == host)
        return fvm_error_set(err, FVM_E_INVALID, "ntpath_from_box: the host path must be a different ntpath");
    if (!is_file_kind(boxed->kind) ||
        !starts_with_folder(boxed->upcase_table, boxed->path, boxed->len, box_root_nt, box_root_len))
        return fvm_error_set(err, FVM_E_NOTFOUND, "the path is not inside the box root");
    ntpath_context ctx_upcase;
    memset(&ctx_upcase, 0, sizeof ctx_upcase);
    ctx_upcase.upcase_table = boxed->upcase_table;
    parse p = {host, &ctx_upcase, err, boxed->path, boxed->len, "boxed path", NTPATH_INPUT_NT, 0, 0};
    reset_output(host, &ctx_upcase);
    const uint16_t *s = boxed->path;
    size_t pos = box_root_len, n = boxed->len;
    /* "\drive\X" */
    if (n >= pos + 8 && equals_ascii(s + pos, 7, "\\drive\\") && is_ascii_letter(s[pos + 7]) &&
        (n == pos + 8 || s[pos + 8] == '\\')) {
        st = drive_root(&p, s[pos + 7], pos + 8, SYNTAX_NT, 0);
    } else if (n > pos + 5 && equals_ascii(s + pos, 5, "\\unc\\")) {
        size_t server_at = pos + 5, server_end = server_at;
        while (server_end < n && s[server_end] != '\\')
            server_end++;
        size_t share_at = server_end + 1, share_end = share_at;
        while (share_end < n && s[share_end] != '\\')
            share_end++;
        if (server_end == server_at || share_at >= n || share_end == share_at)
            return fvm_error_set(err, FVM_E_NOTFOUND, "the box path has no server and share after \\unc");
        st = unc_root(&p, server_at, server_end - server_at, share_at, share_end - share_at, share_end, SYNTAX_NT);
    } else {
        return fvm_error_set(err, FVM_E_NOTFOUND, "the path is in the box but not below \\drive\\X or \\unc\\server\\share");
    }
    if (st == FVM_OK && !is_file_kind(host->kind))
        st = fvm_error_set(err, FVM_E_NOTFOUND, "the box path maps to a host %s, not a file", ntpath_kind_name(host->kind));
    if (st == FVM_OK) {
        memcpy(host->stream, boxed->stream, (boxed->stream_len + 1) * sizeof boxed->stream[0]);
        host->stream_len = boxed->stream_len;
        host->flags |= boxed->flags & (NTPATH_FLAG_STREAM | NTPATH_FLAG_DEFAULT_STREAM | NTPATH_FLAG_DIRECTORY_INDEX |
                                       NTPATH_FLAG_TRAILING_SEPARATOR);
        st = finish(&p);
    }
    if (st != FVM_OK)
        host->kind = NTPATH_KIND_NONE;
    return st;
}

/* The box root must already be canonical (as ntpath_normalize writes it,
 * without a trailing backslash, not a drive or share root): checked here
 * without a scratch ntpath so the runtime can call this on a small stack. */
static fvm_status check_box_root(const uint16_t *root, size_t n, fvm_error *err)
{
    size_t pos;
    if (!root || n < 8 || n > NTPATH_MAX_UNITS || root[0] != '\\' || root[1] != '?' || root[2] != '?' || root[3] != '\\')
        return fvm_error_set(err, FVM_E_INVALID, "box root must be a canonical NT path starting with \\??\\ (length %lu)",
                             (unsigned long)n);
    if (is_ascii_letter(root[4]) && root[5] == ':' && root[6] == '\\') {
        pos = 7;
    } else if (n > 8 && equals_ascii(root + 4, 3, "UNC") && root[7] == '\\') {
        pos = 8;
        for (int part = 0; part < 2; part++) {
            size_t start = pos;
            while (pos < n && root[pos] != '\\')
                pos++;
            if (pos == start || pos == n)
                return fvm_error_set(err, FVM_E_INVALID, "box root: UNC server or share missing at offset %lu",
                                     (unsigned long)start);
            pos++;
        }
    } else {
        return fvm_error_set(err, FVM_E_INVALID, "box root must be on a drive (\\??\\C:\\...) or share (\\??\\UNC\\...)");
    }
    if (pos >= n)
        return fvm_error_set(err, FVM_E_INVALID, "box root must be a folder below the drive or share root");
    while (pos < n) {
        size_t start = pos;
        while (pos < n && root[pos] != '\\') {
            if (!is_root_name_char(root[pos]))
                return fvm_error_set(err, FVM_E_INVALID, "box root: character U+%04X at offset %lu is not canonical",
                                     (unsigned)root[pos], (unsigned long)pos);
            pos++;
        }
        if (pos == start || is_dot(root + start, pos - start) || is_dot_dot(root + start, pos - start) ||
            root[pos - 1] == '.' || root[pos - 1] == ' ')
            return fvm_error_set(err, FVM_E_INVALID, "box root: the name at offset %lu is not canonical",
                                 (unsigned long)start);
        if (pos < n && pos + 1 == n)
            return fvm_error_set(err, FVM_E_INVALID, "box root must not end with a backslash");
        pos++;
    }
    return FVM_OK;
}

static int is_root_name_char(uint16_t c)
{
    return c >= 0x20 && c != '<' && c != '>' && c != '"' && c != '|' && c != '/' && c != ':' && c != '*' && c != '?' &&
           c != '\\';
}

/* Case-insensitive: does path start with the folder prefix[0..n), ending on
 * a name boundary? */
static int starts_with_folder(const uint16_t *table, const uint16_t *path, size_t path_len, const uint16_t *prefix,
                              size_t n)
{
    if (n > path_len || !equals_folded(table, path, n, prefix, n))
        return 0;
    return n == path_len || path[n] == '\\' || (n > 0 && prefix[n - 1] == '\\');
}

/* ---- comparison ---------------------------------------------------------- */

int ntpath_is_within(const ntpath *path, const ntpath *folder)
{
    if (!path || !folder || !is_file_kind(path->kind) || path->kind != folder->kind || folder->stream_len > 0)
        return 0;
    return starts_with_folder(folder->upcase_table, path->path, path->len, folder->path, folder->len);
}

int ntpath_compare(const ntpath *a, const ntpath *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = compare_folded(a->upcase_table, a->path, a->len, b->path, b->len);
    return c ? c : compare_folded(a->upcase_table, a->stream, a->stream_len, b->stream, b->stream_len);
}

int ntpath_equal(const ntpath *a, const ntpath *b)
{
    return ntpath_compare(a, b) == 0;
}

static int compare_folded(const uint16_t *table, const uint16_t *a, size_t an, const uint16_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++) {
        uint16_t x = ntpath_upcase(table, a[i]), y = ntpath_upcase(table, b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return an == bn ? 0 : (an < bn ? -1 : 1);
}

uint64_t ntpath_hash(const ntpath *path)
{
    uint64_t h = 0xCBF29CE484222325ull;
    h = (h ^ (uint64_t)path->kind) * 0x100000001B3ull;
    h = hash_units(h, path->upcase_table, path->path, path->len);
    if (path->stream_len) {
        static const uint16_t colon = ':';
        h = hash_units(h, NULL, &colon, 1);
        h = hash_units(h, path->upcase_table, path->stream, path->stream_len);
    }
    return h;
}

static uint64_t hash_units(uint64_t h, const uint16_t *table, const uint16_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t c = ntpath_upcase(table, s[i]);
        h = (h ^ (c & 0xFF)) * 0x100000001B3ull;
        h = (h ^ (c >> 8)) * 0x100000001B3ull;
    }
    return h;
}

fvm_status ntpath_key(const ntpath *path, uint16_t *out, size_t cap, size_t *out_len, fvm_error *err)
{
    size_t total = path->len + (path->stream_len ? 1 + path->stream_len : 0);
    if (!out || total + 1 > cap)
        return fvm_error_set(err, FVM_E_RANGE, "the key needs %lu units and a NUL, the buffer holds %lu",
                             (unsigned long)total, (unsigned long)cap);
    size_t o = 0;
    for (size_t i = 0; i < path->len; i++)
        out[o++] = ntpath_upcase(path->upcase_table, path->path[i]);
    if (path->stream_len) {
        out[o++] = ':';
        for (size_t i = 0; i < path->stream_len; i++)
            out[o++] = ntpath_upcase(path->upcase_table, path->stream[i]);
    }
    out[o] = 0;
    if (out_len)
        *out_len = o;
    return FVM_OK;
}

const char *ntpath_kind_name(ntpath_kind kind)
{
    switch (kind) {
    case NTPATH_KIND_NONE: return "none";
    case NTPATH_KIND_DRIVE: return "drive path";
    case NTPATH_KIND_UNC: return "UNC path";
    case NTPATH_KIND_VOLUME: return "volume";
    case NTPATH_KIND_DEVICE: return "device";
    case NTPATH_KIND_PIPE: return "named pipe";
    case NTPATH_KIND_MAILSLOT: return "mailslot";
    case NTPATH_KIND_OTHER_NT: return "NT object";
    }
    return "unknown";
}

/* ---- parsing a whole string ---------------------------------------------- */

static fvm_status parse_source(parse *p)
{
    reset_output(p->out, p->ctx);
    fvm_status st = check_input(p);
    if (st == FVM_OK)
        st = dispatch_form(p);
    if (st == FVM_OK)
        st = finish(p);
    if (st != FVM_OK) {
        p->out->kind = NTPATH_KIND_NONE;
        p->out->len = 0;
        p->out->path[0] = 0;
    }
    return st;
}

static fvm_status check_input(parse *p)
{
    if (!p->s && p->n > 0)
        return fvm_error_set(p->err, FVM_E_INVALID, "the %s is a NULL pointer", p->what);
    if (p->n == 0)
        return fvm_error_set(p->err, FVM_E_INVALID, "the %s is empty", p->what);
    if (p->n > NTPATH_MAX_UNITS)
        return fvm_error_set(p->err, FVM_E_RANGE,
                             "the %s is %lu units long, more than the %lu an NT path can hold (the excess starts at offset %lu)",
                             p->what, (unsigned long)p->n, (unsigned long)NTPATH_MAX_UNITS,
                             (unsigned long)NTPATH_MAX_UNITS);
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i] == 0)
            return fvm_error_set(p->err, FVM_E_INVALID, "embedded NUL at offset %lu of the %s", (unsigned long)i, p->what);
    return FVM_OK;
}

static fvm_status finish(parse *p)
{
    ntpath *out = p->out;
    fvm_status st = FVM_OK;
    switch (out->kind) {
    case NTPATH_KIND_DRIVE:
    case NTPATH_KIND_UNC:
    case NTPATH_KIND_PIPE:
    case NTPATH_KIND_MAILSLOT:
        /* A root folder is spelled with its separator ("\??\C:\"); nothing
         * else ends with one, so the flag keeps the caller's intent. */
        if (out->len == out->root_len)
            st = emit_unit(p, '\\', p->n);
        if (st == FVM_OK && out->len == out->root_len + 1) {
            out->flags |= NTPATH_FLAG_ROOT;
            out->flags &= ~(uint32_t)NTPATH_FLAG_TRAILING_SEPARATOR;
            /* A root folder has no data stream ("\??\C:\:s" names nothing). */
            if (out->stream_len > 0)
                st = fvm_error_set(p->err, FVM_E_INVALID, "a stream on the root folder (the %s names no file)",
                                   p->what);
        }
        break;
    case NTPATH_KIND_OTHER_NT:
        if (out->len == 0) {
            st = emit_unit(p, '\\', p->n);
            out->flags |= NTPATH_FLAG_ROOT;
        }
        break;
    default:
        break;
    }
    if (st != FVM_OK)
        return st;
    out->path[out->len] = 0;
    describe_names(out);
    return FVM_OK;
}

static void describe_names(ntpath *out)
{
    out->name_offset = out->len;
    out->short_name_end = 0;
    out->flags &= ~(uint32_t)NTPATH_FLAG_SHORT_NAME;
    if (out->kind != NTPATH_KIND_DRIVE && out->kind != NTPATH_KIND_UNC) {
        out->name_offset = out->root_len < out->len ? out->root_len : out->len;
        return;
    }
    size_t i = out->root_len + 1;
    while (i < out->len) {
        size_t end = i;
        while (end < out->len && out->path[end] != '\\')
            end++;
        out->name_offset = i;
        if (looks_like_short_name(out->path + i, end - i)) {
            out->short_name_end = end;
            out->flags |= NTPATH_FLAG_SHORT_NAME;
        }
        i = end + 1;
    }
}

/* An 8.3 alias as Windows generates them: up to 8 units, '~' and a digit in
 * the base, an optional extension of up to 3 units. */
static int looks_like_short_name(const uint16_t *s, size_t n)
{
    if (n < 3 || n > 12)
        return 0;
    size_t dot = find_unit(s, n, '.');
    if (dot > 8)
        return 0;
    if (dot < n && (n - dot - 1 > 3 || find_unit(s + dot + 1, n - dot - 1, '.') < n - dot - 1))
        return 0;
    for (size_t i = 0; i + 1 < dot; i++)
        if (s[i] == '~' && is_ascii_digit(s[i + 1]))
            return 1;
    return 0;
}

/* ---- Win32 forms --------------------------------------------------------- */

static fvm_status dispatch_form(parse *p)
{
    const uint16_t *s = p->s;
    size_t n = p->n;
    if (n >= 4 && s[0] == '\\' && s[1] == '?' && s[2] == '?' && s[3] == '\\')
        return dispatch_dos_namespace(p, 4, SYNTAX_NT);
    if (p->input == NTPATH_INPUT_NT) {
        if (s[0] != '\\')
            return fail_at(p, FVM_E_INVALID, 0, n,
                           "an NT name starts with '\\' (relative names need a directory handle: ntpath_join):");
        return dispatch_object_root(p, 0, SYNTAX_NT);
    }
    if (n >= 4 && s[0] == '\\' && s[1] == '\\' && s[2] == '?' && s[3] == '\\') {
        /* \\?\ hands the rest to NT unchanged: NT rules for the names. */
        p->out->flags |= NTPATH_FLAG_WIN32_INPUT | NTPATH_FLAG_VERBATIM;
        return dispatch_dos_namespace(p, 4, SYNTAX_NT);
    }
    if (n >= 2 && is_separator(s[0], 1) && is_separator(s[1], 1)) {
        p->out->flags |= NTPATH_FLAG_WIN32_INPUT;
        /* "\\.\", "//./", "//?/": Win32 device paths, normalized by Win32. */
        if (n >= 3 && (s[2] == '.' || s[2] == '?') && (n == 3 || is_separator(s[3], 1)))
            return dispatch_dos_namespace(p, 3, SYNTAX_WIN32_DEVICE);
        return win32_unc(p);
    }
    if (is_separator(s[0], 1)) {
        if (p->input == NTPATH_INPUT_ANY && starts_like_nt(s, n))
            return dispatch_object_root(p, 0, SYNTAX_NT);
        p->out->flags |= NTPATH_FLAG_WIN32_INPUT;
        return win32_rooted(p);
    }
    p->out->flags |= NTPATH_FLAG_WIN32_INPUT;
    if (n >= 2 && is_ascii_letter(s[0]) && s[1] == ':')
        return (n >= 3 && is_separator(s[2], 1)) ? win32_drive_absolute(p) : win32_drive_relative(p);
    return win32_relative(p);
}

/* In ANY mode a single leading backslash is NT only before these names. */
static int starts_like_nt(const uint16_t *s, size_t n)
{
    static const char *const roots[] = {"??", "DosDevices", "GLOBAL??", "Device", "SystemRoot"};
    if (n < 2 || s[0] != '\\')
        return 0;
    size_t end = 1;
    while (end < n && s[end] != '\\')
        end++;
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
        if (equals_ascii(s + 1, end - 1, roots[i]))
            return 1;
    return 0;
}

/* "C:\...". */
static fvm_status win32_drive_absolute(parse *p)
{
    size_t at, len;
    if (win32_last_name_is_device(p, 3, &at, &len))
        return become_dos_device(p, at, len);
    return drive_root(p, p->s[0], 2, SYNTAX_WIN32, 0);
}

/* "C:" and "C:dir": relative to the current folder of drive C, which is the
 * process's current directory when that is on C, else the "=C:" folder,
 * else the root of C (as Win32 does). */
static fvm_status win32_drive_relative(parse *p)
{
    uint16_t letter = ascii_upper(p->s[0]);
    const ntpath_context *ctx = p->ctx;
    size_t at, len;
    if (win32_last_name_is_device(p, 2, &at, &len))
        return become_dos_device(p, at, len);
    int found = 0;
    fvm_status st;
    if (ctx->current_dir.units && ctx->current_dir.len > 0) {
        st = parse_base(p, ctx->current_dir, "current directory");
        if (st != FVM_OK)
            return st;
        found = p->out->kind == NTPATH_KIND_DRIVE && p->out->drive == letter;
    }
    const ntpath_string *drive_dir = &ctx->drive_dirs[letter - 'A'];
    if (!found && drive_dir->units && drive_dir->len > 0) {
        st = parse_base(p, *drive_dir, "current directory of the drive");
        if (st != FVM_OK)
            return st;
        if (p->out->kind != NTPATH_KIND_DRIVE || p->out->drive != letter)
            return fvm_error_set(p->err, FVM_E_INVALID, "the current directory given for drive %c: is on another drive",
                                 (char)letter);
        found = 1;
    }
    if (!found) {
        reset_output(p->out, ctx);
        st = set_drive_root(p, letter, 0);
        if (st != FVM_OK)
            return st;
    }
    p->out->flags |= NTPATH_FLAG_WIN32_INPUT | NTPATH_FLAG_RELATIVE_INPUT;
    return append_names(p, 2, WIN32_FILE_RULES);
}

/* "\dir": on the drive (or share) of the current directory. */
static fvm_status win32_rooted(parse *p)
{
    size_t at, len;
    if (win32_last_name_is_device(p, 0, &at, &len))
        return become_dos_device(p, at, len);
    fvm_status st = need_current_dir(p, "rooted on the current drive");
    if (st != FVM_OK)
        return st;
    p->out->len = p->out->root_len;
    return append_names(p, 0, WIN32_FILE_RULES);
}

/* "dir\file", ".\file", "..\file". */
static fvm_status win32_relative(parse *p)
{
    size_t at, len;
    if (win32_last_name_is_device(p, 0, &at, &len))
        return become_dos_device(p, at, len);
    fvm_status st = need_current_dir(p, "relative");
    if (st != FVM_OK)
        return st;
    return append_names(p, 0, WIN32_FILE_RULES);
}

static fvm_status need_current_dir(parse *p, const char *form)
{
    if (!p->ctx->current_dir.units || p->ctx->current_dir.len == 0)
        return fvm_error_set(p->err, FVM_E_INVALID, "the %s is %s, but the context has no current directory", p->what,
                             form);
    fvm_status st = parse_base(p, p->ctx->current_dir, "current directory");
    if (st == FVM_OK)
        p->out->flags |= NTPATH_FLAG_WIN32_INPUT | NTPATH_FLAG_RELATIVE_INPUT;
    return st;
}

/* "\\server\share\...". */
static fvm_status win32_unc(parse *p)
{
    if (is_separator(p->s[2], 1))
        return fvm_error_set(p->err, FVM_E_INVALID, "UNC path with an empty server name (offset 2 of the %s)", p->what);
    return unc_after_prefix(p, 2, SYNTAX_WIN32, 0);
}

static fvm_status become_dos_device(parse *p, size_t at, size_t len)
{
    reset_output(p->out, p->ctx);
    p->out->flags |= NTPATH_FLAG_WIN32_INPUT | NTPATH_FLAG_DOS_DEVICE_NAME;
    return object_root(p, NTPATH_KIND_DEVICE, "\\??\\", at, len, 1, p->n, SYNTAX_WIN32);
}

/* ---- dispatch on the root ------------------------------------------------ */

/* An absolute object manager name; pos is at its leading backslash. */
static fvm_status dispatch_object_root(parse *p, size_t pos, syntax syn)
{
    size_t at, len;
    if (!next_root_name(p, &pos, &at, &len, syn)) {
        p->out->kind = NTPATH_KIND_OTHER_NT; /* the root directory "\" (finish writes it) */
        p->out->len = p->out->root_len = 0;
        return FVM_OK;
    }
    const uint16_t *f = p->s + at;
    if (is_dot(f, len) || is_dot_dot(f, len))
        return fail_at(p, FVM_E_INVALID, at, len, "relative component in an object name, refused:");
    if (equals_ascii(f, len, "??") || equals_ascii(f, len, "DosDevices") || equals_ascii(f, len, "GLOBAL??"))
        return dispatch_dos_namespace(p, pos, syn);
    if (equals_ascii(f, len, "Device"))
        return dispatch_device(p, pos, syn);
    if (equals_ascii(f, len, "SystemRoot"))
        return system_root(p, pos, syn);
    return object_root(p, NTPATH_KIND_OTHER_NT, "\\", at, len, 0, pos, syn);
}

/* The \?? namespace (also reached as \DosDevices, \GLOBAL??, \\?\ and \\.\):
 * its first name says what the rest is. */
static fvm_status dispatch_dos_namespace(parse *p, size_t pos, syntax syn)
{
    for (;;) {
        size_t at, len;
        if (!next_root_name(p, &pos, &at, &len, syn))
            return object_root(p, NTPATH_KIND_OTHER_NT, "\\??", p->n, 0, 0, p->n, syn);
        const uint16_t *f = p->s + at;
        if (syn != SYNTAX_NT)
            len = without_trailing_dots_and_spaces(f, len);
        if (len == 0 || is_dot(f, len) || is_dot_dot(f, len))
            /* Wine looks the first name up as a file in its dosdevices
             * folder, where ".." is the Wine prefix itself. */
            return fail_at(p, FVM_E_INVALID, at, len ? len : 1, "relative or empty device name");
        if (len == 2 && is_ascii_letter(f[0]) && f[1] == ':')
            return drive_root(p, f[0], pos, syn, 1);
        if (equals_ascii(f, len, "UNC"))
            return unc_after_prefix(p, pos, syn, 0);
        if (equals_ascii(f, len, "pipe"))
            return pipe_root(p, NTPATH_KIND_PIPE, pos, syn);
        if (equals_ascii(f, len, "mailslot"))
            return pipe_root(p, NTPATH_KIND_MAILSLOT, pos, syn);
        if (equals_ascii(f, len, "Global"))
            continue; /* \??\Global links to \GLOBAL??: the same namespace for us */
        if (equals_ascii(f, len, "GLOBALROOT")) {
            if (++p->links > MAX_LINKS)
                return fail_at(p, FVM_E_INVALID, at, len, "too many links back to the object root at");
            p->out->flags |= NTPATH_FLAG_VIA_DEVICE_NAME; /* links to the object root */
            return dispatch_object_root(p, pos, syn);
        }
        uint16_t drive = volume_drive(p, f, len, 1);
        if (drive) {
            p->out->flags |= NTPATH_FLAG_VIA_DEVICE_NAME;
            return drive_root(p, drive, pos, syn, 1);
        }
        if (is_physical_drive(f, len) && pos == p->n) {
            p->out->flags |= NTPATH_FLAG_RAW_STORAGE;
            return object_root(p, NTPATH_KIND_DEVICE, "\\??\\", at, len, 0, pos, syn);
        }
        if (is_storage_name(f, len))
            return storage_not_mapped(p, at, len);
        if (equals_ascii(f, len, "unix")) {
            p->out->flags |= NTPATH_FLAG_WINE_UNIX;
            return object_root(p, NTPATH_KIND_OTHER_NT, "\\??\\", at, len, 0, pos, syn);
        }
        if (is_dos_device(f, len))
            return object_root(p, NTPATH_KIND_DEVICE, "\\??\\", at, len, 1, pos, syn);
        return object_root(p, NTPATH_KIND_OTHER_NT, "\\??\\", at, len, 0, pos, syn);
    }
}

/* Names under \Device. */
static fvm_status dispatch_device(parse *p, size_t pos, syntax syn)
{
    size_t at, len;
    if (!next_root_name(p, &pos, &at, &len, syn))
        return object_root(p, NTPATH_KIND_OTHER_NT, "\\Device", p->n, 0, 0, p->n, syn);
    const uint16_t *f = p->s + at;
    if (syn != SYNTAX_NT)
        len = without_trailing_dots_and_spaces(f, len);
    if (len == 0 || is_dot(f, len) || is_dot_dot(f, len))
        return fail_at(p, FVM_E_INVALID, at, len ? len : 1, "relative or empty device name");
    uint16_t drive = volume_drive(p, f, len, 0);
    if (drive) {
        p->out->flags |= NTPATH_FLAG_VIA_DEVICE_NAME;
        return drive_root(p, drive, pos, syn, 1);
    }
    if (equals_ascii(f, len, "Mup") || equals_ascii(f, len, "LanmanRedirector")) {
        size_t probe = pos, a, l;
        if (!next_root_name(p, &probe, &a, &l, syn))
            return object_root(p, NTPATH_KIND_DEVICE, "\\Device\\", at, len, 0, pos, syn);
        return unc_after_prefix(p, pos, syn, 1);
    }
    if (equals_ascii(f, len, "NamedPipe"))
        return pipe_root(p, NTPATH_KIND_PIPE, pos, syn);
    if (equals_ascii(f, len, "MailSlot"))
        return pipe_root(p, NTPATH_KIND_MAILSLOT, pos, syn);
    if (is_storage_name(f, len))
        return storage_not_mapped(p, at, len);
    if (is_known_device(f, len))
        return object_root(p, NTPATH_KIND_DEVICE, "\\Device\\", at, len, 0, pos, syn);
    return object_root(p, NTPATH_KIND_OTHER_NT, "\\Device\\", at, len, 0, pos, syn);
}

/* "\SystemRoot" is an object manager link to the Windows folder. */
static fvm_status system_root(parse *p, size_t pos, syntax syn)
{
    if (!p->ctx->system_root.units || p->ctx->system_root.len == 0)
        return fvm_error_set(p->err, FVM_E_NOTFOUND,
                             "\\SystemRoot in the %s: the context does not say where the system root is", p->what);
    fvm_status st = parse_base(p, p->ctx->system_root, "system root");
    if (st != FVM_OK)
        return st;
    p->out->flags |= NTPATH_FLAG_VIA_DEVICE_NAME;
    return append_names(p, pos, rules_for(syn) | RULE_FILE);
}

/* Parses an absolute folder (current directory, system root) into p->out as
 * the start of the path being parsed. */
static fvm_status parse_base(parse *p, ntpath_string base, const char *what)
{
    if (p->depth >= MAX_NESTING)
        return fvm_error_set(p->err, FVM_E_INVALID, "the %s refers to %s, which is relative again", p->what, what);
    uint32_t flags = p->out->flags;
    parse sub = *p;
    sub.s = base.units;
    sub.n = base.len;
    sub.what = what;
    sub.input = NTPATH_INPUT_ANY;
    sub.depth = p->depth + 1;
    fvm_status st = parse_source(&sub);
    if (st != FVM_OK)
        return st;
    ntpath *out = p->out;
    if ((out->kind != NTPATH_KIND_DRIVE && out->kind != NTPATH_KIND_UNC) || out->stream_len > 0) {
        out->kind = NTPATH_KIND_NONE;
        return fvm_error_set(p->err, FVM_E_INVALID, "the %s (needed by the %s) is not a folder on a drive or share",
                             what, p->what);
    }
    out->flags &= ~(uint32_t)(NTPATH_FLAG_DEFAULT_STREAM | NTPATH_FLAG_DIRECTORY_INDEX);
    out->flags |= flags;
    reopen_for_append(out);
    return FVM_OK;
}

/* ---- roots --------------------------------------------------------------- */

/* A drive (or a volume device mapped to one). With nothing after the drive
 * name it is the volume itself ("\??\C:", a raw open), not its root folder. */
static fvm_status drive_root(parse *p, uint16_t letter, size_t pos, syntax syn, int volume_if_bare)
{
    fvm_status st = set_drive_root(p, letter, pos);
    if (st != FVM_OK)
        return st;
    if (volume_if_bare && pos == p->n) {
        p->out->kind = NTPATH_KIND_VOLUME;
        p->out->flags |= NTPATH_FLAG_RAW_STORAGE;
        return FVM_OK;
    }
    return append_names(p, pos, rules_for(syn) | RULE_FILE);
}

static fvm_status set_drive_root(parse *p, uint16_t letter, size_t at)
{
    ntpath *out = p->out;
    uint16_t root[6] = {'\\', '?', '?', '\\', ascii_upper(letter), ':'};
    out->len = 0;
    out->kind = NTPATH_KIND_DRIVE;
    out->drive = root[4];
    out->root_len = 6;
    return emit(p, root, 6, at);
}

/* Server and share after a UNC prefix. The redirector forms
 * ("\Device\Mup\;LanmanRedirector\;Z:0000000000012345\server\share") carry
 * ';'-prefixed components before the server: they are skipped. */
static fvm_status unc_after_prefix(parse *p, size_t pos, syntax syn, int skip_redirector_parts)
{
    size_t server_at, server_len, share_at, share_len;
    size_t prefix_end = pos;
    for (;;) {
        if (!next_root_name(p, &pos, &server_at, &server_len, syn))
            return fvm_error_set(p->err, FVM_E_INVALID, "UNC path without a server name (offset %lu of the %s)",
                                 (unsigned long)prefix_end, p->what);
        if (!skip_redirector_parts || p->s[server_at] != ';')
            break;
    }
    if (!next_root_name(p, &pos, &share_at, &share_len, syn))
        return fail_at(p, FVM_E_INVALID, server_at, server_len, "UNC path without a share name after server");
    return unc_root(p, server_at, server_len, share_at, share_len, pos, syn);
}

/* "\??\UNC\server\share": a share, or the drive behind an administrative
 * share of this machine, or a remote pipe/mailslot file system. */
static fvm_status unc_root(parse *p, size_t server_at, size_t server_len, size_t share_at, size_t share_len,
                           size_t pos, syntax syn)
{
    ntpath *out = p->out;
    fvm_status st = check_root_name(p, server_at, &server_len, "'.' or '..' as a server name:");
    if (st == FVM_OK)
        st = check_root_name(p, share_at, &share_len, "'.' or '..' as a share name:");
    if (st != FVM_OK)
        return st;
    const uint16_t *server = p->s + server_at, *share = p->s + share_at;
    if (is_loopback_server(p, server, server_len)) {
        out->flags |= NTPATH_FLAG_LOOPBACK_UNC;
        if (share_len == 2 && is_ascii_letter(share[0]) && share[1] == '$') {
            out->flags |= NTPATH_FLAG_ADMIN_SHARE;
            return drive_root(p, share[0], pos, syn, 0);
        }
    }
    st = emit_ascii(p, "\\??\\UNC\\", server_at);
    out->server_offset = out->len;
    out->server_len = server_len;
    if (st == FVM_OK)
        st = emit(p, server, server_len, server_at);
    if (st == FVM_OK)
        st = emit_unit(p, '\\', share_at);
    out->share_offset = out->len;
    out->share_len = share_len;
    if (st == FVM_OK)
        st = emit(p, share, share_len, share_at);
    if (st != FVM_OK)
        return st;
    out->root_len = out->len;
    if (equals_ascii(share, share_len, "pipe") || equals_ascii(share, share_len, "mailslot")) {
        out->kind = equals_ascii(share, share_len, "pipe") ? NTPATH_KIND_PIPE : NTPATH_KIND_MAILSLOT;
        if (syn == SYNTAX_NT)
            return pos < p->n ? append_verbatim(p, pos, 0) : FVM_OK;
        return append_names(p, pos, rules_for(syn));
    }
    out->kind = NTPATH_KIND_UNC;
    return append_names(p, pos, rules_for(syn) | RULE_FILE);
}

/* Server and share names follow the file name rules, without streams. */
static fvm_status check_root_name(parse *p, size_t at, size_t *len, const char *what)
{
    const uint16_t *s = p->s + at;
    if (is_dot(s, *len) || is_dot_dot(s, *len))
        return fail_at(p, FVM_E_INVALID, at, *len, what);
    if (find_unit(s, *len, ':') < *len)
        return fail_at(p, FVM_E_INVALID, at, *len, "':' in a server or share name");
    size_t kept = without_trailing_dots_and_spaces(s, *len);
    if (kept == 0)
        return fail_at(p, FVM_E_INVALID, at, *len, "server or share name made only of dots and spaces:");
    if (kept < *len)
        p->out->flags |= NTPATH_FLAG_TRAILING_DOTS;
    *len = kept;
    return check_name_characters(p, at, kept, "server or share name");
}

static int is_loopback_server(const parse *p, const uint16_t *s, size_t n)
{
    if (equals_ascii(s, n, "localhost"))
        return 1;
    if (n > 4 && starts_with_ascii(s, n, "127.")) {
        size_t i = 4;
        while (i < n && (is_ascii_digit(s[i]) || s[i] == '.'))
            i++;
        if (i == n)
            return 1;
    }
    const ntpath_string *name = &p->ctx->computer_name;
    return name->units && name->len > 0 && equals_folded(p->ctx->upcase_table, s, n, name->units, name->len);
}

/* The drive letter the context's volume table gives an object name, or 0.
 * In the \?? namespace both "\??\Volume{...}" entries and "\Device\X" entries
 * match, since \GLOBAL??\HarddiskVolume1 links to \Device\HarddiskVolume1. */
static uint16_t volume_drive(const parse *p, const uint16_t *name, size_t n, int in_dos_namespace)
{
    static const char *const dos_prefixes[] = {"\\??\\", "\\DosDevices\\", "\\GLOBAL??\\"};
    for (size_t v = 0; v < p->ctx->volume_count; v++) {
        const ntpath_volume *vol = &p->ctx->volumes[v];
        const uint16_t *d = vol->device;
        size_t dl = vol->device_len;
        if (!d || !is_ascii_letter(vol->drive))
            continue;
        if (starts_with_ascii(d, dl, "\\Device\\") && equals_folded(p->ctx->upcase_table, d + 8, dl - 8, name, n))
            return ascii_upper(vol->drive);
        for (size_t i = 0; in_dos_namespace && i < sizeof dos_prefixes / sizeof dos_prefixes[0]; i++) {
            size_t pl = strlen(dos_prefixes[i]);
            if (starts_with_ascii(d, dl, dos_prefixes[i]) && equals_folded(p->ctx->upcase_table, d + pl, dl - pl, name, n))
                return ascii_upper(vol->drive);
        }
    }
    return 0;
}

/* The named pipe or mailslot file system (local): "\Device\NamedPipe". */
static fvm_status pipe_root(parse *p, ntpath_kind kind, size_t pos, syntax syn)
{
    ntpath *out = p->out;
    out->kind = kind;
    fvm_status st = emit_ascii(p, kind == NTPATH_KIND_PIPE ? "\\Device\\NamedPipe" : "\\Device\\MailSlot", pos);
    if (st != FVM_OK)
        return st;
    out->root_len = out->len;
    if (syn == SYNTAX_NT)
        return pos < p->n ? append_verbatim(p, pos, 0) : FVM_OK;
    return append_names(p, pos, rules_for(syn));
}

/* An object whose root is prefix + name (e.g. "\??\" + "NUL"). */
static fvm_status object_root(parse *p, ntpath_kind kind, const char *prefix, size_t name_at, size_t name_len,
                              int upper, size_t pos, syntax syn)
{
    ntpath *out = p->out;
    if (syn == SYNTAX_NT && find_unit(p->s + name_at, name_len, '/') < name_len)
        return fail_at(p, FVM_E_INVALID, name_at, name_len, "'/' in an NT name");
    out->kind = kind;
    fvm_status st = emit_ascii(p, prefix, name_at);
    for (size_t i = 0; i < name_len && st == FVM_OK; i++) {
        uint16_t c = p->s[name_at + i];
        st = emit_unit(p, upper ? ascii_upper(c) : c, name_at + i);
    }
    if (st != FVM_OK)
        return st;
    out->root_len = out->len;
    return append_names(p, pos, rules_for(syn));
}

/* ---- errors -------------------------------------------------------------- */

/* An error about the units s[at..at+n) of the string being read. */
fvm_status fail_at(parse *p, fvm_status status, size_t at, size_t n, const char *problem)
{
    char shown[64];
    render(p->s + at, n, shown, sizeof shown);
    return fvm_error_set(p->err, status, "%s '%s' at offset %lu of the %s", problem, shown,
                         (unsigned long)at, p->what);
}

/* ---- characters and strings ---------------------------------------------- */

uint16_t ntpath_upcase(const uint16_t *table, uint16_t c)
{
    return table ? table[c] : builtin_upcase(c);
}

/* NTFS-style simple upper-casing of the blocks named in ntpath.h. The
 * exceptions (µ, ı, ſ, final sigma, ß) are characters whose Unicode upper
 * case is shared with another letter: NTFS does not fold them, and folding
 * them here would make two distinct files look like one. */
static uint16_t builtin_upcase(uint16_t c)
{
    if (c < 0x80)
        return ascii_upper(c);
    if (c < 0x100) {
        if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
            return (uint16_t)(c - 32);
        return c == 0xFF ? 0x178 : c;
    }
    if (c < 0x180) { /* Latin Extended-A: pairs, upper case first */
        if ((c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return (c & 1) ? (uint16_t)(c - 1) : c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c : (uint16_t)(c - 1);
        return c;
    }
    if (c >= 0x370 && c < 0x400) { /* Greek */
        if (c == 0x3AC)
            return 0x386;
        if (c >= 0x3AD && c <= 0x3AF)
            return (uint16_t)(c - 37);
        if ((c >= 0x3B1 && c <= 0x3C1) || (c >= 0x3C3 && c <= 0x3CB))
            return (uint16_t)(c - 32);
        if (c == 0x3CC)
            return 0x38C;
        if (c == 0x3CD || c == 0x3CE)
            return (uint16_t)(c - 63);
        return c;
    }
    if (c >= 0x400 && c < 0x500) { /* Cyrillic */
        if (c >= 0x430 && c <= 0x44F)
            return (uint16_t)(c - 32);
        if (c >= 0x450 && c <= 0x45F)
            return (uint16_t)(c - 80);
        if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0))
            return (c & 1) ? (uint16_t)(c - 1) : c;
        if (c >= 0x4C1 && c <= 0x4CE)
            return (c & 1) ? c : (uint16_t)(c - 1);
        return c;
    }
    return c;
}

/* A printable rendering of a piece of a path for error messages: ASCII as
 * is, anything else as '?', cut with "..." past 48 characters. */
const char *render(const uint16_t *s, size_t n, char *buf, size_t cap)
{
    size_t shown = n > 48 ? 48 : n, o = 0;
    for (size_t i = 0; i < shown && o + 1 < cap; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7F) ? (char)s[i] : '?';
    if (shown < n && o + 4 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}
