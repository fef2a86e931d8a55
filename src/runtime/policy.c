/* policy.c - the box's policy as the runtime consults it, and its audit
 * records.
 *
 * The broker compiles the box's policy once per box start (core/policy*.c)
 * and publishes the blob (shared.c maps what the broker publishes); every
 * process decides with policy_match, a walk over the path's characters, whatever
 * the number of rules. A box started before policies existed, or without a
 * broker section, gets the built-in behaviour (copy-on-write everywhere).
 *
 * Audited decisions become records sent to the broker, the box's single
 * audit writer, as one message each (core/brokermsg.h) on a connection the
 * process keeps open, so an audited operation costs one pipe write. */
#include "runtime/runtime.h"

#include "common/boxshare.h"
#include "common/brokerproto.h"
#include "core/brokermsg.h"
#include "core/policy.h"
#include "fvm/provider.h"
#include "runtime/linux_syscall.h"

static policy_view g_view;
static BOOL g_have_policy;
/* What each type's decisions can be (policy_view_possible), filled in at
 * start: the compiled policy never changes while the process lives. */
static uint32_t g_possible[POLICY_TYPE_COUNT];
static wchar_t g_program[FVM_PATH_MAX];
static size_t g_program_len;
static char g_program_utf8[FVM_PATH_MAX * 3];
static HANDLE g_audit_pipe;
static SRWLOCK g_audit_lock = SRWLOCK_INIT;

BOOL runtime_policy_start(void)
{
    g_program_len = GetModuleFileNameW(NULL, g_program, FVM_PATH_MAX);
    WideCharToMultiByte(CP_UTF8, 0, g_program, -1, g_program_utf8, sizeof g_program_utf8, NULL, NULL);
    const fvm_shared_parts *shared = runtime_shared();
    if (!shared->policy)
        return TRUE;   /* no compiled policy: built-in behaviour */
    fvm_error err;
    if (policy_blob_open(shared->policy, shared->policy_size, &g_view, &err) != FVM_OK) {
        fvm_report("policy: the box's compiled policy is damaged: %s", err.message);
        return FALSE;
    }
    for (int type = 0; type < POLICY_TYPE_COUNT; type++)
        g_possible[type] = policy_view_possible(&g_view, (policy_type)type);
    g_have_policy = TRUE;
    return TRUE;
}

/* ---- the decision provider (include/fvm/provider.h) ---- */

static void put_field(char *line, size_t *at, size_t cap, const char *text, size_t len)
{
    for (size_t i = 0; i < len && *at + 2 < cap; i++)
        line[(*at)++] = (text[i] == '\t' || text[i] == '\n' || text[i] == '\r') ? ' ' : text[i];
}

static policy_action reply_action(const char *reply, size_t len, policy_action fallback)
{
    static const struct {
        const char *word;
        policy_action action;
    } words[] = {{"allow", POLICY_ACTION_COW}, {"deny", POLICY_ACTION_DENY}, {"hide", POLICY_ACTION_HIDE},
                 {"read", POLICY_ACTION_READ}, {"open", POLICY_ACTION_OPEN}};
    while (len && (reply[len - 1] == '\n' || reply[len - 1] == '\r' || reply[len - 1] == ' '))
        len--;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (len == strlen(words[i].word) && !memcmp(reply, words[i].word, len))
            return words[i].action;
    return fallback;
}

/* The question's line (include/fvm/provider.h); its length. */
static size_t provider_line(policy_type type, const uint16_t *name, size_t len, char *line, size_t cap)
{
    char number[16], utf8[FVM_PROVIDER_MAX_LINE / 2];
    size_t at = 0;
    int n = WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)name, (int)len, utf8, sizeof utf8, NULL, NULL);
    char box_utf8[FVM_BOX_NAME_MAX * 3];
    WideCharToMultiByte(CP_UTF8, 0, g_fvm.config.box_name, -1, box_utf8, sizeof box_utf8, NULL, NULL);
    DWORD pid = GetCurrentProcessId();
    int digits = 0;
    do {
        number[digits++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid);
    char pid_text[16];
    for (int i = 0; i < digits; i++)
        pid_text[i] = number[digits - 1 - i];
    const char *type_name = policy_type_name(type);
    const char *op = "open";
    const char *fields[7] = {FVM_PROVIDER_PROTOCOL, box_utf8, pid_text, g_program_utf8, type_name, op, utf8};
    size_t lens[7] = {strlen(FVM_PROVIDER_PROTOCOL), strlen(box_utf8), (size_t)digits, strlen(g_program_utf8),
                      strlen(type_name), strlen(op), (size_t)(n > 0 ? n : 0)};
    for (int i = 0; i < 7; i++) {
        if (i)
            line[at++] = '\t';
        put_field(line, &at, cap, fields[i], lens[i]);
    }
    line[at++] = '\n';
    return at;
}

