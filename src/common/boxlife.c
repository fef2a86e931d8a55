/* boxlife.c - a box's life cycle: create, stop, remove, discard, weigh.
 * See boxlife.h. The front ends (fvm.exe, the SDK, the broker) only parse
 * their arguments and show boxlife_error's message; what a box is on disk,
 * and in what order its pieces are made and removed, is decided here once.
 *
 * Order matters for crash safety: create writes box.ini last (a folder
 * without it is not a box, and a failed create removes the folder); remove
 * deletes the registry tree first and the folder last; discard deletes the
 * index first, since without it nothing claims the box's copies. */
#include "common/boxlife.h"
#include "common/boxserver.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/boxcfg.h"
#include "common/inject.h"
#include "common/policyload.h"
#include "common/regstore.h"

/* ---- errors ------------------------------------------------------------------------------- */

static fvm_status fail(boxlife_error *err, fvm_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fvm_status fail(boxlife_error *err, fvm_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->status = status;
        err->win32 = 0;
    }
    return status;
}

/* "<what>: <Windows message> (error N)", status FVM_E_IO. */
static fvm_status fail_win(boxlife_error *err, DWORD code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fvm_status fail_win(boxlife_error *err, DWORD code, const char *fmt, ...)
{
    if (!err)
        return FVM_E_IO;
    char what[400], sys[200] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, sys,
                             sizeof sys, NULL);
    while (n && (sys[n - 1] == '\n' || sys[n - 1] == '\r' || sys[n - 1] == '.'))
        sys[--n] = 0;
    snprintf(err->message, sizeof err->message, "%s: %s (error %lu)", what, n ? sys : "system error",
             (unsigned long)code);
    err->status = FVM_E_IO;
    err->win32 = code;
    return FVM_E_IO;
}

static void utf8(const wchar_t *in, char *out, size_t cap)
{
    if (!WideCharToMultiByte(CP_UTF8, 0, in, -1, out, (int)cap, NULL, NULL) && cap)
        out[0] = 0;
    if (cap)
        out[cap - 1] = 0;
}

static void box_file(const wchar_t *box_path, const wchar_t *leaf, wchar_t *out)
{
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\%ls", box_path, leaf);
    out[FVM_PATH_MAX - 1] = 0;
}

BOOL boxlife_exists(const wchar_t *box_path)
{
    wchar_t ini[FVM_PATH_MAX];
    box_file(box_path, L"box.ini", ini);
    return GetFileAttributesW(ini) != INVALID_FILE_ATTRIBUTES;
}

/* ---- folders ------------------------------------------------------------------------------ */

