/* print.c - printing, by the box's [print] rules.
 *
 * Under Wine every print job passes winspool.drv, whichever way a program
 * prints: its own OpenPrinter/StartDocPrinter/WritePrinter (RAW data), a
 * printer DC (gdi32 hands StartDoc to wineps.drv, which opens the printer
 * and starts a job with winspool's StartDocPrinterW), or AddJob and
 * ScheduleJob (a spool file). The spooler (localspl.dll, in the program's
 * own process) then has its print processor (winprint.dll) open the
 * printer's port ("CUPS:FVM_PDF, Port") and copy the job to it, again with
 * winspool's OpenPrinterW/StartDocPrinterW; the port monitor hands the data
 * to CUPS from Wine's Unix side. So the choke point is
 * winspool!StartDocPrinterW: every job starts there twice, once on the
 * printer (the program's job) and once on the port (the spooler's copy to
 * the host). Both are decided. AddJobW is the one other way to make a job,
 * decided too.
 *
 * The name decided on is the printer's (core/printname.h: no "\\server\",
 * no ", Job N"; a port is decided as the CUPS or LPR queue it leads to), so
 * a program cannot reach a denied queue through a server prefix, a job or
 * port handle, or a printer of its own pointing at that queue. A printer
 * handle's name is recorded when OpenPrinter succeeds (printer handles are
 * the spooler's, not kernel handles: a small table here, forgotten at
 * ClosePrinter). A job on a handle this file never saw open is refused.
 *
 * Actions: open, cow, read allow; deny refuses the job with
 * ERROR_ACCESS_DENIED (what a printer's security descriptor gives a user
 * without print rights); hide also makes OpenPrinter fail with
 * ERROR_INVALID_PRINTER_NAME and leaves the printer out of EnumPrinters;
 * ask asks the decision provider. Audit records
 * (op "print" for a job, "port" for the spooler's copy to the host, "addjob")
 * are named "<printer>, Document: <document>".
 *
 * Below winspool, the port monitor that hands the data to the host
 * (localspl's "Local Port", reached through its exported
 * InitializePrintMonitor) gets a wrapped StartDocPort: the last gate, for a
 * program that drives the monitor itself.
 *
 * Not covered (docs/design.md, Printing): a program that calls the
 * monitor's Unix side directly, or speaks IPP to CUPS itself (a [net]
 * matter: tcp:*:631; CUPS's Unix socket is refused by net.c). */
#include "core/printname.h"
#include "runtime/guard.h"
#include "runtime/runtime.h"

#include <stddef.h>
#include <winspool.h>

#define PRINTER_NAME_MAX 260
#define DOCUMENT_MAX 256
#define HANDLE_SLOTS 128

typedef struct printer_slot {
    HANDLE handle;              /* NULL: free */
    printname_kind kind;
    size_t len;
    uint16_t name[PRINTER_NAME_MAX];
} printer_slot;

static printer_slot g_slots[HANDLE_SLOTS];
static SRWLOCK g_slots_lock = SRWLOCK_INIT;

typedef BOOL (WINAPI *OpenPrinterW_fn)(LPWSTR, LPHANDLE, LPPRINTER_DEFAULTSW);
typedef BOOL (WINAPI *OpenPrinter2W_fn)(LPCWSTR, LPHANDLE, LPPRINTER_DEFAULTSW, PPRINTER_OPTIONS);
typedef BOOL (WINAPI *ClosePrinter_fn)(HANDLE);
typedef DWORD (WINAPI *StartDocPrinterW_fn)(HANDLE, DWORD, LPBYTE);
typedef DWORD (WINAPI *StartDocPrinterA_fn)(HANDLE, DWORD, LPBYTE);
typedef BOOL (WINAPI *AddJobW_fn)(HANDLE, DWORD, LPBYTE, DWORD, LPDWORD);
typedef BOOL (WINAPI *EnumPrintersW_fn)(DWORD, LPWSTR, DWORD, LPBYTE, DWORD, LPDWORD, LPDWORD);
static OpenPrinterW_fn real_OpenPrinterW;
static OpenPrinter2W_fn real_OpenPrinter2W;
static ClosePrinter_fn real_ClosePrinter;
static StartDocPrinterW_fn real_StartDocPrinterW;
static StartDocPrinterA_fn real_StartDocPrinterA;
static AddJobW_fn real_AddJobW;
static EnumPrintersW_fn real_EnumPrintersW;