/* Asks the provider; the rule's default when it is absent, slow or unclear.
 * The whole exchange, connection included, stays within the timeout. */
static policy_action ask_provider(policy_type type, const uint16_t *name, size_t len, const policy_decision *d)
{
    policy_action fallback = d->ask_default;
    DWORD deadline = GetTickCount() + d->ask_timeout_ms;
    static char line[FVM_PROVIDER_MAX_LINE];
    char reply[64];
    size_t at = provider_line(type, name, len, line, sizeof line);
    if (g_fvm.config.flags & FVM_BOX_FLAG_OWN_SERVER) {
        /* The provider's pipe is not in this server: the host side's relay
         * (cli/relay.c) asks it. */
        int got = runtime_relay_call("provider", line, at, reply, sizeof reply, deadline);
        return got > 0 ? reply_action(reply, (size_t)got, fallback) : fallback;
    }
    wchar_t pipe_name[FVM_PATH_MAX];
    fvm_wcscpy(pipe_name, FVM_PATH_MAX, L"\\\\.\\pipe\\");
    fvm_wcscat(pipe_name, FVM_PATH_MAX, g_fvm.config.provider[0] ? g_fvm.config.provider : L"" FVM_PROVIDER_DEFAULT);

    HANDLE pipe = INVALID_HANDLE_VALUE;
    runtime_bypass_enter();   /* the provider listens on the host's pipe */
    while (pipe == INVALID_HANDLE_VALUE) {
        pipe = CreateFileW(pipe_name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        LONG left = (LONG)(deadline - GetTickCount());
        if (GetLastError() != ERROR_PIPE_BUSY || left <= 0 || !WaitNamedPipeW(pipe_name, (DWORD)left)) {
            runtime_bypass_leave();
            return fallback;
        }
    }
    runtime_bypass_leave();

    policy_action action = fallback;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    DWORD done = 0;
    BOOL ok = ov.hEvent != NULL;
    if (ok && !WriteFile(pipe, line, (DWORD)at, NULL, &ov) && GetLastError() != ERROR_IO_PENDING)
        ok = FALSE;
    if (ok) {
        LONG left = (LONG)(deadline - GetTickCount());
        ok = left > 0 && WaitForSingleObject(ov.hEvent, (DWORD)left) == WAIT_OBJECT_0 &&
             GetOverlappedResult(pipe, &ov, &done, FALSE);
    }
    if (ok) {
        ResetEvent(ov.hEvent);
        if (!ReadFile(pipe, reply, sizeof reply, NULL, &ov) && GetLastError() != ERROR_IO_PENDING)
            ok = FALSE;
        LONG left = (LONG)(deadline - GetTickCount());
        ok = ok && left > 0 && WaitForSingleObject(ov.hEvent, (DWORD)left) == WAIT_OBJECT_0 &&
             GetOverlappedResult(pipe, &ov, &done, FALSE);
        if (ok)
            action = reply_action(reply, done, fallback);
    }
    if (!ok)
        CancelIo(pipe);
    if (ov.hEvent)
        CloseHandle(ov.hEvent);
    CloseHandle(pipe);
    return action;
}

policy_action runtime_policy_ask(policy_type type, const uint16_t *name, size_t len, const policy_decision *d)
{
    return ask_provider(type, name, len, d);
}

BOOL runtime_policy_active(void)
{
    return g_have_policy;
}

BOOL runtime_policy_may(policy_type type, uint32_t what)
{
    if (!g_have_policy || (unsigned)type >= POLICY_TYPE_COUNT)
        return FALSE;
    uint32_t bits = what == POLICY_POSSIBLE_AUDIT ? what : 1u << what;
    return (g_possible[type] & bits) != 0;
}

/* The last decisions of each thread, by exact name: programs ask about the
 * same few paths again and again (a file's attributes, then its open), and
 * the compiled policy never changes while the process lives, so a repeated
 * name costs a hash and a compare instead of a walk through the policy.
 * The whole name is compared: a hash alone could hand a path another
 * rule's action. `ask` decisions are never kept (the provider answers each
 * time). */
#define DECISION_CACHE_WAYS 8
#define DECISION_CACHE_UNITS 200

typedef struct cached_decision {
    uint32_t hash;
    uint16_t len;            /* 0: empty */
    uint8_t type;
    policy_decision decision;
    uint16_t name[DECISION_CACHE_UNITS];
} cached_decision;

typedef struct decision_cache {
    cached_decision ways[DECISION_CACHE_WAYS];
    unsigned next;
} decision_cache;

static uint32_t name_hash(policy_type type, const uint16_t *name, size_t len)
{
    uint32_t h = 2166136261u ^ (uint32_t)type;
    for (size_t i = 0; i < len; i++)
        h = (h ^ name[i]) * 16777619u;
    return h;
}

static decision_cache *thread_cache(void)
{
    fvm_thread *t = fvm_thread_get();
    if (!t)
        return NULL;
    if (!t->policy_cache) {
        DWORD error = GetLastError();
        t->policy_cache = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *t->policy_cache);
        SetLastError(error);
    }
    return t->policy_cache;
}

