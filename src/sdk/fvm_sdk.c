/* fvm_sdk.c - the FVM SDK (include/fvm/fvm.h): opening, box lifecycle and
 * policy evaluation. The audit stream is in sdk_audit.c.
 *
 * Create, remove and stop are library calls into common/boxlife.c, the same
 * code fvm.exe's verbs run, so the SDK and the CLI cannot drift; the SDK
 * checks what it can beforehand (box name, existence, the policy) to return
 * precise error codes. Only run starts fvm.exe: a boxed program is started
 * by fvm run's launcher (broker start, the box's job, injection before the
 * first instruction), which belongs in one process, and its standard error
 * becomes the message when it fails. Questions
 * that need no process are answered here with the code fvm.exe uses:
 * common/policyload.c and the core matcher for decisions, the box's job
 * object for its process count. */
#include "sdk/sdk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/boxlife.h"
#include "common/boxserver.h"
#include "common/brokerproto.h"
#include "common/policyload.h"
#include "core/boxname.h"

/* ---- errors and strings --------------------------------------------------------- */

fvm_result sdk_fail(fvm_sdk_error *err, fvm_result code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

fvm_result sdk_ok(fvm_sdk_error *err)
{
    if (err) {
        err->code = FVM_SDK_OK;
        err->message[0] = 0;
    }
    return FVM_SDK_OK;
}

/* "what: <Windows message> (error N)" with code FVM_SDK_E_SYSTEM. */
fvm_result sdk_win_fail(fvm_sdk_error *err, DWORD code, const char *what)
{
    wchar_t wmsg[256];
    char msg[512];
    if (!FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, wmsg, 256,
                        NULL))
        wmsg[0] = 0;
    sdk_utf8(wmsg, msg, sizeof msg);
    size_t n = strlen(msg);
    while (n && strchr("\r\n .", msg[n - 1]))
        msg[--n] = 0;
    return sdk_fail(err, FVM_SDK_E_SYSTEM, "%s: %s (error %lu)", what, n ? msg : "unknown error",
                    (unsigned long)code);
}

void sdk_utf8(const wchar_t *in, char *out, size_t cap)
{
    if (!WideCharToMultiByte(CP_UTF8, 0, in, -1, out, (int)cap, NULL, NULL))
        out[0] = 0;
}

BOOL sdk_wide(const char *in, wchar_t *out, size_t cap)
{
    if (!MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, in, -1, out, (int)cap)) {
        out[0] = 0;
        return FALSE;
    }
    return TRUE;
}

/* A full path without trailing backslashes (except "C:\"): the form the
 * CLI's box_root uses, so box object names hashed from it are the same. */
static BOOL normalise_dir(const wchar_t *in, wchar_t *out, size_t cap)
{
    DWORD n = GetFullPathNameW(in, (DWORD)cap, out, NULL);
    if (!n || n >= cap)
        return FALSE;
    while (n > 3 && out[n - 1] == L'\\')
        out[--n] = 0;
    return TRUE;
}

static BOOL env_dir(const wchar_t *var, wchar_t *out, size_t cap)
{
    wchar_t value[FVM_PATH_MAX];
    DWORD n = GetEnvironmentVariableW(var, value, FVM_PATH_MAX);
    return n && n < FVM_PATH_MAX && normalise_dir(value, out, cap);
}

/* ---- opening ----------------------------------------------------------------------- */

/* The environment block of every fvm.exe the SDK runs: the caller's, with
 * FVM_ROOT replaced by the SDK's root. */
static wchar_t *child_environment(const wchar_t *root)
{
    wchar_t *current = GetEnvironmentStringsW();
    if (!current)
        return NULL;
    size_t total = 0;
    for (const wchar_t *e = current; *e; e += wcslen(e) + 1)
        total += wcslen(e) + 1;
    size_t extra = wcslen(L"FVM_ROOT=") + wcslen(root) + 2;
    wchar_t *block = malloc((total + extra) * sizeof *block), *w = block;
    if (block) {
        for (const wchar_t *e = current; *e; e += wcslen(e) + 1) {
            if (!_wcsnicmp(e, L"FVM_ROOT=", 9))
                continue;
            size_t len = wcslen(e) + 1;
            memcpy(w, e, len * sizeof *w);
            w += len;
        }
        w += swprintf(w, extra, L"FVM_ROOT=%ls", root) + 1;
        *w = 0;
    }
    FreeEnvironmentStringsW(current);
    return block;
}