/* Creates every missing folder of path. */
static BOOL make_dirs(const wchar_t *path)
{
    wchar_t buf[FVM_PATH_MAX];
    fvm_wcscpy(buf, FVM_PATH_MAX, path);
    for (wchar_t *p = buf + 3; *p; p++) {
        if (*p == L'\\') {
            *p = 0;
            if (!CreateDirectoryW(buf, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
                return FALSE;
            *p = L'\\';
        }
    }
    return CreateDirectoryW(buf, NULL) || GetLastError() == ERROR_ALREADY_EXISTS;
}

/* dir\leaf into out (FVM_PATH_MAX * 2 units: a box copy's path is the host
 * path below the box folder, so it can be longer than a host path). */
static BOOL child_path(const wchar_t *dir, const wchar_t *leaf, wchar_t *out)
{
    int n = _snwprintf(out, FVM_PATH_MAX * 2, L"%ls\\%ls", dir, leaf);
    if (n < 0 || n >= FVM_PATH_MAX * 2) {
        SetLastError(ERROR_FILENAME_EXCED_RANGE);
        return FALSE;
    }
    return TRUE;
}

BOOL boxlife_remove_tree(const wchar_t *dir)
{
    wchar_t pattern[FVM_PATH_MAX * 2], child[FVM_PATH_MAX * 2];
    WIN32_FIND_DATAW fd;
    if (!child_path(dir, L"*", pattern))
        return FALSE;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
                continue;
            BOOL ok = child_path(dir, fd.cFileName, child);
            if (ok && (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
                !(fd.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
                ok = boxlife_remove_tree(child);
            } else if (ok) {
                if (fd.dwFileAttributes & FILE_ATTRIBUTE_READONLY)
                    SetFileAttributesW(child, FILE_ATTRIBUTE_NORMAL);
                ok = DeleteFileW(child) || RemoveDirectoryW(child);
            }
            if (!ok) {
                DWORD e = GetLastError();
                FindClose(h);
                SetLastError(e);
                return FALSE;
            }
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    return RemoveDirectoryW(dir);
}

uint64_t boxlife_tree_size(const wchar_t *dir)
{
    wchar_t pattern[FVM_PATH_MAX * 2], child[FVM_PATH_MAX * 2];
    WIN32_FIND_DATAW fd;
    uint64_t total = 0;
    if (!child_path(dir, L"*", pattern))
        return 0;
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    do {
        if (!wcscmp(fd.cFileName, L".") || !wcscmp(fd.cFileName, L".."))
            continue;
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) {
            if (child_path(dir, fd.cFileName, child))
                total += boxlife_tree_size(child);
        } else {
            total += ((uint64_t)fd.nFileSizeHigh << 32) | fd.nFileSizeLow;
        }
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    return total;
}

/* ---- create ------------------------------------------------------------------------------- */

/* The part of full below dir, or NULL if full is not inside dir. */
static const wchar_t *path_below(const wchar_t *full, const wchar_t *dir)
{
    size_t n = wcslen(dir);
    if (!n || _wcsnicmp(full, dir, n) != 0 || full[n] != L'\\' || !full[n + 1])
        return NULL;
    return full + n + 1;
}

typedef struct diag_relay {
    const boxlife_options *opt;
    char first[400];
    unsigned errors;
} diag_relay;

static void relay_diag(void *ctx, const policy_diag *d)
{
    diag_relay *relay = ctx;
    if (d->severity == POLICY_DIAG_ERROR && relay->errors++ == 0)
        policy_diag_format(d, relay->first, sizeof relay->first);
    if (relay->opt->policy_diag)
        relay->opt->policy_diag(relay->opt->policy_diag_ctx, d);
}

/* Names of the box folder that a policy include must not take. */
static BOOL reserved_name(const wchar_t *rel)
{
    static const wchar_t *const reserved[] = {L"drive", L"unc", L"box.ini", L"audit.jsonl", L"audit.head",
                                              L"sync", L"registry.dat"};
    for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++) {
        size_t n = wcslen(reserved[r]);
        if (!_wcsnicmp(rel, reserved[r], n) && (!rel[n] || rel[n] == L'\\'))
            return TRUE;
    }
    return !_wcsnicmp(rel, L"index-", 6);
}

/* Copies a policy and every file it includes into the box, so the box is
 * self-contained: the top file becomes <box>\policy.ini and each include
 * keeps its place relative to it. Shipped templates stay where FVM ships
 * them. The policy is loaded first: a broken one is refused, with its
 * file:line:column. */
static fvm_status copy_policy_into_box(const wchar_t *box_path, const boxlife_options *opt, boxlife_error *err)
{
    wchar_t full[FVM_PATH_MAX], top_dir[FVM_PATH_MAX], target[FVM_PATH_MAX];
    char shown[FVM_PATH_MAX * 3], why[512];
    utf8(opt->policy_file, shown, sizeof shown);
    if (!GetFullPathNameW(opt->policy_file, FVM_PATH_MAX, full, NULL))
        return fail_win(err, GetLastError(), "cannot find policy file '%s'", shown);
    if (GetFileAttributesW(full) == INVALID_FILE_ATTRIBUTES)
        return fail_win(err, GetLastError(), "cannot read policy file '%s'", shown);
    fvm_policy_context *ctx = malloc(sizeof *ctx);
    if (!ctx || fvm_policy_context_init(ctx, why, sizeof why) != FVM_OK) {
        free(ctx);
        return fail(err, FVM_E_NOMEM, "cannot read policy file '%s': %s", shown, ctx ? why : "out of memory");
    }
    if (opt->shipped_dir)
        fvm_wcscpy(ctx->shipped_dir, FVM_PATH_MAX, opt->shipped_dir);
    diag_relay relay = {opt, "", 0};
    policy *loaded = NULL;
    fvm_status st = fvm_policy_load_with(ctx, full, &loaded, relay_diag, &relay, why, sizeof why);
    if (st != FVM_OK) {
        if (st == FVM_E_PARSE && relay.errors && !opt->policy_diag)   /* nobody was shown the first error */
            fail(err, FVM_E_PARSE, "cannot use policy file '%s': %s (%s)", shown, relay.first, why);
        else
            fail(err, st == FVM_E_PARSE ? FVM_E_PARSE : FVM_E_IO, "cannot use policy file '%s': %s", shown, why);
    } else {
        fvm_wcscpy(top_dir, FVM_PATH_MAX, full);
        wchar_t *slash = wcsrchr(top_dir, L'\\');
        if (slash)
            *slash = 0;
        for (size_t i = 0; i < ctx->file_count && st == FVM_OK; i++) {
            const wchar_t *file = ctx->files[i].full_path;
            const wchar_t *rel = path_below(file, top_dir);
            if (!_wcsicmp(file, full)) {
                box_file(box_path, L"policy.ini", target);
            } else if (path_below(file, ctx->shipped_dir)) {
                continue;   /* a shipped template: read from where FVM ships it */
            } else if (!rel) {
                st = fail(err, FVM_E_INVALID,
                          "policy include '%s' is outside the folder of '%s': put it there so the box can take a copy",
                          ctx->files[i].display, shown);
                break;
            } else if (reserved_name(rel)) {
                st = fail(err, FVM_E_INVALID, "policy include '%s' has a name FVM uses in the box folder; rename it",
                          ctx->files[i].display);
                break;
            } else {
                box_file(box_path, rel, target);
                wchar_t parent[FVM_PATH_MAX];
                fvm_wcscpy(parent, FVM_PATH_MAX, target);
                *wcsrchr(parent, L'\\') = 0;
                if (!make_dirs(parent)) {
                    st = fail_win(err, GetLastError(), "cannot make a folder for policy include '%s'",
                                  ctx->files[i].display);
                    break;
                }
            }
            if (!CopyFileW(file, target, FALSE))
                st = fail_win(err, GetLastError(), "cannot copy policy file '%s' into the box", ctx->files[i].display);
        }
    }
    policy_free(loaded);
    fvm_policy_context_free(ctx);
    free(ctx);
    return st;
}

static BOOL write_new_text_file(const wchar_t *path, const char *text)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    DWORD written;
    BOOL ok = WriteFile(h, text, (DWORD)strlen(text), &written, NULL) && written == strlen(text);
    DWORD e = GetLastError();
    if (!CloseHandle(h))
        return FALSE;
    SetLastError(e);
    return ok;
}

/* box.ini's text: the [box] section with every setting of opt. Written in
 * one piece (then nothing else writes box.ini during create), so the file
 * that makes the folder a box is complete when it appears. */
BOOL boxlife_wants_own_server(const boxlife_options *opt)
{
    if (opt->own_server || opt->host_server)
        return opt->own_server;
    /* Only Wine has a server to give a box (no Windows has one to run). */
    if (!GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version"))
        return FALSE;
    wchar_t host[4];
    return !(GetEnvironmentVariableW(L"FVM_CREATE_HOST_SERVER", host, 4) == 1 && host[0] == L'1');
}

static fvm_status settings_text(const char *name, const boxlife_options *opt, char *out, size_t cap,
                                boxlife_error *err)
{
    SYSTEMTIME now;
    GetSystemTime(&now);
    /* A new box has a loopback port space of its own unless told (issue 11). */
    int n = snprintf(out, cap,
                     "; FVM box. Deleting this folder removes every trace of the box.\r\n"
                     "[box]\r\nname=%s\r\ncreated=%04u-%02u-%02uT%02u:%02u:%02uZ\r\nformat=1\r\nquota=%llu\r\n"
                     "net=%s\r\n",
                     name, now.wYear, now.wMonth, now.wDay, now.wHour, now.wMinute, now.wSecond,
                     (unsigned long long)opt->quota_bytes, opt->net_mode ? opt->net_mode : "isolated");
    if (opt->publish && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "publish=%s\r\n", opt->publish);
    if (opt->procs && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "procs=%lu\r\n", opt->procs);
    if (opt->confidential && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "confidential=yes\r\n");
    BOOL own_server = boxlife_wants_own_server(opt);
    if (opt->own_display && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "display=own\r\ndisplay_number=%d\r\n", opt->display_number);
    else if (n > 0 && (size_t)n < cap)
        /* A box on its own server sees a display of its own, shown in one
         * window on the user's (cli/ownserver_display.c), unless told to
         * share the user's; a box on the host's server shares it. */
        n += snprintf(out + n, cap - (size_t)n, "display=%s\r\n",
                      own_server && !opt->host_display ? "nested" : "host");
    if (n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, "server=%s\r\n", own_server ? "own" : "host");
    if (n < 0 || (size_t)n >= cap)
        return fail(err, FVM_E_RANGE, "box '%s': its settings do not fit box.ini", name);
    return FVM_OK;
}

fvm_status boxlife_create(const wchar_t *box_path, const char *name, const boxlife_options *opt,
                          boxlife_error *err)
{
    static const boxlife_options none = {0};
    if (!opt)
        opt = &none;
    if (boxlife_exists(box_path))
        return fail(err, FVM_E_EXISTS, "box '%s' already exists", name);
    char text[1024];
    fvm_status st = settings_text(name, opt, text, sizeof text, err);
    if (st != FVM_OK)
        return st;
    if (!make_dirs(box_path)) {
        char shown[FVM_PATH_MAX * 3];
        utf8(box_path, shown, sizeof shown);
        return fail_win(err, GetLastError(), "cannot create box folder '%s'", shown);
    }
    if (opt->policy_file && (st = copy_policy_into_box(box_path, opt, err)) != FVM_OK) {
        boxlife_remove_tree(box_path);
        return st;
    }
    /* box.ini last, but the limits go into it through the profile API (the
     * keys are box_limits_write's); so write it under a temporary name and
     * rename it into place when complete. */
    wchar_t ini[FVM_PATH_MAX], draft[FVM_PATH_MAX];
    box_file(box_path, L"box.ini", ini);
    box_file(box_path, L"box.ini.new", draft);
    BOOL ok = write_new_text_file(draft, text);
    DWORD e = ok ? 0 : GetLastError();
    for (int k = 0; ok && opt->limits && k < LIMIT_KEY_COUNT; k++) {
        if (opt->limits->value[k] && k != LIMIT_PROCS && !box_limits_write(draft, (limit_key)k, opt->limits->value[k])) {
            e = GetLastError();
            ok = FALSE;
            st = fail_win(err, e, "box '%s': cannot write %s to box.ini", name, limit_name((limit_key)k));
        }
    }
    if (ok && !MoveFileExW(draft, ini, 0)) {
        e = GetLastError();
        ok = FALSE;
    }
    if (!ok) {
        boxlife_remove_tree(box_path);
        return st != FVM_OK ? st : fail_win(err, e, "cannot write box.ini of box '%s'", name);
    }
    return FVM_OK;
}

/* ---- settings ----------------------------------------------------------------------------- */

static BOOL read_small_file(const wchar_t *path, char *out, size_t cap, size_t *len)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return FALSE;
    DWORD got = 0;
    BOOL ok = ReadFile(h, out, (DWORD)(cap - 1), &got, NULL);
    DWORD more = 0;
    char probe;
    if (ok && got == cap - 1 && ReadFile(h, &probe, 1, &more, NULL) && more) {
        ok = FALSE;
        SetLastError(ERROR_FILE_TOO_LARGE);
    }
    DWORD e = GetLastError();
    CloseHandle(h);
    SetLastError(e);
    *len = got;
    out[got] = 0;
    return ok;
}

/* Does line (without its end) set key ("key =" or "key=", any case)? */
static BOOL line_sets(const char *line, size_t n, const char *key)
{
    size_t k = strlen(key), i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (n - i < k || _strnicmp(line + i, key, k))
        return FALSE;
    i += k;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i < n && line[i] == '=';
}

fvm_status boxlife_set_setting(const wchar_t *box_path, const char *name, const char *key, const char *value,
                               boxlife_error *err)
{
    wchar_t ini[FVM_PATH_MAX], draft[FVM_PATH_MAX];
    box_file(box_path, L"box.ini", ini);
    box_file(box_path, L"box.ini.set", draft);
    static char text[16384], out[16384 + 600];
    size_t len;
    if (!read_small_file(ini, text, sizeof text, &len)) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
            return fail(err, FVM_E_NOTFOUND, "no box '%s'", name);
        return fail_win(err, e, "cannot read box.ini of box '%s'", name);
    }
    if (len >= 2 && (uint8_t)text[0] == 0xff && (uint8_t)text[1] == 0xfe)
        return fail(err, FVM_E_IO, "box '%s': box.ini is UTF-16, which fvm does not rewrite", name);
    char line_new[600] = "";
    if (value && snprintf(line_new, sizeof line_new, "%s=%s\r\n", key, value) >= (int)sizeof line_new)
        return fail(err, FVM_E_RANGE, "box '%s': the value of %s is too long", name, key);
    /* Copy line by line: the key's line in [box] replaced (or dropped), or
     * the key added at the end of [box]. */
    size_t o = 0, at = 0;
    BOOL in_box = FALSE, done = FALSE, had_box = FALSE;
    while (at < len) {
        size_t end = at;
        while (end < len && text[end] != '\n')
            end++;
        size_t next = end < len ? end + 1 : end;
        size_t n = end - at;
        if (n && text[at + n - 1] == '\r')
            n--;
        const char *line = text + at;
        size_t lead = 0;
        while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        if (lead < n && line[lead] == '[') {
            if (in_box && !done) {   /* the end of [box]: the key goes here */
                memcpy(out + o, line_new, strlen(line_new));
                o += strlen(line_new);
                done = TRUE;
            }
            in_box = n - lead >= 5 && !_strnicmp(line + lead, "[box]", 5);
            had_box |= in_box;
        } else if (in_box && line_sets(line, n, key)) {
            if (!done) {
                memcpy(out + o, line_new, strlen(line_new));
                o += strlen(line_new);
                done = TRUE;
            }
            at = next;
            continue;
        }
        memcpy(out + o, text + at, next - at);
        o += next - at;
        if (next == len && n && text[len - 1] != '\n') {   /* a last line without its end */
            memcpy(out + o, "\r\n", 2);
            o += 2;
        }
        at = next;
    }
    if (!done) {
        if (!had_box) {
            memcpy(out + o, "[box]\r\n", 7);
            o += 7;
        }
        memcpy(out + o, line_new, strlen(line_new));
        o += strlen(line_new);
    }
    out[o] = 0;
    DeleteFileW(draft);   /* a draft a crash left */
    if (!write_new_text_file(draft, out)) {
        DWORD e = GetLastError();
        DeleteFileW(draft);
        return fail_win(err, e, "cannot write box.ini of box '%s'", name);
    }
    if (!MoveFileExW(draft, ini, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DWORD e = GetLastError();
        DeleteFileW(draft);
        return fail_win(err, e, "cannot replace box.ini of box '%s'", name);
    }
    return FVM_OK;
}

/* ---- running boxes ------------------------------------------------------------------------ */

int boxlife_job_pids(HANDLE job, ULONG_PTR *pids, int cap)
{
    _Static_assert(offsetof(JOBOBJECT_BASIC_PROCESS_ID_LIST, ProcessIdList) == sizeof(ULONG_PTR),
                   "pids follow the two counts");
    ULONG_PTR *ids = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, (1 + (size_t)cap) * sizeof *ids);
    if (!ids)
        return -1;
    int listed = -1;
    if (QueryInformationJobObject(job, JobObjectBasicProcessIdList, ids, (DWORD)((1 + (size_t)cap) * sizeof *ids),
                                  NULL) ||
        GetLastError() == ERROR_MORE_DATA) {
        listed = (int)((const JOBOBJECT_BASIC_PROCESS_ID_LIST *)ids)->NumberOfProcessIdsInList;
        if (listed > cap)
            listed = cap;
        memcpy(pids, ids + 1, (size_t)listed * sizeof *pids);
    }
    HeapFree(GetProcessHeap(), 0, ids);
    return listed;
}

/* The live members of the job into *live (boxlife_job_live_processes);
 * FALSE if the job cannot be queried at all. */
static BOOL job_live_processes(HANDLE job, DWORD *live)
{
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    *live = 0;
    if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL))
        return FALSE;
    if (acct.ActiveProcesses == 0)
        return TRUE;
    ULONG_PTR pids[256];
    int listed = boxlife_job_pids(job, pids, 256);
    if (listed < 0 || (DWORD)listed < acct.ActiveProcesses) {
        *live = acct.ActiveProcesses;   /* no full list: the job's own count */
        return TRUE;
    }
    for (int i = 0; i < listed; i++) {
        HANDLE process = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)pids[i]);
        if (!process) {
            *live += GetLastError() != ERROR_INVALID_PARAMETER;   /* not gone: cannot tell, so live */
            continue;
        }
        *live += WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
        CloseHandle(process);
    }
    return TRUE;
}