void runtime_policy_thread_detach(fvm_thread *t)
{
    if (t->policy_cache) {
        HeapFree(GetProcessHeap(), 0, t->policy_cache);
        t->policy_cache = NULL;
    }
}

policy_action runtime_policy_decide(policy_type type, const uint16_t *name, size_t len, policy_decision *out)
{
    if (!g_have_policy) {
        out->action = POLICY_ACTION_COW;
        out->audit = 0;
        out->is_default = 1;
        return POLICY_ACTION_COW;
    }
    decision_cache *cache = len && len <= DECISION_CACHE_UNITS ? thread_cache() : NULL;
    uint32_t hash = cache ? name_hash(type, name, len) : 0;
    if (cache) {
        for (unsigned i = 0; i < DECISION_CACHE_WAYS; i++) {
            const cached_decision *c = &cache->ways[i];
            if (c->hash == hash && c->len == len && c->type == (uint8_t)type && !memcmp(c->name, name, len * 2)) {
                *out = c->decision;
                return out->action;
            }
        }
    }
    if (policy_match(&g_view, type, name, len, (const uint16_t *)g_program, g_program_len, out) != FVM_OK)
        return out->action;   /* deny: a failed match fails closed */
    if (cache && out->action != POLICY_ACTION_ASK) {
        cached_decision *c = &cache->ways[cache->next++ % DECISION_CACHE_WAYS];
        c->hash = hash;
        c->len = (uint16_t)len;
        c->type = (uint8_t)type;
        c->decision = *out;
        memcpy(c->name, name, len * 2);
    }
    if (out->action == POLICY_ACTION_ASK)
        out->action = ask_provider(type, name, len, out);
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
    runtime_bypass_enter();   /* the broker's pipe, FVM's own */
    for (int attempt = 0; attempt < 40; attempt++) {
        HANDLE pipe = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (pipe != INVALID_HANDLE_VALUE) {
            DWORD mode = PIPE_READMODE_MESSAGE, done = 0, ack = 0;
            SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
            /* The broker takes our pid and image from the pipe while we
             * wait for its answer, alive (it trusts neither from us). */
            WriteFile(pipe, BROKERMSG_HELLO, 8, &done, NULL);
            ReadFile(pipe, &ack, sizeof ack, &done, NULL);
            g_audit_pipe = pipe;
            runtime_bypass_leave();
            return pipe;
        }
        /* Busy: wait for an instance. No instance at the moment (the
         * broker's listeners are between two clients): try again shortly. */
        DWORD e = GetLastError();
        if (e == ERROR_PIPE_BUSY)
            WaitNamedPipeW(name, 200);
        else if (e == ERROR_FILE_NOT_FOUND)
            Sleep(10);
        else
            break;
    }
    runtime_bypass_leave();
    return NULL;
}

/* One audit record to the broker: rule is the label of the rule (or the
 * reason) that decided. */
static void audit_send(policy_type type, const char *op, const char *decision, const char *rule,
                       const uint16_t *name, size_t len, const uint16_t *target, size_t target_len)
{
    static char name_utf8[BROKERMSG_MAX / 2];
    static char target_utf8[BROKERMSG_TARGET_MAX];
    static uint8_t buf[BROKERMSG_MAX];
    int name_bytes = WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)name, (int)len, name_utf8,
                                         sizeof name_utf8, NULL, NULL);
    int target_bytes = target && target_len ? WideCharToMultiByte(CP_UTF8, 0, (const wchar_t *)target, (int)target_len,
                                                                   target_utf8, sizeof target_utf8, NULL, NULL)
                                            : 0;
    brokermsg_audit msg = {
        (uint32_t)type, GetCurrentProcessId(), {op, strlen(op)}, {decision, strlen(decision)},
        {rule, strlen(rule)}, {g_program_utf8, strlen(g_program_utf8)}, {name_utf8, (size_t)(name_bytes > 0 ? name_bytes : 0)},
        {target_utf8, (size_t)(target_bytes > 0 ? target_bytes : 0)},
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
}

