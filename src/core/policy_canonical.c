/* policy_canonical.c - a rule's pattern text -> its canonical form, the
 * spelling the matcher compares names in (see policy.h): file patterns go
 * through ntpath_normalize, as the runtime's names do, with "**" and
 * wildcards kept; keys become \REGISTRY\... (two forms for HKCR); objects
 * their object-manager path (\BaseNamedObjects\..., pipes...); [net] and
 * process hash patterns are checked by their own modules. analyze_pattern
 * then collapses "**\**" and counts what rule precedence looks at.
 * policy_parse.c calls in here for every rule. Not part of the runtime
 * (FVM_RUNTIME): it allocates. */
#include "core/objname.h"
#include "core/policy.h"
#include "core/netrules.h"
#include "core/policy_process.h"

#ifndef FVM_RUNTIME

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/policy_parse_internal.h"

/* ---- canonical patterns --------------------------------------------------------------- */

static int ustr_put(ustr *s, const uint16_t *u, size_t n)
{
    if (!reserve((void **)&s->units, &s->cap, s->len + n + 1, sizeof(uint16_t)))
        return 0;
    memcpy(s->units + s->len, u, n * sizeof(uint16_t));
    s->len += n;
    s->units[s->len] = 0;
    return 1;
}

static int ustr_put_ascii(ustr *s, const char *a)
{
    while (*a) {
        uint16_t u = (uint8_t)*a++;
        if (!ustr_put(s, &u, 1))
            return 0;
    }
    return 1;
}

static int ustr_put_utf8(ustr *s, const char *a)
{
    size_t n = strlen(a), bad;
    if (!reserve((void **)&s->units, &s->cap, s->len + n + 1, sizeof(uint16_t)))
        return 0;
    size_t got = policy_utf8_to_utf16(a, n, s->units + s->len, n, &bad);
    if (got == (size_t)-1)
        return 0;
    s->len += got;
    s->units[s->len] = 0;
    return 1;
}

static int unit_equals_ci(const uint16_t *u, size_t n, const char *ascii)
{
    size_t i = 0;
    for (; i < n; i++)
        if (!ascii[i] || u[i] > 0x7F || lower((char)u[i]) != lower(ascii[i]))
            return 0;
    return ascii[i] == 0;
}

static int unit_starts_ci(const uint16_t *u, size_t n, const char *ascii)
{
    size_t i = 0;
    for (; ascii[i]; i++)
        if (i >= n || u[i] > 0x7F || lower((char)u[i]) != lower(ascii[i]))
            return 0;
    return 1;
}

void canonical_free(canonical *c)
{
    free(c->forms[0].units);
    free(c->forms[1].units);
    memset(c, 0, sizeof *c);
}

/* "**" as the first name: the pattern matches below any root. */
static int starts_with_globstar(const uint16_t *in, size_t n)
{
    return n >= 2 && in[0] == '*' && in[1] == '*' && (n == 2 || in[2] == '\\' || in[2] == '/');
}

static ntpath_context file_context(const policy_env *env)
{
    ntpath_context ctx;
    if (env && env->path_ctx)
        ctx = *env->path_ctx;
    else
        memset(&ctx, 0, sizeof ctx);
    /* Patterns are absolute: no current directory, no per-drive ones. */
    memset(&ctx.current_dir, 0, sizeof ctx.current_dir);
    memset(ctx.drive_dirs, 0, sizeof ctx.drive_dirs);
    ctx.input = NTPATH_INPUT_ANY;
    return ctx;
}

/* ntpath resolves ".." by dropping the name before it; after a wildcard
 * that would silently change what the pattern means ("C:\**\..\x" is not
 * "C:\x"). */
static int dot_dot_after_wildcard(const uint16_t *in, size_t n)
{
    int wildcard_seen = 0;
    size_t from = (n >= 4 && in[0] == '\\' && (in[1] == '\\' || in[1] == '?') && in[2] == '?' && in[3] == '\\') ? 4 : 0;
    for (size_t start = from; start <= n;) {
        size_t end = start;
        while (end < n && in[end] != '\\' && in[end] != '/')
            end++;
        if (end - start == 2 && in[start] == '.' && in[start + 1] == '.' && wildcard_seen)
            return 1;
        int wildcard = 0;
        for (size_t i = start; i < end; i++)
            if (in[i] == '*' || in[i] == '?')
                wildcard = 1;
        if (wildcard)
            wildcard_seen = 1;
        start = end + 1;
    }
    return 0;
}

