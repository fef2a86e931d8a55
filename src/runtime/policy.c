/* policy.c - the box's policy as the runtime consults it, and its audit
 * records.
 *
 * The broker compiles the box's policy once per box start (core/policy*.c)
 * and publishes the blob in a named section; every process maps it read-only
 * and decides with policy_match, a walk over the path's characters, whatever
 * the number of rules. A box started before policies existed, or without a
 * broker section, gets the built-in behaviour (copy-on-write everywhere).
 *
 * Audited decisions become records sent to the broker, the box's single
 * audit writer, as one message each (core/brokermsg.h) on a connection the
 * process keeps open, so an audited operation costs one pipe write. */
#include "runtime/runtime.h"

#include "common/brokerproto.h"
#include "core/brokermsg.h"
#include "core/policy.h"

static policy_view g_view;
static BOOL g_have_policy;
static wchar_t g_program[FVM_PATH_MAX];
static size_t g_program_len;
static char g_program_utf8[FVM_PATH_MAX * 3];
static HANDLE g_audit_pipe;
static SRWLOCK g_audit_lock = SRWLOCK_INIT;

BOOL runtime_policy_start(void)
{
    g_program_len = GetModuleFileNameW(NULL, g_program, FVM_PATH_MAX);
    WideCharToMultiByte(CP_UTF8, 0, g_program, -1, g_program_utf8, sizeof g_program_utf8, NULL, NULL);
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_POLICY, name, FVM_OBJ_NAME_MAX);
    HANDLE section = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
    if (!section)
        return TRUE;   /* no compiled policy: built-in behaviour */
    MEMORY_BASIC_INFORMATION mbi;
    const void *blob = MapViewOfFile(section, FILE_MAP_READ, 0, 0, 0);
    CloseHandle(section);
    if (!blob || !VirtualQuery(blob, &mbi, sizeof mbi)) {
        fvm_report("policy: cannot map the box's compiled policy (error %lu)", (unsigned long)GetLastError());
        return FALSE;
    }
    /* The first 8 bytes hold the blob's size (the section is page-rounded). */
    uint64_t size = *(const uint64_t *)blob;
    fvm_error err;
    if (size > mbi.RegionSize - 8 || policy_blob_open((const uint8_t *)blob + 8, (size_t)size, &g_view, &err) != FVM_OK) {
        fvm_report("policy: the box's compiled policy is damaged: %s", size > mbi.RegionSize - 8 ? "size" : err.message);
        return FALSE;
    }
    g_have_policy = TRUE;
    return TRUE;
}

BOOL runtime_policy_active(void)
{
    return g_have_policy;
}

policy_action runtime_policy_decide(policy_type type, const uint16_t *name, size_t len, policy_decision *out)
{
    if (!g_have_policy) {
        out->action = POLICY_ACTION_COW;
        out->audit = 0;
        out->is_default = 1;
        return POLICY_ACTION_COW;
    }
    if (policy_match(&g_view, type, name, len, (const uint16_t *)g_program, g_program_len, out) != FVM_OK)
        return out->action;   /* deny: a failed match fails closed */
    /* No decision provider yet: an ask rule takes its default at once. */
    if (out->action == POLICY_ACTION_ASK)
        out->action = out->ask_default;
    return out->action;
}

static const char *action_word(policy_action a)
{
    switch (a) {
    case POLICY_ACTION_OPEN: return "open";
    case POLICY_ACTION_COW: return "cow";
    case POLICY_ACTION_READ: return "read";
    case POLICY_ACTION_ASK: return "ask";
    case POLICY_ACTION_HIDE: return "hide";
    case POLICY_ACTION_DENY: return "deny";
    default: return "none";
    }
}

/* Connects once; a broken connection is retried on the next record. */
static HANDLE audit_pipe(void)
{
    if (g_audit_pipe)
        return g_audit_pipe;
    wchar_t name[FVM_OBJ_NAME_MAX];
    fvm_box_object_name(g_fvm.config.box_path, FVM_OBJ_PIPE, name, FVM_OBJ_NAME_MAX);
    for (int attempt = 0; attempt < 20; attempt++) {
        HANDLE pipe = CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE) {
            DWORD mode = PIPE_READMODE_MESSAGE;
            SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
            g_audit_pipe = pipe;
            return pipe;
        }
        if (GetLastError() != ERROR_PIPE_BUSY || !WaitNamedPipeW(name, 200))
            break;
    }
    return NULL;
}

void runtime_audit(policy_type type, const char *op, const policy_decision *d, const uint16_t *name, size_t len)
{
    if (!d->audit)
        return;
    static char rule[300], name_utf8[BROKERMSG_MAX / 2];
    static uint8_t buf[BROKERMSG_MAX];
    AcquireSRWLockExclusive(&g_audit_lock);
    policy_decision_label(d, rule, sizeof rule);
    int name_bytes = WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)name, (int)len, name_utf8,
                                         sizeof name_utf8, NULL, NULL);
    const char *decision = action_word(d->action);
    brokermsg_audit msg = {
        (uint32_t)type, GetCurrentProcessId(), {op, strlen(op)}, {decision, strlen(decision)},
        {rule, strlen(rule)}, {g_program_utf8, strlen(g_program_utf8)}, {name_utf8, (size_t)(name_bytes > 0 ? name_bytes : 0)},
    };
    size_t n = brokermsg_audit_encode(&msg, buf, sizeof buf);
    HANDLE pipe = n ? audit_pipe() : NULL;
    DWORD written;
    if (pipe && !WriteFile(pipe, buf, (DWORD)n, &written, NULL)) {
        CloseHandle(pipe);
        g_audit_pipe = NULL;
        pipe = audit_pipe();
        if (pipe)
            WriteFile(pipe, buf, (DWORD)n, &written, NULL);
    }
    ReleaseSRWLockExclusive(&g_audit_lock);
}
