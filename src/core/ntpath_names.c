/* ntpath_names.c - the names after a path's root, appended one at a time
 * to the canonical path that ntpath.c started: "." and ".." (which pop a
 * name but never the root), Win32's trailing dots and spaces, streams
 * ("name:stream:$DATA"), characters no file name may hold, and the DOS
 * device names ("NUL", "COM1", "C:\dir\nul.txt") that Win32 reads as
 * devices. Also the root components (device, server, share) that ntpath.c's
 * dispatch reads. See ntpath.h for the rules. */
#include "core/ntpath_internal.h"

static int leftmost_surviving_name(const parse *p, size_t from, size_t *start, size_t *end);
static fvm_status append_file_name(parse *p, size_t at, size_t n, int last, unsigned rules);
static fvm_status append_object_name(parse *p, size_t at, size_t n, unsigned rules);
static void pop_name(ntpath *out);

/* ---- finding the root components ----------------------------------------- */

/* The next root component (device, server, share...) at or after *pos;
 * *pos moves past it. Returns 0 when there is none. */
int next_root_name(parse *p, size_t *pos, size_t *start, size_t *len, syntax syn)
{
    size_t i = *pos;
    if (syn == SYNTAX_WIN32_DEVICE) {
        size_t b, e;
        if (!leftmost_surviving_name(p, i, &b, &e))
            return 0;
        *start = b;
        *len = e - b;
        *pos = e;
        return 1;
    }
    int slash = syn != SYNTAX_NT;
    size_t run = 0;
    while (i < p->n && is_separator(p->s[i], slash)) {
        i++;
        run++;
    }
    if (run > 1 && syn == SYNTAX_NT)
        p->out->flags |= NTPATH_FLAG_EMPTY_COMPONENTS;
    if (i == p->n)
        return 0;
    *start = i;
    while (i < p->n && !is_separator(p->s[i], slash))
        i++;
    *len = i - *start;
    *pos = i;
    return 1;
}

/* In a Win32 "\\.\" path, ".." can remove the device name itself, so the
 * name the path really starts with is the leftmost one that no later ".."
 * removes. Scanning from the right, each ".." cancels the next name to its
 * left; this gives the same result as collapsing left to right with ".."
 * ignored at the top, without a buffer. */
static int leftmost_surviving_name(const parse *p, size_t from, size_t *start, size_t *end)
{
    size_t pending = 0, i = p->n;
    int found = 0;
    while (i > from) {
        size_t e = i;
        while (e > from && is_separator(p->s[e - 1], 1))
            e--;
        if (e == from)
            break;
        size_t b = e;
        while (b > from && !is_separator(p->s[b - 1], 1))
            b--;
        if (is_dot_dot(p->s + b, e - b))
            pending++;
        else if (is_dot(p->s + b, e - b))
            ;
        else if (pending > 0)
            pending--;
        else {
            *start = b;
            *end = e;
            found = 1;
        }
        i = b;
    }
    return found;
}

/* ---- the names after the root -------------------------------------------- */

unsigned rules_for(syntax syn)
{
    return syn == SYNTAX_NT ? 0u : (RULE_SLASH | RULE_WIN32);
}

/* Appends every name of s[pos..n) to the root already in out. */
fvm_status append_names(parse *p, size_t pos, unsigned rules)
{
    int slash = (rules & RULE_SLASH) != 0;
    while (pos < p->n) {
        if (is_separator(p->s[pos], slash)) {
            size_t run = 0;
            while (pos < p->n && is_separator(p->s[pos], slash)) {
                pos++;
                run++;
            }
            if (run > 1 && !(rules & RULE_WIN32))
                p->out->flags |= NTPATH_FLAG_EMPTY_COMPONENTS;
            if (pos == p->n)
                p->out->flags |= NTPATH_FLAG_TRAILING_SEPARATOR;
            continue;
        }
        size_t start = pos;
        while (pos < p->n && !is_separator(p->s[pos], slash))
            pos++;
        fvm_status st = (rules & RULE_FILE) ? append_file_name(p, start, pos - start, pos == p->n, rules)
                                            : append_object_name(p, start, pos - start, rules);
        if (st != FVM_OK)
            return st;
    }
    return FVM_OK;
}