static fvm_status canonical_file(const policy_env *env, const uint16_t *in, size_t n, ntpath *scratch, canonical *out,
                                 fvm_error *err)
{
    ntpath_context ctx = file_context(env);
    int letter = n >= 2 && ((in[0] >= 'A' && in[0] <= 'Z') || (in[0] >= 'a' && in[0] <= 'z')) && in[1] == ':';
    if (letter && (n == 2 || (in[2] != '\\' && in[2] != '/')))
        return fvm_error_set(err, FVM_E_INVALID, "a drive-relative path ('%c:name' depends on a current folder): "
                             "write %c:\\name", (char)in[0], (char)in[0]);
    if (dot_dot_after_wildcard(in, n))
        return fvm_error_set(err, FVM_E_INVALID, "'..' after a wildcard: the pattern would not mean what it says");
    /* "**\rest" (anywhere) and "*:\rest" (any drive) are not paths ntpath
     * knows: normalize the rest on a stand-in drive, then put the wildcard
     * back in the drive's place. */
    int anywhere = starts_with_globstar(in, n);
    int any_drive = !anywhere && n >= 3 && (in[0] == '*' || in[0] == '?') && in[1] == ':' &&
                    (in[2] == '\\' || in[2] == '/');
    uint16_t drive_wildcard = any_drive ? in[0] : 0;
    ustr *form = &out->forms[out->count++];
    if (anywhere && n == 2)
        return ustr_put_ascii(form, "**") ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    ustr input = {0};
    if (anywhere || any_drive) {
        if (!ustr_put_ascii(&input, "Z:\\") || !ustr_put(&input, in + 3, n - 3)) {
            free(input.units);
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        }
        in = input.units;
        n = input.len;
    }
    fvm_error perr;
    fvm_status st = ntpath_normalize(in, n, &ctx, scratch, &perr);
    free(input.units);
    if (st != FVM_OK)
        return fvm_error_set(err, st, "bad file pattern: %s", perr.message);
    out->ntpath_flags = scratch->flags;
    switch (scratch->kind) {
    case NTPATH_KIND_DRIVE:
    case NTPATH_KIND_UNC:
    case NTPATH_KIND_VOLUME:
    case NTPATH_KIND_DEVICE:
        break;
    case NTPATH_KIND_PIPE:
    case NTPATH_KIND_MAILSLOT:
        return fvm_error_set(err, FVM_E_INVALID, "a named pipe or mailslot is an object: write it in [object] "
                             "as pipe:NAME or mailslot:NAME");
    default:
        return fvm_error_set(err, FVM_E_INVALID, "not a file path (an object manager name): write it in [object]");
    }
    if (scratch->stream_len)
        return fvm_error_set(err, FVM_E_INVALID, "names a stream (after ':'): rules apply to whole files");
    if ((anywhere || any_drive) && (scratch->kind != NTPATH_KIND_DRIVE || scratch->drive != 'Z'))
        return fvm_error_set(err, FVM_E_INVALID, "bad file pattern: after '%s' comes a device or another root",
                             anywhere ? "**" : "*:");
    if (anywhere && scratch->len == 7) /* "**\" is "**" */
        return ustr_put_ascii(form, "**") ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    int ok;
    if (anywhere) { /* "\??\Z:\rest" -> "**\rest" */
        ok = ustr_put_ascii(form, "**") && ustr_put(form, scratch->path + 6, scratch->len - 6);
    } else if (any_drive) { /* "\??\Z:\rest" -> "\??\*:\rest" */
        ok = ustr_put(form, scratch->path, scratch->len);
        if (ok)
            form->units[4] = drive_wildcard;
    } else {
        ok = ustr_put(form, scratch->path, scratch->len);
    }
    return ok ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
}

/* Appends "\name" for each name of in[0..n) (the part after a root). A
 * trailing backslash is dropped; an empty name is an error. */
static fvm_status append_names(ustr *form, const uint16_t *in, size_t n, fvm_error *err)
{
    if (n > 0 && in[n - 1] == '\\')
        n--;
    if (n == 0)
        return FVM_OK;
    for (size_t i = 0; i < n; i++)
        if (in[i] == '\\' && (i == 0 || in[i - 1] == '\\'))
            return fvm_error_set(err, FVM_E_INVALID, "empty name (two backslashes in a row) at character %lu",
                                 (unsigned long)(i + 1));
    if (in[0] == '\\')
        return fvm_error_set(err, FVM_E_INVALID, "empty name (two backslashes in a row)");
    static const uint16_t backslash = '\\';
    if (!ustr_put(form, &backslash, 1) || !ustr_put(form, in, n))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    return FVM_OK;
}