#define TOO_LONG ((size_t)-2)

/* Copies the caller's NUL-terminated string (at most cap units) under the
 * fault guard; the length, (size_t)-1 when it cannot be read, or TOO_LONG
 * (out then holds its first cap units). */
static size_t copy_caller_string(const wchar_t *s, uint16_t *out, size_t cap)
{
    size_t n = 0;
    if (!s)
        return 0;
    for (;;) {
        uint16_t c;
        if (!guard_copy(&c, s + n, sizeof c))
            return (size_t)-1;
        if (!c)
            return n;
        if (n == cap)
            return TOO_LONG;
        out[n++] = c;
    }
}

/* ---- printer handles ------------------------------------------------------- */

static void remember(HANDLE handle, const printname *pn)
{
    AcquireSRWLockExclusive(&g_slots_lock);
    printer_slot *free_slot = NULL;
    for (size_t i = 0; i < HANDLE_SLOTS; i++) {
        if (g_slots[i].handle == handle) {
            free_slot = &g_slots[i];   /* a handle value the spooler reuses */
            break;
        }
        if (!g_slots[i].handle && !free_slot)
            free_slot = &g_slots[i];
    }
    if (free_slot) {
        free_slot->handle = handle;
        free_slot->kind = pn->kind;
        free_slot->len = pn->len;
        memcpy(free_slot->name, pn->name, pn->len * sizeof(uint16_t));
    }
    ReleaseSRWLockExclusive(&g_slots_lock);
}

static void forget(HANDLE handle)
{
    AcquireSRWLockExclusive(&g_slots_lock);
    for (size_t i = 0; i < HANDLE_SLOTS; i++)
        if (g_slots[i].handle == handle)
            g_slots[i].handle = NULL;
    ReleaseSRWLockExclusive(&g_slots_lock);
}

/* The handle's printer name and kind; FALSE when it was never seen open. */
static BOOL lookup(HANDLE handle, uint16_t *name, size_t *len, printname_kind *kind)
{
    BOOL found = FALSE;
    AcquireSRWLockShared(&g_slots_lock);
    for (size_t i = 0; i < HANDLE_SLOTS && handle; i++) {
        if (g_slots[i].handle == handle) {
            *len = g_slots[i].len;
            *kind = g_slots[i].kind;
            memcpy(name, g_slots[i].name, g_slots[i].len * sizeof(uint16_t));
            found = TRUE;
            break;
        }
    }
    ReleaseSRWLockShared(&g_slots_lock);
    return found;
}

/* ---- decisions ------------------------------------------------------------- */

/* The decision on a job (op "print", "port", "addjob") on the printer
 * name[0..len), audited with the document's name: 0 to let it go on, or the
 * Windows error to fail it with. */
static DWORD decide_job(const char *op, const uint16_t *name, size_t len, const uint16_t *document,
                        size_t document_len)
{
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_PRINT, name, len, &d);
    d.action = action;
    if (d.audit) {
        uint16_t record[PRINTER_NAME_MAX + 16 + DOCUMENT_MAX];
        size_t n = printname_audit_name(name, len, document, document_len, record,
                                        sizeof record / sizeof record[0]);
        runtime_audit(POLICY_TYPE_PRINT, op, &d, record, n);
    }
    return action == POLICY_ACTION_DENY || action == POLICY_ACTION_HIDE ? ERROR_ACCESS_DENIED : 0;
}

/* A job on a handle this file never saw open: refused, always recorded. */
static DWORD unknown_handle(const char *op)
{
    static const uint16_t what[] = u"printer handle";
    runtime_name_refused(POLICY_TYPE_PRINT, op, "a printer handle opened outside FVM's view", what,
                         sizeof what / sizeof what[0] - 1);
    return ERROR_INVALID_HANDLE;
}

/* A job on a handle that names no printer (the print server, a monitor's
 * or port's configuration): refused, always recorded. Such jobs go nowhere
 * on Windows; here they are not left to the spooler's judgement. */
static DWORD not_a_printer(const char *op)
{
    static const uint16_t what[] = u"printer handle";
    runtime_name_refused(POLICY_TYPE_PRINT, op, "a job on a handle that names no printer", what,
                         sizeof what / sizeof what[0] - 1);
    return ERROR_INVALID_HANDLE;
}

/* OpenPrinter of a name the [print] rules hide fails as for a printer that
 * does not exist; any other name opens as usual. 0 or the error. */