void runtime_audit(policy_type type, const char *op, const policy_decision *d, const uint16_t *name, size_t len)
{
    runtime_audit_target(type, op, d, name, len, NULL, 0);
}

void runtime_audit_target(policy_type type, const char *op, const policy_decision *d, const uint16_t *name,
                          size_t len, const uint16_t *target, size_t target_len)
{
    if (!d->audit)
        return;
    static char rule[300];
    DWORD saved = GetLastError();
    AcquireSRWLockExclusive(&g_audit_lock);
    policy_decision_label(d, rule, sizeof rule);
    audit_send(type, op, action_word(d->action), rule, name, len, target, target_len);
    ReleaseSRWLockExclusive(&g_audit_lock);
    SetLastError(saved);
}

/* ---- the one rule for names no virtualizer can decide (issue 19) ------------
 *
 * Every virtualizer decides a name and passes the decided name on; a name it
 * cannot read the way the system would is refused here or by the caller,
 * with the status the system gives for it (or the nearest one), and always
 * audited ("deny", rule "fvm:unusual name: <problem>"), whatever the policy
 * says about auditing: such names are what an attacker tries first. */

void runtime_name_refused(policy_type type, const char *op, const char *why, const uint16_t *name, size_t len)
{
    static char rule[120];
    if (runtime_bypassed())
        return;   /* FVM's own call (the audit connection itself among them) */
    DWORD saved = GetLastError();
    AcquireSRWLockExclusive(&g_audit_lock);
    size_t k = 0;
    const char *head = "fvm:unusual name: ";
    while (*head && k + 1 < sizeof rule)
        rule[k++] = *head++;
    while (why && *why && k + 1 < sizeof rule)
        rule[k++] = *why++;
    rule[k] = 0;
    /* A name read with an odd byte length or an embedded NUL is recorded up
     * to its first NUL (the record is text). */
    size_t shown = 0;
    while (name && shown < len && name[shown])
        shown++;
    audit_send(type, op, "deny", rule, name, shown, NULL, 0);
    ReleaseSRWLockExclusive(&g_audit_lock);
    SetLastError(saved);
}

NTSTATUS runtime_name_status(objname_problem problem)
{
    switch (problem) {
    case OBJNAME_OK:
        return STATUS_SUCCESS;
    case OBJNAME_NOT_ABSOLUTE:
    case OBJNAME_ROOTED_RELATIVE:
        return STATUS_OBJECT_PATH_SYNTAX_BAD;
    case OBJNAME_OUTSIDE_NAMESPACE:
        return STATUS_OBJECT_PATH_NOT_FOUND;
    case OBJNAME_TOO_LONG:
        return STATUS_NAME_TOO_LONG;
    default:
        return STATUS_OBJECT_NAME_INVALID;
    }
}

NTSTATUS runtime_name_gate(policy_type type, const char *op, const UNICODE_STRING *name, unsigned rules)
{
    if (!name || (!name->Buffer && !name->Length))
        return STATUS_SUCCESS;
    const uint16_t *units = (const uint16_t *)name->Buffer;
    if ((ULONG_PTR)units & 1) {
        /* As the system: a name it cannot read as UTF-16 units. */
        runtime_name_refused(type, op, "a misaligned buffer", NULL, 0);
        return STATUS_DATATYPE_MISALIGNMENT;
    }
    objname_problem problem = objname_check(units, name->Length, rules, 0, NULL);
    if (problem == OBJNAME_OK)
        return STATUS_SUCCESS;
    if (problem == OBJNAME_EMBEDDED_NUL && (rules & RUNTIME_NAME_OPEN)) {
        /* An open: no such name exists in the box's view (none can be made
         * there), and the host says "not found" for it unless one was made
         * outside. Not audited: Wine's loader opens its Image File
         * Execution Options key by a name with a NUL inside at every
         * process start (what a create with a NUL gets is audited). */
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    runtime_name_refused(type, op, objname_problem_text(problem), units, name->Length / 2);
    return runtime_name_status(problem);
}

const policy_view *runtime_policy_view(void)
{
    return g_have_policy ? &g_view : NULL;
}

const uint16_t *runtime_policy_program(void)
{
    return (const uint16_t *)g_program;
}

size_t runtime_policy_program_len(void)
{
    return g_program_len;
}
