/* policyload.c - reading a policy file on Windows: the core parser's file
 * reader, variables, SID, session and volume table (see policyload.h).
 *
 * The idea: the core asks for every file by the name written in the policy
 * and gets back text plus a "resolved" name; all it knows of a file is that
 * name. So this reader is where files get their identity (the full path)
 * and their short display name, and it keeps the two in a small table for
 * the duration of one load: an include is resolved relative to its
 * includer's real folder, found again from the includer's display name. */
#ifndef FVM_RUNTIME

#include "common/policyload.h"

#include <sddl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* A policy this large is a mistake (10,000 rules take well under 1 MB). */
#define POLICY_FILE_MAX_BYTES (64u << 20)

static void set_why(char *why, size_t why_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_size, const char *fmt, ...)
{
    if (!why || !why_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

static void to_utf8(const wchar_t *in, char *out, size_t cap)
{
    if (!WideCharToMultiByte(CP_UTF8, 0, in, -1, out, (int)cap, NULL, NULL))
        out[0] = 0;
}

/* The system's text for a Windows error code, without the trailing period. */
static void win_message(DWORD code, char *out, size_t cap)
{
    wchar_t wmsg[256];
    if (!FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, wmsg, 256, NULL))
        wmsg[0] = 0;
    to_utf8(wmsg, out, cap);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '.'))
        out[--n] = 0;
    if (!n)
        snprintf(out, cap, "error %lu", (unsigned long)code);
}

/* ---- the environment --------------------------------------------------------- */

/* The variables a policy may use from the environment: Windows' standard
 * folders and identity, the ones programs themselves rely on. */
static const wchar_t *const policy_env_vars[] = {
    L"USERPROFILE", L"APPDATA", L"LOCALAPPDATA", L"TEMP", L"TMP",
    L"SystemRoot", L"windir", L"SystemDrive",
    L"ProgramFiles", L"ProgramFiles(x86)", L"ProgramW6432",
    L"CommonProgramFiles", L"CommonProgramFiles(x86)", L"CommonProgramW6432",
    L"ProgramData", L"ALLUSERSPROFILE", L"PUBLIC",
    L"HOMEDRIVE", L"HOMEPATH", L"USERNAME", L"USERDOMAIN", L"COMPUTERNAME",
    L"OneDrive",
};

static fvm_status load_vars(fvm_policy_context *ctx, char *why, size_t why_size)
{
    size_t count = sizeof policy_env_vars / sizeof policy_env_vars[0];
    /* Two passes: measure, then copy into one block. */
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        wchar_t value[FVM_PATH_MAX];
        DWORD n = GetEnvironmentVariableW(policy_env_vars[i], value, FVM_PATH_MAX);
        if (n && n < FVM_PATH_MAX)
            total += wcslen(policy_env_vars[i]) * 3 + 1 + (size_t)n * 3 + 1;
    }
    ctx->var_text = malloc(total ? total : 1);
    if (!ctx->var_text) {
        set_why(why, why_size, "out of memory");
        return FVM_E_NOMEM;
    }
    char *at = ctx->var_text, *end = ctx->var_text + total;
    size_t used = 0;
    for (size_t i = 0; i < count && used < FVM_POLICY_MAX_VARS; i++) {
        wchar_t value[FVM_PATH_MAX];
        DWORD n = GetEnvironmentVariableW(policy_env_vars[i], value, FVM_PATH_MAX);
        if (!n || n >= FVM_PATH_MAX)
            continue;   /* unset (or absurdly long): the policy gets "unknown variable" */
        char *name = at;
        to_utf8(policy_env_vars[i], name, (size_t)(end - at));
        at += strlen(name) + 1;
        char *text = at;
        to_utf8(value, text, (size_t)(end - at));
        at += strlen(text) + 1;
        ctx->vars[used].name = name;
        ctx->vars[used].value = text;
        used++;
    }
    ctx->env.vars = ctx->vars;
    ctx->env.var_count = used;
    return FVM_OK;
}