static DWORD open_refusal(const printname *pn)
{
    if (pn->kind == PRINTNAME_INVALID && pn->len == PRINTER_NAME_MAX) {
        runtime_name_refused(POLICY_TYPE_PRINT, "open", "a printer name too long", pn->name, pn->len);
        return ERROR_INVALID_PRINTER_NAME;
    }
    if (pn->kind == PRINTNAME_INVALID || !pn->len)
        return 0;   /* the spooler's to refuse (or a server handle: no job on it) */
    policy_decision d;
    if (runtime_policy_decide(POLICY_TYPE_PRINT, pn->name, pn->len, &d) != POLICY_ACTION_HIDE)
        return 0;
    d.action = POLICY_ACTION_HIDE;
    runtime_audit(POLICY_TYPE_PRINT, "open", &d, pn->name, pn->len);
    return ERROR_INVALID_PRINTER_NAME;
}

/* ---- hooks ----------------------------------------------------------------- */

/* Reads the caller's printer name; FALSE if it cannot be read (the real
 * call then decides, and its handle stays unknown: no job on it). */
static BOOL read_name(const wchar_t *name, uint16_t *buf, printname *pn)
{
    size_t n = copy_caller_string(name, buf, PRINTER_NAME_MAX);
    if (n == (size_t)-1)
        return FALSE;
    if (n == TOO_LONG) {
        /* Longer than any printer name Windows allows: never decided on a
         * part of it (open_refusal refuses it). */
        pn->kind = PRINTNAME_INVALID;
        pn->name = buf;
        pn->len = PRINTER_NAME_MAX;
        return TRUE;
    }
    printname_parse(buf, n, pn);
    return TRUE;
}

static BOOL WINAPI box_OpenPrinterW(LPWSTR name, LPHANDLE handle, LPPRINTER_DEFAULTSW defaults)
{
    uint16_t buf[PRINTER_NAME_MAX];
    printname pn;
    BOOL readable = read_name(name, buf, &pn);
    DWORD refusal = readable ? open_refusal(&pn) : 0;
    if (refusal) {
        SetLastError(refusal);
        return FALSE;
    }
    BOOL ok = real_OpenPrinterW(name, handle, defaults);
    if (ok && readable) {
        DWORD error = GetLastError();
        HANDLE h;
        if (guard_copy(&h, handle, sizeof h))
            remember(h, &pn);
        SetLastError(error);
    }
    return ok;
}

static BOOL WINAPI box_OpenPrinter2W(LPCWSTR name, LPHANDLE handle, LPPRINTER_DEFAULTSW defaults,
                                     PPRINTER_OPTIONS options)
{
    uint16_t buf[PRINTER_NAME_MAX];
    printname pn;
    BOOL readable = read_name(name, buf, &pn);
    DWORD refusal = readable ? open_refusal(&pn) : 0;
    if (refusal) {
        SetLastError(refusal);
        return FALSE;
    }
    BOOL ok = real_OpenPrinter2W(name, handle, defaults, options);
    if (ok && readable) {
        DWORD error = GetLastError();
        HANDLE h;
        if (guard_copy(&h, handle, sizeof h))
            remember(h, &pn);
        SetLastError(error);
    }
    return ok;
}

static BOOL WINAPI box_ClosePrinter(HANDLE handle)
{
    BOOL ok = real_ClosePrinter(handle);
    DWORD error = GetLastError();
    forget(handle);
    SetLastError(error);
    return ok;
}

/* The queue a printer handle's port leads to (core/printname.h, as a port
 * is decided), or 0 when it has no port or it cannot be read. */
static size_t port_queue(HANDLE handle, uint16_t *out)
{
    typedef BOOL (WINAPI *GetPrinterW_fn)(HANDLE, DWORD, LPBYTE, DWORD, LPDWORD);
    static GetPrinterW_fn get_printer;
    if (!get_printer) {
        HMODULE winspool = runtime_loaded_module("winspool.drv");
        get_printer = winspool ? (GetPrinterW_fn)(void *)GetProcAddress(winspool, "GetPrinterW") : NULL;
        if (!get_printer)
            return 0;
    }
    union {
        PRINTER_INFO_5W info;
        BYTE bytes[sizeof(PRINTER_INFO_5W) + 2 * (PRINTER_NAME_MAX + 8) * sizeof(wchar_t)];
    } buf;
    DWORD needed = 0;
    if (!get_printer(handle, 5, buf.bytes, sizeof buf.bytes, &needed) || !buf.info.pPortName)
        return 0;
    uint16_t port[PRINTER_NAME_MAX + 8];
    size_t n = 0;
    while (n < PRINTER_NAME_MAX && buf.info.pPortName[n]) {
        port[n] = buf.info.pPortName[n];
        n++;
    }
    static const char suffix[] = ", Port";
    for (size_t i = 0; suffix[i]; i++)
        port[n++] = (uint16_t)suffix[i];
    printname pn;
    printname_parse(port, n, &pn);
    if (pn.kind != PRINTNAME_PORT)
        return 0;
    memcpy(out, pn.name, pn.len * sizeof(uint16_t));
    return pn.len;
}