/* "**\rest" for the non-file types: the rest as names, below any root. */
static fvm_status canonical_anywhere(const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    ustr *form = &out->forms[out->count++];
    if (!ustr_put_ascii(form, "**"))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    return n > 3 ? append_names(form, in + 3, n - 3, err) : FVM_OK;
}

/* A root spelled with an ASCII prefix, then names. */
static fvm_status rooted(canonical *out, const char *root, const char *root_tail, const uint16_t *rest, size_t n,
                         int need_name, fvm_error *err)
{
    ustr *form = &out->forms[out->count++];
    if (!ustr_put_ascii(form, root) || (root_tail && !ustr_put_utf8(form, root_tail)))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    if (n > 0 && rest[0] == '\\') { /* the separator after the root */
        rest++;
        n--;
    }
    if (need_name && n == 0)
        return fvm_error_set(err, FVM_E_INVALID, "a name is missing after '%s%s'", root, root_tail ? root_tail : "");
    return append_names(form, rest, n, err);
}

static int sid_ok(const char *sid)
{
    if (!sid || sid[0] == 0)
        return 0;
    for (const char *c = sid; *c; c++)
        if (*c == '\\' || *c == '*' || *c == '?' || (unsigned char)*c < 0x20)
            return 0;
    return 1;
}

static fvm_status canonical_key(const policy_env *env, const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    if (starts_with_globstar(in, n))
        return canonical_anywhere(in, n, out, err);
    if (n > 0 && in[0] == '\\') {
        if (!unit_starts_ci(in, n, "\\REGISTRY") || (n > 9 && in[9] != '\\'))
            return fvm_error_set(err, FVM_E_INVALID, "a key path starting with '\\' must start with \\REGISTRY");
        return rooted(out, "\\REGISTRY", NULL, in + 9, n - 9, 0, err);
    }
    size_t root_len = 0;
    while (root_len < n && in[root_len] != '\\')
        root_len++;
    const uint16_t *rest = in + root_len;
    size_t rest_len = n - root_len;
    const char *sid = env ? env->user_sid : NULL;
    if (unit_equals_ci(in, root_len, "HKLM") || unit_equals_ci(in, root_len, "HKEY_LOCAL_MACHINE"))
        return rooted(out, "\\REGISTRY\\MACHINE", NULL, rest, rest_len, 0, err);
    if (unit_equals_ci(in, root_len, "HKU") || unit_equals_ci(in, root_len, "HKEY_USERS"))
        return rooted(out, "\\REGISTRY\\USER", NULL, rest, rest_len, 0, err);
    if (unit_equals_ci(in, root_len, "HKCC") || unit_equals_ci(in, root_len, "HKEY_CURRENT_CONFIG"))
        return rooted(out, "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current", NULL, rest,
                      rest_len, 0, err);
    int current_user = unit_equals_ci(in, root_len, "HKCU") || unit_equals_ci(in, root_len, "HKEY_CURRENT_USER");
    int classes = unit_equals_ci(in, root_len, "HKCR") || unit_equals_ci(in, root_len, "HKEY_CLASSES_ROOT");
    if (!current_user && !classes)
        return fvm_error_set(err, FVM_E_INVALID, "a key starts with HKLM, HKCU, HKCR, HKU, HKCC (or their "
                             "HKEY_ names) or \\REGISTRY");
    if (!sid_ok(sid))
        return fvm_error_set(err, FVM_E_INVALID, "%s needs the current user's SID, which was not supplied",
                             current_user ? "HKCU" : "HKCR (its per-user classes)");
    if (current_user)
        return rooted(out, "\\REGISTRY\\USER\\", sid, rest, rest_len, 0, err);
    /* HKCR is a merged view: machine classes, and the user's own classes
     * which win over them in Windows. Both are the same rule here. */
    fvm_status st = rooted(out, "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes", NULL, rest, rest_len, 0, err);
    if (st != FVM_OK)
        return st;
    ustr *form = &out->forms[out->count++];
    if (!ustr_put_ascii(form, "\\REGISTRY\\USER\\") || !ustr_put_utf8(form, sid) || !ustr_put_ascii(form, "_Classes"))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    if (rest_len > 0 && rest[0] == '\\') {
        rest++;
        rest_len--;
    }
    return append_names(form, rest, rest_len, err);
}