/* "S-1-5-21-...", for HKCU. Left empty when the token cannot be read. */
static void load_user_sid(fvm_policy_context *ctx)
{
    HANDLE token;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
        return;
    union {
        TOKEN_USER user;
        BYTE bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } info;
    DWORD size;
    wchar_t *text;
    if (GetTokenInformation(token, TokenUser, &info, sizeof info, &size) &&
        ConvertSidToStringSidW(info.user.User.Sid, &text)) {
        to_utf8(text, ctx->user_sid, sizeof ctx->user_sid);
        LocalFree(text);
        if (ctx->user_sid[0])
            ctx->env.user_sid = ctx->user_sid;
    }
    CloseHandle(token);
}

/* Where Local\ and unprefixed object names live for this session. Session 0
 * (services) has no \Sessions\0 directory: its objects are in the global one. */
static void load_session(fvm_policy_context *ctx)
{
    DWORD session;
    if (!ProcessIdToSessionId(GetCurrentProcessId(), &session))
        return;
    if (session == 0)
        snprintf(ctx->session_objects, sizeof ctx->session_objects, "\\BaseNamedObjects");
    else
        snprintf(ctx->session_objects, sizeof ctx->session_objects, "\\Sessions\\%lu\\BaseNamedObjects",
                 (unsigned long)session);
    ctx->env.session_objects = ctx->session_objects;
}

/* Drive letters and the \Device\... volumes behind them, the system root and
 * the computer name: what file patterns in NT or UNC form need. */
static void load_path_context(fvm_policy_context *ctx)
{
    ntpath_context *pc = &ctx->path_ctx;
    memset(pc, 0, sizeof *pc);
    pc->input = NTPATH_INPUT_ANY;
    DWORD drives = GetLogicalDrives();
    size_t count = 0;
    for (int i = 0; i < 26; i++) {
        if (!(drives & (1u << i)))
            continue;
        wchar_t letter[3] = {(wchar_t)(L'A' + i), L':', 0};
        wchar_t target[64];
        /* The first target is the current one; only real volume devices
         * are what a \Device\HarddiskVolumeN pattern can mean. */
        if (!QueryDosDeviceW(letter, target, 64) || wcsncmp(target, L"\\Device\\", 8) != 0)
            continue;
        size_t n = wcslen(target);
        memcpy(ctx->volume_names[count], target, n * sizeof(wchar_t));
        ctx->volumes[count].device = ctx->volume_names[count];
        ctx->volumes[count].device_len = n;
        ctx->volumes[count].drive = (uint16_t)(L'A' + i);
        count++;
    }
    pc->volumes = ctx->volumes;
    pc->volume_count = count;
    UINT n = GetSystemWindowsDirectoryW((wchar_t *)ctx->system_root, MAX_PATH);
    if (n && n < MAX_PATH) {
        pc->system_root.units = ctx->system_root;
        pc->system_root.len = n;
    }
    DWORD name_len = 64;
    if (GetComputerNameW((wchar_t *)ctx->computer_name, &name_len) && name_len) {
        pc->computer_name.units = ctx->computer_name;
        pc->computer_name.len = name_len;
    }
    ctx->env.path_ctx = pc;
}

/* ---- the reader ----------------------------------------------------------------- */

fvm_status fvm_policy_shipped_dir(wchar_t *out, size_t cap)
{
    wchar_t exe[FVM_PATH_MAX];
    DWORD n = GetModuleFileNameW(NULL, exe, FVM_PATH_MAX);
    if (!n || n >= FVM_PATH_MAX)
        return FVM_E_RANGE;
    while (n && exe[n - 1] != L'\\')
        n--;
    exe[n] = 0;   /* keeps the backslash */
    if (!fvm_wcscpy(out, cap, exe) || !fvm_wcscat(out, cap, L"policy"))
        return FVM_E_RANGE;
    return FVM_OK;
}

fvm_status fvm_policy_box_path(const wchar_t *box_path, wchar_t *out, size_t cap)
{
    if (!fvm_wcscpy(out, cap, box_path) || !fvm_wcscat(out, cap, L"\\policy.ini"))
        return FVM_E_RANGE;
    if (GetFileAttributesW(out) != INVALID_FILE_ATTRIBUTES)
        return FVM_OK;
    fvm_status st = fvm_policy_shipped_dir(out, cap);
    if (st == FVM_OK && !fvm_wcscat(out, cap, L"\\default.ini"))
        st = FVM_E_RANGE;
    return st;
}

/* The folder part of a full path, without the final backslash ("C:\a" for
 * "C:\a\b.ini"; "C:\" keeps its backslash). */