static DWORD WINAPI box_StartDocPrinterW(HANDLE handle, DWORD level, LPBYTE info)
{
    uint16_t name[PRINTER_NAME_MAX], document[DOCUMENT_MAX];
    size_t len = 0, document_len = 0;
    printname_kind kind;
    DWORD error = GetLastError();
    if (!lookup(handle, name, &len, &kind)) {
        SetLastError(unknown_handle("print"));
        return 0;
    }
    if (kind != PRINTNAME_PRINTER && kind != PRINTNAME_JOB && kind != PRINTNAME_PORT) {
        SetLastError(not_a_printer("print"));   /* a server or configuration handle */
        return 0;
    }
    /* Levels 1 to 3 all start with the document's name. */
    const wchar_t *doc_name = NULL;
    if (info && guard_copy(&doc_name, info, sizeof doc_name)) {
        size_t n = copy_caller_string(doc_name, document, DOCUMENT_MAX);
        document_len = n == (size_t)-1 ? 0 : n == TOO_LONG ? DOCUMENT_MAX : n;   /* a long name: its start */
    }
    DWORD refusal = decide_job(kind == PRINTNAME_PORT ? "port" : "print", name, len, document, document_len);
    if (!refusal && kind != PRINTNAME_PORT) {
        /* The queue the printer's port leads to is decided too, now: the
         * spooler's copy to the port would be refused anyway (a printer the
         * program made for a denied queue), but only at EndDocPrinter with
         * an error of its own. */
        uint16_t queue[PRINTER_NAME_MAX];
        size_t queue_len = port_queue(handle, queue);
        if (queue_len && (queue_len != len || memcmp(queue, name, len * sizeof(uint16_t))))
            refusal = decide_job("print", queue, queue_len, document, document_len);
    }
    if (refusal) {
        SetLastError(refusal);
        return 0;
    }
    SetLastError(error);
    return real_StartDocPrinterW(handle, level, info);
}

/* StartDocPrinterA converts and calls StartDocPrinterW, which decides; but
 * Wine's A function replaces the W function's error with its own, so a
 * refusal is made here first, with the error a refusal gives. Only the
 * rules' own answer is looked at (no provider is asked twice): what is not
 * refused outright goes on to StartDocPrinterW and its full decision. */
static DWORD WINAPI box_StartDocPrinterA(HANDLE handle, DWORD level, LPBYTE info)
{
    uint16_t name[PRINTER_NAME_MAX], document[DOCUMENT_MAX];
    size_t len = 0, document_len = 0;
    printname_kind kind;
    DWORD error = GetLastError();
    const policy_view *view = runtime_policy_view();
    policy_decision d;
    if (view && lookup(handle, name, &len, &kind) &&
        (kind == PRINTNAME_PRINTER || kind == PRINTNAME_JOB || kind == PRINTNAME_PORT) &&
        policy_match(view, POLICY_TYPE_PRINT, name, len, runtime_policy_program(), runtime_policy_program_len(),
                     &d) == FVM_OK &&
        (d.action == POLICY_ACTION_DENY || d.action == POLICY_ACTION_HIDE)) {
        const char *doc_name = NULL;
        if (info && guard_copy(&doc_name, info, sizeof doc_name) && doc_name) {
            /* The ANSI name, widened byte by byte (ASCII names stay exact). */
            for (;;) {
                char c;
                if (document_len == DOCUMENT_MAX || !guard_copy(&c, doc_name + document_len, 1) || !c)
                    break;
                document[document_len++] = (uint8_t)c;
            }
        }
        DWORD refusal = decide_job("print", name, len, document, document_len);
        if (refusal) {
            SetLastError(refusal);
            return 0;
        }
    }
    SetLastError(error);
    return real_StartDocPrinterA(handle, level, info);
}