/* One file or folder name, s[at..at+n), followed by a separator or (last)
 * the end of the string. */
static fvm_status append_file_name(parse *p, size_t at, size_t n, int last, unsigned rules)
{
    const uint16_t *s = p->s + at;
    int win32 = (rules & RULE_WIN32) != 0;
    ntpath *out = p->out;

    if (is_dot(s, n) || is_dot_dot(s, n)) {
        /* Always collapsed for the decision: Wine resolves them even in NT
         * paths, so "\??\C:\box\..\host" opens C:\host. */
        if (!win32)
            out->flags |= NTPATH_FLAG_DOT_COMPONENTS;
        if (is_dot_dot(s, n))
            pop_name(out);
        return FVM_OK;
    }
    size_t base_len = find_unit(s, n, ':');
    if (base_len == 0)
        return fail_at(p, FVM_E_INVALID, at, n, "empty file name before ':' in");
    /* Trailing dots and spaces never distinguish two names for us: Win32
     * strips them from the last name and one dot from the others; NTFS
     * accepts "file." as a name distinct from "file" in NT forms, but a
     * policy must not be bypassable by adding a dot. We strip them all and
     * flag where Windows would not have. */
    size_t kept = without_trailing_dots_and_spaces(s, base_len);
    if (kept == 0)
        return fail_at(p, FVM_E_INVALID, at, n,
                       "name made only of dots and spaces (Windows and Wine read it differently), refused:");
    if (kept < base_len) {
        size_t win32_strips = 0;
        if (win32 && last)
            win32_strips = base_len == n ? base_len - kept : 0;
        else if (win32)
            win32_strips = (base_len == n && s[n - 1] == '.') ? 1 : 0;
        if (base_len - kept > win32_strips)
            out->flags |= last ? NTPATH_FLAG_TRAILING_DOTS : NTPATH_FLAG_TRAILING_DOTS | NTPATH_FLAG_INNER_TRAILING_DOTS;
    }
    fvm_status st = check_name_characters(p, at, kept, "name");
    if (st == FVM_OK && base_len < n)
        st = parse_stream(p, at + base_len + 1, n - base_len - 1, last, win32);
    if (st == FVM_OK)
        st = emit_unit(p, '\\', at);
    if (st == FVM_OK)
        st = emit(p, s, kept, at);
    return st;
}

/* One name of a device, pipe or other object. "." and ".." mean nothing to
 * the object manager; we refuse them in NT forms rather than guess how Wine
 * would resolve them. Win32 forms collapse them (Win32 does, before NT sees
 * the name). */
static fvm_status append_object_name(parse *p, size_t at, size_t n, unsigned rules)
{
    const uint16_t *s = p->s + at;
    if (is_dot(s, n) || is_dot_dot(s, n)) {
        if (!(rules & RULE_WIN32))
            return fail_at(p, FVM_E_INVALID, at, n, "relative component in a device or object name, refused:");
        if (is_dot_dot(s, n))
            pop_name(p->out);
        return FVM_OK;
    }
    if (!(rules & RULE_SLASH) && find_unit(s, n, '/') < n)
        return fail_at(p, FVM_E_INVALID, at, n, "'/' in an NT name");
    fvm_status st = emit_unit(p, '\\', at);
    return st == FVM_OK ? emit(p, s, n, at) : st;
}

/* A pipe or mailslot name in NT form is one flat name in which backslashes
 * are ordinary characters, so it is kept exactly; only "." and ".." parts are
 * refused (see append_object_name). */
fvm_status append_verbatim(parse *p, size_t pos, int add_separator)
{
    size_t start = pos;
    while (start <= p->n) {
        size_t end = start;
        while (end < p->n && p->s[end] != '\\')
            end++;
        if (is_dot(p->s + start, end - start) || is_dot_dot(p->s + start, end - start))
            return fail_at(p, FVM_E_INVALID, start, end - start, "relative component in a pipe or mailslot name, refused:");
        start = end + 1;
    }
    fvm_status st = add_separator ? emit_unit(p, '\\', pos) : FVM_OK;
    return st == FVM_OK ? emit(p, p->s + pos, p->n - pos, pos) : st;
}