fvm_result fvm_sdk_open(const wchar_t *fvm_exe_dir, const wchar_t *fvm_root, fvm_sdk **out, fvm_sdk_error *err)
{
    if (!out)
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_sdk_open: out is NULL");
    *out = NULL;
    fvm_sdk *sdk = calloc(1, sizeof *sdk);
    if (!sdk)
        return sdk_fail(err, FVM_SDK_E_NOMEM, "fvm_sdk_open: out of memory");

    BOOL have_dir;
    if (fvm_exe_dir)
        have_dir = normalise_dir(fvm_exe_dir, sdk->exe_dir, FVM_PATH_MAX);
    else if (!(have_dir = env_dir(L"FVM_HOME", sdk->exe_dir, FVM_PATH_MAX))) {
        /* The module the SDK is linked into: an SDK client shipped next to
         * fvm.exe needs no configuration. */
        HMODULE self = NULL;
        wchar_t path[FVM_PATH_MAX];
        DWORD n = 0;
        if (GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                               (LPCWSTR)(void *)&fvm_sdk_open, &self))
            n = GetModuleFileNameW(self, path, FVM_PATH_MAX);
        if (n && n < FVM_PATH_MAX) {
            while (n && path[n - 1] != L'\\')
                n--;
            path[n] = 0;
            have_dir = normalise_dir(path, sdk->exe_dir, FVM_PATH_MAX);
        }
    }
    if (!have_dir) {
        free(sdk);
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_sdk_open: cannot resolve the FVM folder (path too long?)");
    }
    _snwprintf(sdk->fvm_exe, FVM_PATH_MAX, L"%ls\\fvm.exe", sdk->exe_dir);
    sdk->fvm_exe[FVM_PATH_MAX - 1] = 0;
    if (GetFileAttributesW(sdk->fvm_exe) == INVALID_FILE_ATTRIBUTES) {
        char shown[FVM_PATH_MAX * 3];
        sdk_utf8(sdk->fvm_exe, shown, sizeof shown);
        free(sdk);
        return sdk_fail(err, FVM_SDK_E_NOTFOUND,
                        "fvm_sdk_open: no %s (pass the FVM folder or set FVM_HOME)", shown);
    }

    BOOL have_root = fvm_root ? normalise_dir(fvm_root, sdk->root, FVM_PATH_MAX)
                              : env_dir(L"FVM_ROOT", sdk->root, FVM_PATH_MAX);
    if (!have_root && !fvm_root)
        have_root = normalise_dir(L"C:\\FVM", sdk->root, FVM_PATH_MAX);
    if (!have_root) {
        free(sdk);
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_sdk_open: bad FVM root");
    }
    sdk->child_env = child_environment(sdk->root);
    if (!sdk->child_env) {
        free(sdk);
        return sdk_fail(err, FVM_SDK_E_NOMEM, "fvm_sdk_open: cannot copy the environment");
    }
    *out = sdk;
    return sdk_ok(err);
}

void fvm_sdk_close(fvm_sdk *sdk)
{
    if (!sdk)
        return;
    free(sdk->child_env);
    free(sdk);
}

const wchar_t *fvm_sdk_exe_dir(const fvm_sdk *sdk)
{
    return sdk ? sdk->exe_dir : NULL;
}

const wchar_t *fvm_sdk_root(const fvm_sdk *sdk)
{
    return sdk ? sdk->root : NULL;
}

/* ---- boxes ---------------------------------------------------------------------------- */