static BOOL WINAPI box_AddJobW(HANDLE handle, DWORD level, LPBYTE data, DWORD size, LPDWORD needed)
{
    uint16_t name[PRINTER_NAME_MAX];
    size_t len = 0;
    printname_kind kind;
    DWORD error = GetLastError();
    if (!lookup(handle, name, &len, &kind)) {
        SetLastError(unknown_handle("addjob"));
        return FALSE;
    }
    if (kind != PRINTNAME_PRINTER && kind != PRINTNAME_JOB && kind != PRINTNAME_PORT) {
        SetLastError(not_a_printer("addjob"));
        return FALSE;
    }
    /* The document's name is not known yet (SetJob may give it later). */
    DWORD refusal = decide_job("addjob", name, len, NULL, 0);
    if (refusal) {
        SetLastError(refusal);
        return FALSE;
    }
    SetLastError(error);
    return real_AddJobW(handle, level, data, size, needed);
}

/* Printers the rules hide are left out of the list (the entries after them
 * move up; their strings stay where the spooler put them). */
static BOOL WINAPI box_EnumPrintersW(DWORD flags, LPWSTR name, DWORD level, LPBYTE buf, DWORD size, LPDWORD needed,
                                     LPDWORD returned)
{
    BOOL ok = real_EnumPrintersW(flags, name, level, buf, size, needed, returned);
    const policy_view *view = runtime_policy_view();
    if (!ok || !buf || !returned || !view)
        return ok;
    size_t stride, at;
    switch (level) {
    case 1: stride = sizeof(PRINTER_INFO_1W), at = offsetof(PRINTER_INFO_1W, pName); break;
    case 2: stride = sizeof(PRINTER_INFO_2W), at = offsetof(PRINTER_INFO_2W, pPrinterName); break;
    case 4: stride = sizeof(PRINTER_INFO_4W), at = offsetof(PRINTER_INFO_4W, pPrinterName); break;
    case 5: stride = sizeof(PRINTER_INFO_5W), at = offsetof(PRINTER_INFO_5W, pPrinterName); break;
    default: return ok;
    }
    DWORD error = GetLastError(), count = *returned, kept = 0;
    for (DWORD i = 0; i < count; i++) {
        BYTE *entry = buf + (size_t)i * stride;
        const wchar_t *printer;
        memcpy(&printer, entry + at, sizeof printer);
        uint16_t units[PRINTER_NAME_MAX];
        printname pn;
        policy_decision d;
        if (read_name(printer, units, &pn) && pn.kind == PRINTNAME_PRINTER &&
            policy_match(view, POLICY_TYPE_PRINT, pn.name, pn.len, runtime_policy_program(),
                         runtime_policy_program_len(), &d) == FVM_OK &&
            d.action == POLICY_ACTION_HIDE)
            continue;
        if (kept != i)
            memmove(buf + (size_t)kept * stride, entry, stride);
        kept++;
    }
    *returned = kept;
    SetLastError(error);
    return ok;
}

/* ---- the port monitor ---------------------------------------------------------
 *
 * localspl's "Local Port" monitor is what hands a job to the host (CUPS, LPR)
 * from Wine's Unix side. The spooler gets its functions from the exported
 * InitializePrintMonitor; so would a program that loads localspl.dll itself
 * to skip winspool. The table returned is replaced by a copy whose OpenPort
 * records the port's queue and whose StartDocPort decides on it: the last
 * gate before the host. A job the spooler sends has been decided already
 * (StartDocPrinterW on the port): here only refusals are recorded. */

typedef struct monitor_functions {          /* MONITOR (ddk/winsplp.h) */
    void *EnumPorts;
    BOOL (WINAPI *OpenPort)(LPWSTR name, PHANDLE handle);
    void *OpenPortEx;
    BOOL (WINAPI *StartDocPort)(HANDLE port, LPWSTR printer, DWORD job, DWORD level, LPBYTE info);
    void *rest[13];                         /* WritePort ... XcvClosePort */
} monitor_functions;

typedef struct monitor_ex {                 /* MONITOREX */
    DWORD size;
    monitor_functions monitor;
} monitor_ex;

typedef monitor_ex *(WINAPI *InitializePrintMonitor_fn)(LPWSTR);
static InitializePrintMonitor_fn real_InitializePrintMonitor;
static BOOL (WINAPI *real_OpenPort)(LPWSTR, PHANDLE);
static BOOL (WINAPI *real_StartDocPort)(HANDLE, LPWSTR, DWORD, DWORD, LPBYTE);
static monitor_ex g_monitor;
static SRWLOCK g_monitor_lock = SRWLOCK_INIT;