DWORD boxlife_job_live_processes(HANDLE job)
{
    DWORD live;
    job_live_processes(job, &live);
    return live;
}

DWORD boxlife_process_count(const wchar_t *box_path)
{
    wchar_t job_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, job_name);
    if (!job)   /* the broker owns the job while the box runs: no job, no process */
        return boxserver_busy(box_path) ? 1 : 0;   /* a box with its own server: its job is out of sight, count 1 */
    DWORD count = boxlife_job_live_processes(job);
    CloseHandle(job);
    return count;
}

/* Terminates the job's started members one by one; TRUE if one was left
 * for a later round because it had not started, unless `all`. A member
 * that cannot be looked at (no list, no access) is left to the job's own
 * kill, unless a member that has not started is in the job this round. */
static BOOL terminate_started_members(HANDLE job, BOOL all)
{
    ULONG_PTR pids[256];
    int listed = boxlife_job_pids(job, pids, 256);
    if (listed < 0) {
        TerminateJobObject(job, 1);
        return FALSE;
    }
    BOOL left = FALSE, unexamined = FALSE;
    for (int i = 0; i < listed; i++) {
        /* Wine's IsProcessInJob wants the full query right. */
        HANDLE process = OpenProcess(PROCESS_TERMINATE | PROCESS_QUERY_INFORMATION | SYNCHRONIZE, FALSE,
                                     (DWORD)pids[i]);
        if (!process) {
            unexamined |= GetLastError() != ERROR_INVALID_PARAMETER;   /* that one is gone already */
            continue;
        }
        BOOL in_job = FALSE;   /* pids are reused: act only on a member */
        if (!IsProcessInJob(process, job, &in_job))
            unexamined = TRUE;
        else if (!in_job || WaitForSingleObject(process, 0) != WAIT_TIMEOUT)
            ;   /* not ours, or nothing of it runs (boxlife_job_live_processes) */
        else if (!all && fvm_process_not_started(process))
            left = TRUE;
        else
            TerminateProcess(process, 1);
        CloseHandle(process);
    }
    if (unexamined && !left)
        TerminateJobObject(job, 1);
    return left;
}