fvm_result sdk_box_path(const fvm_sdk *sdk, const char *name, wchar_t *out, fvm_sdk_error *err)
{
    if (!sdk || !name)
        return sdk_fail(err, FVM_SDK_E_INVALID, "no SDK handle or no box name");
    fvm_error e;
    if (fvm_box_name_validate(name, &e) != FVM_OK)
        return sdk_fail(err, FVM_SDK_E_INVALID, "bad box name: %s", e.message);
    wchar_t wname[FVM_BOX_NAME_MAX];
    sdk_wide(name, wname, FVM_BOX_NAME_MAX);
    int n = _snwprintf(out, FVM_PATH_MAX, L"%ls\\boxes\\%ls", sdk->root, wname);
    if (n < 0 || n >= FVM_PATH_MAX)
        return sdk_fail(err, FVM_SDK_E_INVALID, "box '%s': the path is too long", name);
    return FVM_SDK_OK;
}

static BOOL box_present(const wchar_t *box_path)
{
    wchar_t ini[FVM_PATH_MAX];
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", box_path);
    ini[FVM_PATH_MAX - 1] = 0;
    return GetFileAttributesW(ini) != INVALID_FILE_ATTRIBUTES;
}

/* The box's path, failing with NOTFOUND when the box does not exist. */
fvm_result sdk_existing_box(const fvm_sdk *sdk, const char *name, wchar_t *out, fvm_sdk_error *err)
{
    fvm_result r = sdk_box_path(sdk, name, out, err);
    if (r != FVM_SDK_OK)
        return r;
    if (!box_present(out))
        return sdk_fail(err, FVM_SDK_E_NOTFOUND, "no box named '%s'", name);
    return FVM_SDK_OK;
}

fvm_result fvm_box_exists(fvm_sdk *sdk, const char *name, int *exists, fvm_sdk_error *err)
{
    wchar_t path[FVM_PATH_MAX];
    if (!exists)
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_box_exists: exists is NULL");
    *exists = 0;
    fvm_result r = sdk_box_path(sdk, name, path, err);
    if (r != FVM_SDK_OK)
        return r;
    *exists = box_present(path) ? 1 : 0;
    return sdk_ok(err);
}

/* Starts fvm.exe with the command line `line` (its own path first), with
 * this process's standard input and error, output to `out`, and the
 * SDK's environment for it (FVM_ROOT). */
static BOOL start_fvm_exe(fvm_sdk *sdk, wchar_t *line, HANDLE out, PROCESS_INFORMATION *pi)
{
    STARTUPINFOW si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = out;
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    return CreateProcessW(sdk->fvm_exe, line, NULL, NULL, TRUE, CREATE_UNICODE_ENVIRONMENT, sdk->child_env, NULL,
                          &si, pi);
}

/* The process count of a running box on its own Wine server, whose job and
 * broker are out of this process's sight: fvm.exe asks its broker there
 * (`fvm __stats-json NAME`, as fvm list and fvm stats do). 1 (it runs) if
 * that answer does not come. */
static unsigned long own_server_process_count(fvm_sdk *sdk, const char *name)
{
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    HANDLE out_read, out_write;
    if (!CreatePipe(&out_read, &out_write, &inherit, 0))
        return 1;
    SetHandleInformation(out_read, HANDLE_FLAG_INHERIT, 0);
    wchar_t wname[FVM_BOX_NAME_MAX], line[FVM_PATH_MAX + FVM_BOX_NAME_MAX + 64];
    sdk_wide(name, wname, FVM_BOX_NAME_MAX);
    _snwprintf(line, sizeof line / sizeof *line, L"\"%ls\" __stats-json %ls", sdk->fvm_exe, wname);
    line[sizeof line / sizeof *line - 1] = 0;
    PROCESS_INFORMATION pi;
    BOOL started = start_fvm_exe(sdk, line, out_write, &pi);
    CloseHandle(out_write);
    char text[FVM_BROKER_STATS_MAX];   /* not static: the SDK may be called from several threads */
    DWORD len = 0, got;
    if (started) {
        CloseHandle(pi.hThread);
        while (len + 1 < sizeof text && ReadFile(out_read, text + len, (DWORD)(sizeof text - 1 - len), &got, NULL) &&
               got)
            len += got;
        WaitForSingleObject(pi.hProcess, 15000);
        CloseHandle(pi.hProcess);
    }
    CloseHandle(out_read);
    text[len] = 0;
    const char *at = strstr(text, "\"processes\":");
    unsigned long n = at ? strtoul(at + strlen("\"processes\":"), NULL, 10) : 0;
    return n ? n : 1;
}