static BOOL WINAPI box_OpenPort(LPWSTR name, PHANDLE handle)
{
    BOOL ok = real_OpenPort(name, handle);
    if (ok) {
        DWORD error = GetLastError();
        uint16_t buf[PRINTER_NAME_MAX + 8];
        size_t n = copy_caller_string(name, buf, PRINTER_NAME_MAX);
        HANDLE h;
        if (n != (size_t)-1 && n != TOO_LONG && guard_copy(&h, handle, sizeof h)) {
            static const char suffix[] = ", Port";
            for (size_t i = 0; suffix[i]; i++)
                buf[n++] = (uint16_t)suffix[i];
            printname pn;
            printname_parse(buf, n, &pn);
            if (pn.kind == PRINTNAME_PORT)
                remember(h, &pn);
        }
        SetLastError(error);
    }
    return ok;
}

static BOOL WINAPI box_StartDocPort(HANDLE port, LPWSTR printer, DWORD job, DWORD level, LPBYTE info)
{
    uint16_t name[PRINTER_NAME_MAX], document[DOCUMENT_MAX];
    size_t len = 0, document_len = 0;
    printname_kind kind;
    if (!lookup(port, name, &len, &kind) || kind != PRINTNAME_PORT) {
        SetLastError(unknown_handle("port"));
        return FALSE;
    }
    const wchar_t *doc_name = NULL;
    if (info && guard_copy(&doc_name, info, sizeof doc_name)) {
        size_t n = copy_caller_string(doc_name, document, DOCUMENT_MAX);
        document_len = n == (size_t)-1 ? 0 : n == TOO_LONG ? DOCUMENT_MAX : n;
    }
    policy_decision d;
    policy_action action = runtime_policy_decide(POLICY_TYPE_PRINT, name, len, &d);
    if (action == POLICY_ACTION_DENY || action == POLICY_ACTION_HIDE) {
        d.action = action;
        uint16_t record[PRINTER_NAME_MAX + 16 + DOCUMENT_MAX];
        size_t n = printname_audit_name(name, len, document, document_len, record, sizeof record / sizeof record[0]);
        runtime_audit(POLICY_TYPE_PRINT, "port", &d, record, n);
        SetLastError(ERROR_ACCESS_DENIED);
        return FALSE;
    }
    return real_StartDocPort(port, printer, job, level, info);
}

static monitor_ex *WINAPI box_InitializePrintMonitor(LPWSTR registry)
{
    monitor_ex *real = real_InitializePrintMonitor(registry);
    if (!real || !real->monitor.OpenPort || !real->monitor.StartDocPort)
        return real;
    AcquireSRWLockExclusive(&g_monitor_lock);
    if (real->monitor.StartDocPort != box_StartDocPort) {
        real_OpenPort = real->monitor.OpenPort;
        real_StartDocPort = real->monitor.StartDocPort;
        g_monitor = *real;
        g_monitor.monitor.OpenPort = box_OpenPort;
        g_monitor.monitor.StartDocPort = box_StartDocPort;
    }
    ReleaseSRWLockExclusive(&g_monitor_lock);
    return &g_monitor;
}

static void localspl_hooks(hook_table *table)
{
    FVM_HOOK(table, "localspl.dll", InitializePrintMonitor);
}

static void winspool_hooks(hook_table *table)
{
    FVM_HOOK(table, "winspool.drv", OpenPrinterW);
    FVM_HOOK_OPTIONAL(table, "winspool.drv", OpenPrinter2W);
    FVM_HOOK(table, "winspool.drv", ClosePrinter);
    FVM_HOOK(table, "winspool.drv", StartDocPrinterW);
    FVM_HOOK(table, "winspool.drv", StartDocPrinterA);
    FVM_HOOK(table, "winspool.drv", AddJobW);
    FVM_HOOK(table, "winspool.drv", EnumPrintersW);
}

static late_hooks g_late[] = {
    {"winspool.drv", winspool_hooks, 0},
    {"localspl.dll", localspl_hooks, 0},
    {NULL, NULL, 0},
};

const fvm_virtualizer print_virtualizer = {
    .name = "printing",
    .policy = POLICY_TYPE_PRINT,
    .late = g_late,
};