static void folder_of(const wchar_t *full, wchar_t *out, size_t cap)
{
    fvm_wcscpy(out, cap, full);
    size_t n = wcslen(out);
    while (n && out[n - 1] != L'\\')
        n--;
    if (n == 3 && out[1] == L':')
        out[n] = 0;
    else if (n)
        out[n - 1] = 0;
}

/* The part of full below dir ("templates\x.ini"), or NULL if full is not
 * inside dir. */
static const wchar_t *below(const wchar_t *full, const wchar_t *dir)
{
    size_t n = wcslen(dir);
    if (!n || _wcsnicmp(full, dir, n) != 0)
        return NULL;
    if (dir[n - 1] == L'\\')
        return full[n] ? full + n : NULL;
    return full[n] == L'\\' && full[n + 1] ? full + n + 1 : NULL;
}

static fvm_policy_file *file_by_path(fvm_policy_context *ctx, const wchar_t *full)
{
    for (size_t i = 0; i < ctx->file_count; i++)
        if (!_wcsicmp(ctx->files[i].full_path, full))
            return &ctx->files[i];
    return NULL;
}

static fvm_policy_file *file_by_display(fvm_policy_context *ctx, const char *display)
{
    for (size_t i = 0; i < ctx->file_count; i++)
        if (!strcmp(ctx->files[i].display, display))
            return &ctx->files[i];
    return NULL;
}

/* Records a new file under the shortest name that is unambiguous. */
static fvm_status add_file(fvm_policy_context *ctx, const wchar_t *full, fvm_policy_file **out, fvm_error *err)
{
    if (ctx->file_count == FVM_POLICY_MAX_FILES)
        return fvm_error_set(err, FVM_E_RANGE, "more than %u policy files in one policy",
                             (unsigned)FVM_POLICY_MAX_FILES);
    fvm_policy_file *f = &ctx->files[ctx->file_count];
    f->full_path = _wcsdup(full);
    if (!f->full_path)
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    const wchar_t *candidates[3] = {below(full, ctx->top_dir), below(full, ctx->shipped_dir), full};
    f->display[0] = 0;
    for (int i = 0; i < 3; i++) {
        char name[POLICY_NAME_MAX * 2];
        if (!candidates[i])
            continue;
        to_utf8(candidates[i], name, sizeof name);
        if (!name[0] || strlen(name) >= POLICY_NAME_MAX || file_by_display(ctx, name))
            continue;
        strcpy(f->display, name);
        break;
    }
    if (!f->display[0]) {
        free(f->full_path);
        char name[FVM_PATH_MAX * 3];
        to_utf8(full, name, sizeof name);
        return fvm_error_set(err, FVM_E_RANGE, "path too long for a policy file (%lu bytes at most): %s",
                             (unsigned long)POLICY_NAME_MAX - 1, name);
    }
    ctx->file_count++;
    *out = f;
    return FVM_OK;
}

/* A whole file into a malloc'd buffer. what (may be NULL) says what was
 * looked for, for a better "not found" message. */
static fvm_status read_whole_file(const wchar_t *full, const char *what, char **text, size_t *len, fvm_error *err)
{
    char shown[FVM_PATH_MAX * 3], msg[256];
    to_utf8(full, shown, sizeof shown);
    DWORD attributes = GetFileAttributesW(full);
    if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY))
        return fvm_error_set(err, FVM_E_INVALID, "%s is a folder, not a file", shown);
    HANDLE h = CreateFileW(full, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND || e == ERROR_INVALID_NAME)
            return what ? fvm_error_set(err, FVM_E_NOTFOUND, "%s (no file %s)", what, shown)
                        : fvm_error_set(err, FVM_E_NOTFOUND, "no such file: %s", shown);
        win_message(e, msg, sizeof msg);
        return fvm_error_set(err, FVM_E_IO, "%s: %s", shown, msg);
    }
    LARGE_INTEGER size;
    if (!GetFileSizeEx(h, &size)) {
        win_message(GetLastError(), msg, sizeof msg);
        CloseHandle(h);
        return fvm_error_set(err, FVM_E_IO, "%s: %s", shown, msg);
    }
    if (size.QuadPart > POLICY_FILE_MAX_BYTES) {
        CloseHandle(h);
        return fvm_error_set(err, FVM_E_RANGE, "%s is larger than %u MB: not a policy", shown,
                             POLICY_FILE_MAX_BYTES >> 20);
    }
    size_t want = (size_t)size.QuadPart, got = 0;
    char *buf = malloc(want + 1);
    if (!buf) {
        CloseHandle(h);
        return fvm_error_set(err, FVM_E_NOMEM, "out of memory");
    }
    while (got < want) {
        DWORD n;
        if (!ReadFile(h, buf + got, (DWORD)(want - got), &n, NULL)) {
            win_message(GetLastError(), msg, sizeof msg);
            free(buf);
            CloseHandle(h);
            return fvm_error_set(err, FVM_E_IO, "%s: %s", shown, msg);
        }
        if (n == 0)
            break;   /* the file shrank meanwhile: read what is there */
        got += n;
    }
    CloseHandle(h);
    buf[got] = 0;
    *text = buf;
    *len = got;
    return FVM_OK;
}