fvm_result fvm_box_process_count(fvm_sdk *sdk, const char *name, unsigned long *count, fvm_sdk_error *err)
{
    wchar_t path[FVM_PATH_MAX], job_name[FVM_OBJ_NAME_MAX];
    if (!count)
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_box_process_count: count is NULL");
    *count = 0;
    fvm_result r = sdk_existing_box(sdk, name, path, err);
    if (r != FVM_SDK_OK)
        return r;
    /* The broker owns the job while the box runs; no job, no process. */
    fvm_box_object_name(path, FVM_OBJ_JOB, job_name, FVM_OBJ_NAME_MAX);
    HANDLE job = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, job_name);
    if (!job && fvm_box_own_server(path) && boxserver_busy(path)) {
        /* A box on its own Wine server: its job is that server's. */
        *count = own_server_process_count(sdk, name);
        return sdk_ok(err);
    }
    if (!job)
        return sdk_ok(err);
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    BOOL ok = QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct, NULL);
    DWORD e = GetLastError();
    CloseHandle(job);
    if (!ok)
        return sdk_win_fail(err, e, "cannot query the job of the box");
    *count = acct.ActiveProcesses;
    return sdk_ok(err);
}

/* ---- running fvm.exe ------------------------------------------------------------------------ */

/* Appends one argument, quoted so that the C runtime's parser gives it back
 * unchanged (backslashes before a quote, and at the end, doubled). */
static BOOL append_arg(wchar_t *line, size_t cap, const wchar_t *arg)
{
    size_t n = wcslen(line);
#define PUT(c) do { if (n + 1 >= cap) return FALSE; line[n++] = (c); } while (0)
    if (n)
        PUT(L' ');
    BOOL plain = arg[0] != 0 && !wcspbrk(arg, L" \t\"");
    if (plain) {
        for (const wchar_t *p = arg; *p; p++)
            PUT(*p);
    } else {
        PUT(L'"');
        for (const wchar_t *p = arg;; p++) {
            size_t slashes = 0;
            while (*p == L'\\') {
                slashes++;
                p++;
            }
            if (!*p) {
                for (size_t i = 0; i < slashes * 2; i++)
                    PUT(L'\\');
                break;
            }
            if (*p == L'"') {
                for (size_t i = 0; i < slashes * 2 + 1; i++)
                    PUT(L'\\');
            } else {
                for (size_t i = 0; i < slashes; i++)
                    PUT(L'\\');
            }
            PUT(*p);
        }
        PUT(L'"');
    }
    line[n] = 0;
    return TRUE;
#undef PUT
}

/* ---- policies ------------------------------------------------------------------------------ */

typedef struct first_error {
    char text[400];
    unsigned errors;
} first_error;

static void keep_first_error(void *ctx, const policy_diag *d)
{
    first_error *f = ctx;
    if (d->severity == POLICY_DIAG_ERROR && f->errors++ == 0)
        policy_diag_format(d, f->text, sizeof f->text);
}

/* A loaded and compiled policy, with the context its names were made
 * canonical against (policy_canonical_name needs the same variables). */
typedef struct loaded_policy {
    fvm_policy_context *ctx;
    void *blob;
    size_t blob_len;
    policy_view view;
} loaded_policy;

static void unload_policy(loaded_policy *lp)
{
    if (lp->blob)
        policy_blob_free(lp->blob);
    if (lp->ctx) {
        fvm_policy_context_free(lp->ctx);
        free(lp->ctx);
    }
    memset(lp, 0, sizeof *lp);
}