/* The part of a name after its first ':' ("s", "s:$DATA", ":$DATA",
 * ":$INDEX_ALLOCATION", "$I30:$INDEX_ALLOCATION"). Named data streams are
 * recorded in out->stream; they are only allowed on the last name, since a
 * stream is never a folder. */
fvm_status parse_stream(parse *p, size_t at, size_t n, int last, int win32)
{
    const uint16_t *s = p->s + at;
    size_t name_len = find_unit(s, n, ':');
    int has_type = name_len < n;
    const uint16_t *type = s + name_len + 1;
    size_t type_len = has_type ? n - name_len - 1 : 0;
    ntpath *out = p->out;

    if (has_type) {
        if (find_unit(type, type_len, ':') < type_len)
            return fail_at(p, FVM_E_INVALID, at, n, "too many ':' in stream");
        if (type_len == 0)
            return fail_at(p, FVM_E_INVALID, at, n, "empty stream type in");
        if (equals_ascii(type, type_len, "$INDEX_ALLOCATION")) {
            if (name_len == 0 || equals_ascii(s, name_len, "$I30")) {
                if (last)
                    out->flags |= NTPATH_FLAG_DIRECTORY_INDEX;
                return FVM_OK;
            }
            return fail_at(p, FVM_E_UNSUPPORTED, at, n, "index other than $I30 in stream");
        }
        if (!equals_ascii(type, type_len, "$DATA")) {
            if (type[0] == '$')
                return fail_at(p, FVM_E_UNSUPPORTED, at, n, "unsupported stream type in");
            return fail_at(p, FVM_E_INVALID, at, n, "stream type does not start with '$' in");
        }
    }
    if (name_len == 0 && !has_type)
        return fail_at(p, FVM_E_INVALID, at, n, "empty stream name after ':' in");
    int is_default = name_len == 0 || equals_ascii(s, name_len, "$DATA");
    if (!last)
        return fail_at(p, FVM_E_INVALID, at, n, "a data stream on a folder name is not a folder:");
    if (is_default) {
        out->flags |= NTPATH_FLAG_DEFAULT_STREAM;
        return FVM_OK;
    }
    if (s[0] == '$')
        return fail_at(p, FVM_E_UNSUPPORTED, at, name_len, "reserved stream name");
    /* Win32 trims the end of the whole path, which is the stream name here. */
    if (win32 && !has_type) {
        name_len = without_trailing_dots_and_spaces(s, name_len);
        if (name_len == 0)
            return fail_at(p, FVM_E_INVALID, at, n, "stream name made only of dots and spaces:");
    }
    fvm_status st = check_name_characters(p, at, name_len, "stream name");
    if (st != FVM_OK)
        return st;
    if (name_len > NTPATH_STREAM_MAX_UNITS)
        return fvm_error_set(p->err, FVM_E_RANGE, "stream name at offset %lu of the %s is %lu units long (at most %lu)",
                             (unsigned long)at, p->what, (unsigned long)name_len,
                             (unsigned long)NTPATH_STREAM_MAX_UNITS);
    memcpy(out->stream, s, name_len * sizeof *s);
    out->stream_len = name_len;
    out->stream[name_len] = 0;
    out->flags |= NTPATH_FLAG_STREAM;
    return FVM_OK;
}

/* Characters NTFS and Win32 refuse in names: controls and <>"|; and '/' which
 * only reaches here in NT forms, where Wine would read it as a unix
 * separator. '*' and '?' are wildcards: allowed through but flagged. */