static int is_absolute(const wchar_t *p)
{
    return (p[0] == L'\\' && p[1] == L'\\') || (p[0] == L'/' && p[1] == L'/') ||
           (p[0] && p[1] == L':' && (p[2] == L'\\' || p[2] == L'/'));
}

/* Where the file the core asks for is: its full path in `full`. */
static fvm_status locate(fvm_policy_context *ctx, policy_include_kind kind, const char *name, const char *from,
                         wchar_t *full, char *what, size_t what_cap, fvm_error *err)
{
    wchar_t wname[FVM_PATH_MAX], joined[FVM_PATH_MAX * 2];
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, wname, FVM_PATH_MAX))
        return fvm_error_set(err, FVM_E_INVALID, "bad or too long file name");
    what[0] = 0;
    switch (kind) {
    case POLICY_INCLUDE_TEMPLATE:
        /* A template is a name, not a path: it cannot reach outside the
         * shipped folder. */
        if (!wname[0] || wcspbrk(wname, L"\\/:*?\"<>|") || !wcscmp(wname, L".") || !wcscmp(wname, L".."))
            return fvm_error_set(err, FVM_E_INVALID, "a template is named by a plain name (like 'untrusted'), "
                                 "not a path");
        if (!_wcsicmp(wname, L"default"))
            _snwprintf(joined, FVM_PATH_MAX * 2, L"%ls\\default.ini", ctx->shipped_dir);
        else
            _snwprintf(joined, FVM_PATH_MAX * 2, L"%ls\\templates\\%ls.ini", ctx->shipped_dir, wname);
        snprintf(what, what_cap, "no shipped template '%s'", name);
        break;
    case POLICY_INCLUDE_FILE: {
        fvm_policy_file *includer = from ? file_by_display(ctx, from) : NULL;
        wchar_t dir[FVM_PATH_MAX];
        if (includer)
            folder_of(includer->full_path, dir, FVM_PATH_MAX);
        else
            fvm_wcscpy(dir, FVM_PATH_MAX, ctx->top_dir);
        if (is_absolute(wname)) {
            fvm_wcscpy(joined, FVM_PATH_MAX * 2, wname);
        } else if (wname[0] && wname[1] == L':') {
            return fvm_error_set(err, FVM_E_INVALID, "'%s' is relative to a drive's current folder: write a full "
                                 "path or one relative to the including file", name);
        } else if (wname[0] == L'\\' || wname[0] == L'/') {
            /* Rooted: on the includer's drive (not the current directory's). */
            _snwprintf(joined, FVM_PATH_MAX * 2, L"%.2ls%ls", dir, wname);
        } else {
            size_t n = wcslen(dir);
            _snwprintf(joined, FVM_PATH_MAX * 2, n && dir[n - 1] == L'\\' ? L"%ls%ls" : L"%ls\\%ls", dir, wname);
        }
        break;
    }
    default:
        fvm_wcscpy(joined, FVM_PATH_MAX * 2, wname);
        break;
    }
    joined[FVM_PATH_MAX * 2 - 1] = 0;
    DWORD n = GetFullPathNameW(joined, FVM_PATH_MAX, full, NULL);
    if (!n || n >= FVM_PATH_MAX)
        return fvm_error_set(err, FVM_E_RANGE, "path too long");
    return FVM_OK;
}