static fvm_result load_policy(const fvm_sdk *sdk, const wchar_t *path, loaded_policy *lp, fvm_sdk_error *err)
{
    char why[512], shown[FVM_PATH_MAX * 3];
    fvm_error e;
    memset(lp, 0, sizeof *lp);
    sdk_utf8(path, shown, sizeof shown);
    lp->ctx = malloc(sizeof *lp->ctx);
    if (!lp->ctx)
        return sdk_fail(err, FVM_SDK_E_NOMEM, "out of memory");
    if (fvm_policy_context_init(lp->ctx, why, sizeof why) != FVM_OK) {
        free(lp->ctx);
        lp->ctx = NULL;
        return sdk_fail(err, FVM_SDK_E_SYSTEM, "policy %s: %s", shown, why);
    }
    /* Templates are shipped next to fvm.exe, not next to this program. */
    _snwprintf(lp->ctx->shipped_dir, FVM_PATH_MAX, L"%ls\\policy", sdk->exe_dir);
    lp->ctx->shipped_dir[FVM_PATH_MAX - 1] = 0;

    first_error first = {"", 0};
    policy *p = NULL;
    fvm_status st = fvm_policy_load_with(lp->ctx, path, &p, keep_first_error, &first, why, sizeof why);
    if (st != FVM_OK) {
        unload_policy(lp);
        if (st == FVM_E_PARSE)
            return sdk_fail(err, FVM_SDK_E_POLICY, "%s (%s)", first.text, why);
        if (st == FVM_E_NOTFOUND)
            return sdk_fail(err, FVM_SDK_E_NOTFOUND, "%s", why);
        return sdk_fail(err, FVM_SDK_E_POLICY, "policy %s cannot be read: %s", shown, why);
    }
    st = policy_compile(p, &lp->blob, &lp->blob_len, &e);
    policy_free(p);
    if (st == FVM_OK)
        st = policy_blob_open(lp->blob, lp->blob_len, &lp->view, &e);
    if (st != FVM_OK) {
        unload_policy(lp);
        return sdk_fail(err, FVM_SDK_E_POLICY, "policy %s cannot be compiled: %s", shown, e.message);
    }
    return FVM_SDK_OK;
}

/* <box>\policy.ini, else the shipped default next to fvm.exe. */
static void box_policy_path(const fvm_sdk *sdk, const wchar_t *box_path, wchar_t *out)
{
    _snwprintf(out, FVM_PATH_MAX, L"%ls\\policy.ini", box_path);
    out[FVM_PATH_MAX - 1] = 0;
    if (GetFileAttributesW(out) == INVALID_FILE_ATTRIBUTES) {
        _snwprintf(out, FVM_PATH_MAX, L"%ls\\policy\\default.ini", sdk->exe_dir);
        out[FVM_PATH_MAX - 1] = 0;
    }
}

static fvm_result evaluate(const fvm_sdk *sdk, const wchar_t *policy_path, const char *type_name,
                           const char *resource, const char *program, fvm_decision *out, fvm_sdk_error *err)
{
    if (!out || !type_name || !resource)
        return sdk_fail(err, FVM_SDK_E_INVALID, "policy evaluation: type, resource and out are required");
    memset(out, 0, sizeof *out);
    policy_type type;
    if (!policy_type_from_name(type_name, strlen(type_name), &type))
        return sdk_fail(err, FVM_SDK_E_INVALID,
                        "unknown resource type '%s' (file, key, object, process, net, service, screen, print, "
                        "desktop, memory or data)", type_name);
    wchar_t wprogram[FVM_PATH_MAX] = L"";
    if (program && !sdk_wide(program, wprogram, FVM_PATH_MAX))
        return sdk_fail(err, FVM_SDK_E_INVALID, "program name is not valid UTF-8 or too long");

    loaded_policy lp;
    fvm_result r = load_policy(sdk, policy_path, &lp, err);
    if (r != FVM_SDK_OK)
        return r;
    const size_t canonical_cap = NTPATH_MAX_UNITS + 1;
    uint16_t *canonical = malloc(canonical_cap * sizeof *canonical);
    if (!canonical) {
        unload_policy(&lp);
        return sdk_fail(err, FVM_SDK_E_NOMEM, "out of memory");
    }
    size_t canonical_len = 0;
    fvm_error e;
    /* The resource goes through the code that makes patterns canonical, so
     * any spelling a rule could use is accepted. */
    if (policy_canonical_name(type, resource, &lp.ctx->env, canonical, canonical_cap, &canonical_len, &e) !=
        FVM_OK) {
        free(canonical);
        unload_policy(&lp);
        return sdk_fail(err, FVM_SDK_E_INVALID, "'%s' is not a %s name: %s", resource, type_name, e.message);
    }
    policy_decision d;
    fvm_status st = policy_match(&lp.view, type, canonical, canonical_len, (const uint16_t *)wprogram,
                                 wcslen(wprogram), &d);
    free(canonical);
    if (st != FVM_OK) {
        unload_policy(&lp);
        return sdk_fail(err, FVM_SDK_E_INVALID, "'%s': the policy matcher refused the name", resource);
    }
    out->action = (fvm_action)d.action;
    snprintf(out->action_name, sizeof out->action_name, "%s", policy_action_name(d.action));
    out->audit = d.audit ? 1 : 0;
    out->is_default = d.is_default ? 1 : 0;
    policy_decision_label(&d, out->rule, sizeof out->rule);   /* d points into the blob: label it first */
    out->ask_default = (fvm_action)d.ask_default;
    out->ask_timeout_ms = d.ask_timeout_ms;
    unload_policy(&lp);
    return sdk_ok(err);
}