#define STOP_START_GRACE_MS 2000

fvm_status boxlife_stop(const wchar_t *box_path, const char *name, DWORD wait_ms, boxlife_error *err)
{
    wchar_t job_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_TERMINATE | JOB_OBJECT_QUERY, FALSE, job_name);
    if (!job && boxserver_pid(box_path)) {
        /* A box with a Wine server of its own, seen from outside it: its
         * job is that server's. Ending the server ends every process of
         * the box; their registry changes of this run are lost (fvm stop
         * stops such a box from inside its server instead, cli/ownserver.c). */
        return boxserver_kill(box_path, wait_ms) ? FVM_OK
                                                 : fail(err, FVM_E_BUSY, "the Wine server of box '%s' did not end", name);
    }
    if (!job)
        return FVM_OK;   /* no broker, no processes */
    /* A process tree that keeps spawning adds members while we terminate;
     * they join the same job, so repeat until it is empty. */
    DWORD start = GetTickCount();
    for (;;) {
        DWORD live;
        if (!job_live_processes(job, &live)) {
            DWORD e = GetLastError();
            CloseHandle(job);
            return fail_win(err, e, "cannot query the processes of box '%s'", name);
        }
        if (live == 0)
            break;
        if (GetTickCount() - start > wait_ms) {
            CloseHandle(job);
            return fail(err, FVM_E_BUSY, "box '%s' still has %lu processes after %lu ms", name,
                        (unsigned long)live, (unsigned long)wait_ms);
        }
        /* A member still not started after STOP_START_GRACE_MS is stuck
         * (a loaded machine could in theory be that slow; then Wine's
         * crash is the risk taken): terminated as it is, or the box never
         * ends. */
        BOOL all = GetTickCount() - start > STOP_START_GRACE_MS;
        Sleep(terminate_started_members(job, all) ? 5 : 20);
    }
    CloseHandle(job);
    return FVM_OK;
}