static fvm_status read_policy_source(void *vctx, policy_include_kind kind, const char *name, const char *from,
                                     char **text, size_t *len, char resolved[POLICY_NAME_MAX], fvm_error *err)
{
    fvm_policy_context *ctx = vctx;
    wchar_t full[FVM_PATH_MAX];
    char what[POLICY_NAME_MAX + 64];
    fvm_status st = locate(ctx, kind, name, from, full, what, sizeof what, err);
    if (st != FVM_OK)
        return st;
    if (kind == POLICY_INCLUDE_TOP)
        folder_of(full, ctx->top_dir, FVM_PATH_MAX);
    st = read_whole_file(full, what[0] ? what : NULL, text, len, err);
    if (st != FVM_OK)
        return st;
    fvm_policy_file *f = file_by_path(ctx, full);
    if (!f && (st = add_file(ctx, full, &f, err)) != FVM_OK) {
        free(*text);
        *text = NULL;
        return st;
    }
    snprintf(resolved, POLICY_NAME_MAX, "%s", f->display);
    return FVM_OK;
}

/* ---- the API ---------------------------------------------------------------------- */

static void forget_files(fvm_policy_context *ctx)
{
    for (size_t i = 0; i < ctx->file_count; i++)
        free(ctx->files[i].full_path);
    ctx->file_count = 0;
}

fvm_status fvm_policy_context_init(fvm_policy_context *ctx, char *why, size_t why_size)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->env.read = read_policy_source;
    ctx->env.read_ctx = ctx;
    if (fvm_policy_shipped_dir(ctx->shipped_dir, FVM_PATH_MAX) != FVM_OK) {
        set_why(why, why_size, "the path of this program is too long");
        return FVM_E_RANGE;
    }
    fvm_status st = load_vars(ctx, why, why_size);
    if (st != FVM_OK)
        return st;
    load_user_sid(ctx);
    load_session(ctx);
    load_path_context(ctx);
    return FVM_OK;
}

void fvm_policy_context_free(fvm_policy_context *ctx)
{
    forget_files(ctx);
    free(ctx->var_text);
    ctx->var_text = NULL;
    ctx->env.vars = NULL;
    ctx->env.var_count = 0;
}

fvm_status fvm_policy_load_with(fvm_policy_context *ctx, const wchar_t *path, policy **out, policy_diag_fn diag,
                                void *diag_ctx, char *why, size_t why_size)
{
    *out = NULL;
    forget_files(ctx);
    ctx->top_dir[0] = 0;
    char name[FVM_PATH_MAX * 3];
    to_utf8(path, name, sizeof name);
    if (!name[0]) {
        set_why(why, why_size, "no policy file named");
        return FVM_E_INVALID;
    }
    ctx->env.diag = diag;
    ctx->env.diag_ctx = diag_ctx;
    fvm_error err;
    fvm_status st = policy_load_file(name, &ctx->env, out, &err);
    if (st != FVM_OK)
        set_why(why, why_size, "%s", err.message);
    return st;
}

fvm_status fvm_policy_load(const wchar_t *path, policy **out, policy_diag_fn diag, void *diag_ctx, char *why,
                           size_t why_size)
{
    fvm_policy_context *ctx = malloc(sizeof *ctx);
    *out = NULL;
    if (!ctx) {
        set_why(why, why_size, "out of memory");
        return FVM_E_NOMEM;
    }
    fvm_status st = fvm_policy_context_init(ctx, why, why_size);
    if (st == FVM_OK)
        st = fvm_policy_load_with(ctx, path, out, diag, diag_ctx, why, why_size);
    fvm_policy_context_free(ctx);
    free(ctx);
    return st;
}

fvm_status fvm_policy_compile_file(const wchar_t *path, void **blob, size_t *blob_len, policy_diag_fn diag,
                                   void *diag_ctx, char *why, size_t why_size)
{
    policy *p;
    *blob = NULL;
    *blob_len = 0;
    fvm_status st = fvm_policy_load(path, &p, diag, diag_ctx, why, why_size);
    if (st != FVM_OK)
        return st;
    fvm_error err;
    st = policy_compile(p, blob, blob_len, &err);
    policy_free(p);
    if (st != FVM_OK)
        set_why(why, why_size, "%s", err.message);
    return st;
}

#else
typedef int policyload_not_in_runtime;
#endif