static fvm_status canonical_object(const policy_env *env, const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    const char *session = env && env->session_objects ? env->session_objects : "\\Sessions\\*\\BaseNamedObjects";
    static const struct {
        const char *prefix;
        const char *root;
    } prefixes[] = {
        {"pipe:", "\\Device\\NamedPipe"},         {"\\\\.\\pipe\\", "\\Device\\NamedPipe"},
        {"\\\\?\\pipe\\", "\\Device\\NamedPipe"}, {"mailslot:", "\\Device\\MailSlot"},
        {"\\\\.\\mailslot\\", "\\Device\\MailSlot"}, {"\\\\?\\mailslot\\", "\\Device\\MailSlot"},
    };
    if (starts_with_globstar(in, n))
        return canonical_anywhere(in, n, out, err);
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t plen = strlen(prefixes[i].prefix);
        if (unit_starts_ci(in, n, prefixes[i].prefix)) {
            const uint16_t *rest = in + plen;
            size_t rest_len = n - plen;
            if (rest_len > 0 && rest[0] == '\\') { /* "pipe:\name" */
                rest++;
                rest_len--;
            }
            return rooted(out, prefixes[i].root, NULL, rest, rest_len, 1, err);
        }
    }
    if (unit_starts_ci(in, n, "class:")) {
        ustr *form = &out->forms[out->count++];
        if (n == 6)
            return fvm_error_set(err, FVM_E_INVALID, "a window class name is missing after 'class:'");
        for (size_t i = 6; i < n; i++)
            if (in[i] == '\\' && (i == 6 || i + 1 == n || in[i + 1] == '\\'))
                return fvm_error_set(err, FVM_E_INVALID, "empty name in a window class pattern");
        if (!ustr_put_ascii(form, "class:") || !ustr_put(form, in + 6, n - 6))
            return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
        return FVM_OK;
    }
    if (n > 0 && in[0] == '\\') {
        if (n == 1)
            return fvm_error_set(err, FVM_E_INVALID, "the object root '\\' alone is not a name");
        return rooted(out, "", NULL, in + 1, n - 1, 1, err);
    }
    /* "Global\", "Local\", "Session\N\" or none, read as the runtime reads
     * the links they stand for (core/objname.c); an unprefixed name is what
     * CreateMutex("Foo") means: the session's namespace. */
    objname_root scope;
    if (!objname_win32_root(in, n, &scope))
        return fvm_error_set(err, FVM_E_INVALID, "'Session\\' must be followed by a session number and a name");
    const uint16_t *rest = in + scope.rest;
    size_t rest_len = n - scope.rest;
    if (scope.scope == OBJNAME_SCOPE_GLOBAL)
        return rooted(out, "\\BaseNamedObjects", NULL, rest, rest_len, 1, err);
    if (scope.scope == OBJNAME_SCOPE_NUMBERED) {
        char root[48] = "\\Sessions\\", digits[12];
        size_t d = 0, k = strlen(root);
        uint32_t v = scope.session;
        do {
            digits[d++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (d)
            root[k++] = digits[--d];
        root[k] = 0;
        strcat(root, "\\BaseNamedObjects");
        return rooted(out, root, NULL, rest, rest_len, 1, err);
    }
    return rooted(out, "", session, rest, rest_len, 1, err);
}

/* Reserved types: the name as written, components checked. */
static fvm_status canonical_generic(const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    if (starts_with_globstar(in, n))
        return canonical_anywhere(in, n, out, err);
    ustr *form = &out->forms[out->count++];
    if (n > 0 && in[0] == '\\') {
        if (n == 1)
            return fvm_error_set(err, FVM_E_INVALID, "'\\' alone is not a name");
        return append_names(form, in + 1, n - 1, err);
    }
    size_t first = 0;
    while (first < n && in[first] != '\\')
        first++;
    if (first == 0)
        return fvm_error_set(err, FVM_E_INVALID, "empty name");
    if (!ustr_put(form, in, first))
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    return append_names(form, in + first + (first < n), n - first - (first < n), err);
}

/* [process] "sha256:<hex>": core/policy_process.c checks and forms it. */
static fvm_status canonical_process_hash(const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    uint16_t form[POLICY_PROCESS_HASH_UNITS];
    size_t len = policy_process_hash_form(in, n, form, NULL, err);
    if (!len)
        return FVM_E_INVALID;
    return ustr_put(&out->forms[out->count++], form, len) ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
}

/* [net]: core/netrules.c checks the pattern; the blob keeps it as written
 * and each process parses its rules from there (runtime/net.c). */
static fvm_status canonical_net(const uint16_t *in, size_t n, canonical *out, fvm_error *err)
{
    net_rule rule;
    if (net_rule_parse(in, n, &rule, &out->bad_at, err) != FVM_OK)
        return FVM_E_INVALID;
    return ustr_put(&out->forms[out->count++], in, n) ? FVM_OK : fvm_error_set(err, FVM_E_NOMEM, "out of memory");
}

fvm_status canonicalize(const policy_env *env, policy_type type, const uint16_t *in, size_t n, ntpath *scratch,
                        canonical *out, fvm_error *err)
{
    memset(out, 0, sizeof *out);
    fvm_status st;
    if (n == 0)
        st = fvm_error_set(err, FVM_E_INVALID, "empty pattern");
    else if (type == POLICY_TYPE_PROCESS && policy_process_is_hash(in, n))
        st = canonical_process_hash(in, n, out, err);
    else if (type == POLICY_TYPE_FILE || type == POLICY_TYPE_PROCESS)   /* programs by image path */
        st = canonical_file(env, in, n, scratch, out, err);
    else if (type == POLICY_TYPE_KEY)
        st = canonical_key(env, in, n, out, err);
    else if (type == POLICY_TYPE_OBJECT)
        st = canonical_object(env, in, n, out, err);
    else if (type == POLICY_TYPE_NET)
        st = canonical_net(in, n, out, err);
    else
        st = canonical_generic(in, n, out, err);
    for (size_t i = 0; st == FVM_OK && i < out->count; i++) {
        if (out->forms[i].len == 0 || !out->forms[i].units)
            st = fvm_error_set(err, FVM_E_INVALID, "no name left in the pattern");
        else if (out->forms[i].len > NTPATH_MAX_UNITS)
            st = fvm_error_set(err, FVM_E_RANGE, "longer than %u characters", NTPATH_MAX_UNITS);
    }
    if (st != FVM_OK) {
        size_t bad_at = out->bad_at;
        canonical_free(out);
        out->bad_at = bad_at;
    }
    return st;
}

/* Collapses "**\**" into "**", checks that "**" stands alone between
 * backslashes and counts what precedence looks at. Components are split at
 * every backslash, so a leading one is an empty first name and stays. */
fvm_status analyze_pattern(ustr *form, policy_pattern *counts, fvm_error *err)
{
    uint16_t *u = form->units;
    size_t n = form->len, w = 0, written = 0;
    int previous_globstar = 0;
    counts->literal_chars = counts->globstars = counts->stars = counts->qmarks = 0;
    for (size_t start = 0;;) {
        size_t end = start;
        while (end < n && u[end] != '\\')
            end++;
        policy_component_kind kind = policy_component_classify(u + start, end - start);
        if (!(kind == POLICY_COMPONENT_GLOBSTAR && previous_globstar)) {
            if (written == POLICY_MAX_COMPONENTS)
                return fvm_error_set(err, FVM_E_RANGE, "more than %u names in one pattern", POLICY_MAX_COMPONENTS);
            if (kind == POLICY_COMPONENT_GLOBSTAR) {
                counts->globstars++;
            } else if (kind == POLICY_COMPONENT_LITERAL) {
                counts->literal_chars += (uint32_t)(end - start);
            } else {
                for (size_t i = start; i < end; i++) {
                    if (u[i] == '*' && i + 1 < end && u[i + 1] == '*')
                        return fvm_error_set(err, FVM_E_INVALID, "'**' must be a whole name between backslashes "
                                             "(use '*' inside a name)");
                    if (u[i] == '*')
                        counts->stars++;
                    else if (u[i] == '?')
                        counts->qmarks++;
                    else
                        counts->literal_chars++;
                }
            }
            if (written++ > 0)
                u[w++] = '\\';
            memmove(u + w, u + start, (end - start) * sizeof *u);
            w += end - start;
        }
        previous_globstar = kind == POLICY_COMPONENT_GLOBSTAR;
        if (end == n)
            break;
        start = end + 1;
    }
    u[w] = 0;
    form->len = w;
    return FVM_OK;
}

#else
typedef int policy_canonical_not_in_runtime;
#endif