/* Waits until the box's broker has exited: its last act, under the box
 * lock, is saving the registry and deleting the live tree, then closing its
 * ready event, so nothing of the box changes after this. */
static fvm_status wait_broker_gone(const wchar_t *box_path, const char *name, DWORD wait_ms, boxlife_error *err)
{
    wchar_t ready_name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(box_path, FVM_OBJ_READY, ready_name, FVM_OBJ_NAME_MAX);
    for (DWORD start = GetTickCount();; Sleep(20)) {
        HANDLE ready = OpenEventW(SYNCHRONIZE, FALSE, ready_name);
        if (!ready)
            return FVM_OK;
        CloseHandle(ready);
        if (GetTickCount() - start > wait_ms)
            return fail(err, FVM_E_BUSY, "the broker of box '%s' is still running after %lu ms", name,
                        (unsigned long)wait_ms);
    }
}

fvm_status boxlife_stop_unless_running(const wchar_t *box_path, const char *name, BOOL force, boxlife_error *err)
{
    DWORD procs = boxlife_process_count(box_path);
    if (procs && !force)
        return fail(err, FVM_E_BUSY, "box '%s' is running (%lu processes); stop it first or use --force", name,
                    (unsigned long)procs);
    fvm_status st = procs ? boxlife_stop(box_path, name, 10000, err) : FVM_OK;
    return st != FVM_OK ? st : wait_broker_gone(box_path, name, 10000, err);
}