fvm_result fvm_policy_evaluate(fvm_sdk *sdk, const char *policy_path, const char *type, const char *resource,
                               const char *program, fvm_decision *out, fvm_sdk_error *err)
{
    wchar_t wpath[FVM_PATH_MAX];
    if (!sdk || !policy_path)
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_policy_evaluate: no SDK handle or no policy file");
    if (!sdk_wide(policy_path, wpath, FVM_PATH_MAX))
        return sdk_fail(err, FVM_SDK_E_INVALID, "policy path is not valid UTF-8 or too long");
    return evaluate(sdk, wpath, type, resource, program, out, err);
}

fvm_result fvm_box_policy_evaluate(fvm_sdk *sdk, const char *name, const char *type, const char *resource,
                                   const char *program, fvm_decision *out, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX], policy_path[FVM_PATH_MAX];
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    box_policy_path(sdk, box_path, policy_path);
    return evaluate(sdk, policy_path, type, resource, program, out, err);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* A lifecycle error as an SDK error: the same message fvm.exe prints. */
static fvm_result life_fail(fvm_sdk_error *err, const boxlife_error *e)
{
    fvm_result code;
    switch (e->status) {
    case FVM_E_EXISTS: code = FVM_SDK_E_EXISTS; break;
    case FVM_E_NOTFOUND: code = FVM_SDK_E_NOTFOUND; break;
    case FVM_E_BUSY: code = FVM_SDK_E_BUSY; break;
    case FVM_E_PARSE: code = FVM_SDK_E_POLICY; break;
    case FVM_E_NOMEM: code = FVM_SDK_E_NOMEM; break;
    case FVM_E_INVALID: code = FVM_SDK_E_INVALID; break;
    default: code = e->win32 ? FVM_SDK_E_SYSTEM : FVM_SDK_E_FAILED; break;
    }
    return sdk_fail(err, code, "%s", e->message);
}

fvm_result fvm_box_create(fvm_sdk *sdk, const char *name, const char *policy_path, uint64_t quota_bytes,
                          fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX], wpolicy[FVM_PATH_MAX], full[FVM_PATH_MAX], shipped[FVM_PATH_MAX];
    fvm_result r = sdk_box_path(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    if (box_present(box_path))
        return sdk_fail(err, FVM_SDK_E_EXISTS, "box '%s' already exists", name);
    boxlife_options opt = {0};
    if (policy_path) {
        if (!sdk_wide(policy_path, wpolicy, FVM_PATH_MAX) || !GetFullPathNameW(wpolicy, FVM_PATH_MAX, full, NULL))
            return sdk_fail(err, FVM_SDK_E_INVALID, "policy path '%s' is not valid", policy_path);
        /* Loaded here first for the SDK's own codes and message (the first
         * error as file:line:column, NOTFOUND for a missing file). */
        loaded_policy lp;
        r = load_policy(sdk, full, &lp, err);
        if (r != FVM_SDK_OK)
            return r;
        unload_policy(&lp);
        opt.policy_file = full;
    }
    /* Templates are shipped next to fvm.exe, not next to this program. */
    _snwprintf(shipped, FVM_PATH_MAX, L"%ls\\policy", sdk->exe_dir);
    shipped[FVM_PATH_MAX - 1] = 0;
    opt.shipped_dir = shipped;
    opt.quota_bytes = quota_bytes;
    boxlife_error e;
    return boxlife_create(box_path, name, &opt, &e) == FVM_OK ? sdk_ok(err) : life_fail(err, &e);
}