fvm_status check_name_characters(parse *p, size_t at, size_t n, const char *what)
{
    const uint16_t *s = p->s + at;
    for (size_t i = 0; i < n; i++) {
        uint16_t c = s[i];
        if (c < 0x20 || c == '<' || c == '>' || c == '"' || c == '|' || c == '/') {
            char shown[64];
            render(s, n, shown, sizeof shown);
            return fvm_error_set(p->err, FVM_E_INVALID,
                                 "invalid character U+%04X at offset %lu of the %s (in %s '%s')",
                                 (unsigned)c, (unsigned long)(at + i), p->what, what, shown);
        }
        if (c == '*' || c == '?')
            p->out->flags |= NTPATH_FLAG_WILDCARDS;
    }
    return FVM_OK;
}

/* "..": drop the last name, never the root. */
static void pop_name(ntpath *out)
{
    if (out->len <= out->root_len) {
        out->flags |= NTPATH_FLAG_ABOVE_ROOT;
        return;
    }
    size_t i = out->len;
    while (i > out->root_len + 1 && out->path[i - 1] != '\\')
        i--;
    out->len = i - 1;
}

/* ---- DOS device and storage names ---------------------------------------- */

/* Win32 reads the last name of a drive, rooted or relative path as a device
 * when its base (before the first '.' or ':', trailing spaces ignored) is a
 * device name: "C:\dir\NUL.txt" and "nul .txt" open NUL. */
int win32_last_name_is_device(const parse *p, size_t from, size_t *base_at, size_t *base_len)
{
    size_t start = p->n;
    while (start > from && !is_separator(p->s[start - 1], 1))
        start--;
    const uint16_t *s = p->s + start;
    size_t n = p->n - start, base = 0;
    while (base < n && s[base] != '.' && s[base] != ':')
        base++;
    while (base > 0 && s[base - 1] == ' ')
        base--;
    if (!is_dos_device(s, base))
        return 0;
    *base_at = start;
    *base_len = base;
    return 1;
}

/* CON, PRN, AUX, NUL, COM1-9, LPT1-9 (with superscript 1-3 too, as Windows
 * accepts them), CONIN$, CONOUT$. */
int is_dos_device(const uint16_t *s, size_t n)
{
    if (n == 3)
        return equals_ascii(s, n, "CON") || equals_ascii(s, n, "PRN") || equals_ascii(s, n, "AUX") ||
               equals_ascii(s, n, "NUL");
    if (n == 4 && (starts_with_ascii(s, n, "COM") || starts_with_ascii(s, n, "LPT"))) {
        uint16_t c = s[3];
        return (c >= '1' && c <= '9') || c == 0xB9 || c == 0xB2 || c == 0xB3;
    }
    return equals_ascii(s, n, "CONIN$") || equals_ascii(s, n, "CONOUT$");
}

int is_physical_drive(const uint16_t *s, size_t n)
{
    if (n <= 13 || !starts_with_ascii(s, n, "PhysicalDrive"))
        return 0;
    for (size_t i = 13; i < n; i++)
        if (!is_ascii_digit(s[i]))
            return 0;
    return 1;
}

/* Storage names: file system volumes and disks. Not knowing which drive one
 * is must not make it look like a harmless object. */
int is_storage_name(const uint16_t *s, size_t n)
{
    return starts_with_ascii(s, n, "Harddisk") || starts_with_ascii(s, n, "Volume{") ||
           starts_with_ascii(s, n, "PhysicalDrive");
}

/* \Device names that are not file systems. */
int is_known_device(const uint16_t *s, size_t n)
{
    static const char *const devices[] = {"Null", "ConDrv", "Afd", "Beep", "KsecDD", "CNG", "Nsi", "DeviceApi",
                                          "Tcp", "Tcp6", "Udp", "Udp6", "RawIp", "RawIp6", "Ip", "Ip6"};
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (equals_ascii(s, n, devices[i]))
            return 1;
    return 0;
}

fvm_status storage_not_mapped(parse *p, size_t at, size_t n)
{
    char shown[64];
    render(p->s + at, n, shown, sizeof shown);
    return fvm_error_set(p->err, FVM_E_NOTFOUND,
                         "'%s' at offset %lu of the %s names a storage device that the context's volume table "
                         "does not map to a drive",
                         shown, (unsigned long)at, p->what);
}