/* ---- removing ----------------------------------------------------------------------------- */

/* The box's registry delta: its live tree (left by a broker that died, as
 * a running box's broker deletes its own when it exits), then registry.dat. */
static fvm_status remove_registry(const wchar_t *box_path, const char *name, boxlife_error *err)
{
    if (!regstore_delete_box_tree(box_path))
        return fail(err, FVM_E_IO, "cannot delete the registry tree of box '%s'", name);
    wchar_t file[FVM_PATH_MAX];
    regstore_file_path(box_path, file, FVM_PATH_MAX);
    if (!DeleteFileW(file) && GetLastError() != ERROR_FILE_NOT_FOUND)
        return fail_win(err, GetLastError(), "cannot delete the registry file of box '%s'", name);
    return FVM_OK;
}

fvm_status boxlife_remove(const wchar_t *box_path, const char *name, BOOL force, boxlife_error *err)
{
    if (!boxlife_exists(box_path))
        return fail(err, FVM_E_NOTFOUND, "no box named '%s'", name);
    fvm_status st = boxlife_stop_unless_running(box_path, name, force, err);
    if (st == FVM_OK)
        st = remove_registry(box_path, name, err);
    if (st != FVM_OK)
        return st;
    /* A box's own server lingering after its last process (ownserver.c) ends now. */
    boxserver_kill(box_path, 3000);
    /* Files of processes that just ended may stay open a moment. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (boxlife_remove_tree(box_path)) {
            boxserver_remove_files(box_path);   /* what a box with its own Wine server leaves beside the boxes */
            return FVM_OK;
        }
        Sleep(100);
    }
    return fail_win(err, GetLastError(), "cannot remove every file of box '%s'", name);
}

fvm_status boxlife_discard_delta(const wchar_t *box_path, const char *name, boxlife_error *err)
{
    wchar_t path[FVM_PATH_MAX], pattern[FVM_PATH_MAX];
    WIN32_FIND_DATAW fd;
    box_file(box_path, L"index-*.fvm", pattern);
    HANDLE h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            box_file(box_path, fd.cFileName, path);
            if (!DeleteFileW(path)) {
                DWORD e = GetLastError();
                FindClose(h);
                return fail_win(err, e, "cannot delete the index of box '%s'", name);
            }
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    static const wchar_t *const trees[] = {L"drive", L"unc"};
    for (size_t i = 0; i < 2; i++) {
        box_file(box_path, trees[i], path);
        if (GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES && !boxlife_remove_tree(path))
            return fail_win(err, GetLastError(), "cannot delete the changes of box '%s'", name);
    }
    return remove_registry(box_path, name, err);
}