fvm_result fvm_box_remove(fvm_sdk *sdk, const char *name, int force, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX];
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    boxlife_error e;
    if (boxlife_remove(box_path, name, force ? TRUE : FALSE, &e) == FVM_OK)
        return sdk_ok(err);
    if (e.status == FVM_E_BUSY && !force)
        return sdk_fail(err, FVM_SDK_E_BUSY, "box '%s' is running (%lu processes); stop it first or force", name,
                        (unsigned long)boxlife_process_count(box_path));
    return life_fail(err, &e);
}

fvm_result fvm_box_stop(fvm_sdk *sdk, const char *name, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX];
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    boxlife_error e;
    return boxlife_stop(box_path, name, 15000, &e) == FVM_OK ? sdk_ok(err) : life_fail(err, &e);
}

fvm_result fvm_box_run(fvm_sdk *sdk, const char *name, const wchar_t *command_line, unsigned flags,
                       HANDLE *process, DWORD *exit_code, fvm_sdk_error *err)
{
    wchar_t box_path[FVM_PATH_MAX], wname[FVM_BOX_NAME_MAX], policy_path[FVM_PATH_MAX];
    if (process)
        *process = NULL;
    if (!command_line || !command_line[0])
        return sdk_fail(err, FVM_SDK_E_INVALID, "fvm_box_run: no command line");
    fvm_result r = sdk_existing_box(sdk, name, box_path, err);
    if (r != FVM_SDK_OK)
        return r;
    /* fvm run would refuse a broken policy too, but only on its standard
     * error, which the program shares: check here for a real message. */
    box_policy_path(sdk, box_path, policy_path);
    loaded_policy lp;
    r = load_policy(sdk, policy_path, &lp, err);
    if (r != FVM_SDK_OK) {
        char msg[sizeof err->message];
        if (err) {
            snprintf(msg, sizeof msg, "the policy of box '%s' cannot be used: %s", name, err->message);
            sdk_fail(err, r, "%s", msg);
        }
        return r;
    }
    unload_policy(&lp);

    sdk_wide(name, wname, FVM_BOX_NAME_MAX);
    size_t cap = wcslen(sdk->fvm_exe) + wcslen(command_line) + FVM_BOX_NAME_MAX * 2 + 64;
    wchar_t *line = malloc(cap * sizeof *line);
    if (!line)
        return sdk_fail(err, FVM_SDK_E_NOMEM, "out of memory");
    line[0] = 0;
    append_arg(line, cap, sdk->fvm_exe);
    append_arg(line, cap, L"run");
    append_arg(line, cap, L"--box");
    append_arg(line, cap, wname);
    append_arg(line, cap, L"--");
    wcscat(line, L" ");
    wcscat(line, command_line);

    PROCESS_INFORMATION pi;
    BOOL started = start_fvm_exe(sdk, line, GetStdHandle(STD_OUTPUT_HANDLE), &pi);
    DWORD e = GetLastError();
    free(line);
    if (!started)
        return sdk_win_fail(err, e, "cannot start fvm.exe run");
    CloseHandle(pi.hThread);
    if (flags & FVM_RUN_WAIT) {
        DWORD code = 1;
        WaitForSingleObject(pi.hProcess, INFINITE);
        GetExitCodeProcess(pi.hProcess, &code);
        CloseHandle(pi.hProcess);
        if (exit_code)
            *exit_code = code;
    } else if (process) {
        *process = pi.hProcess;
    } else {
        CloseHandle(pi.hProcess);
    }
    return sdk_ok(err);
}
