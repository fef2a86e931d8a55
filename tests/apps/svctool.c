/* svctool.c - services in a box (tests/e2e/test_services.py).
 *
 *   svctool service MARKER      a service (StartServiceCtrlDispatcher): when
 *                               started it writes MARKER (proves where it runs),
 *                               then runs until told to stop
 *   svctool rawrpc NAME BINPATH a hostile client: speaks DCE/RPC on
 *                               \\.\pipe\svcctl itself, without sechost (a bind,
 *                               then OpenSCManagerW, CreateServiceW and
 *                               StartServiceW requests built by hand), as a
 *                               program that brings its own copy of the
 *                               service client would; prints each status
 *
 * Exit code 0 when every step did what it was asked. */
#include <windows.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- the service ------------------------------------------------------------ */

static SERVICE_STATUS_HANDLE g_status_handle;
static HANDLE g_stop;
static wchar_t g_marker[MAX_PATH];

static void report(DWORD state)
{
    SERVICE_STATUS st;
    memset(&st, 0, sizeof st);
    st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    st.dwCurrentState = state;
    st.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP : 0;
    SetServiceStatus(g_status_handle, &st);
}

static DWORD WINAPI handler(DWORD control, DWORD type, void *data, void *context)
{
    if (control == SERVICE_CONTROL_STOP) {
        report(SERVICE_STOP_PENDING);
        SetEvent(g_stop);
    }
    return NO_ERROR;
}

static void WINAPI service_main(DWORD argc, wchar_t **argv)
{
    g_status_handle = RegisterServiceCtrlHandlerExW(L"", handler, NULL);
    if (!g_status_handle)
        return;
    HANDLE f = CreateFileW(g_marker, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (f != INVALID_HANDLE_VALUE) {
        DWORD n;
        WriteFile(f, "started\r\n", 9, &n, NULL);
        CloseHandle(f);
    }
    report(SERVICE_RUNNING);
    WaitForSingleObject(g_stop, INFINITE);
    report(SERVICE_STOPPED);
}

static int run_service(const wchar_t *marker)
{
    wcsncpy(g_marker, marker, MAX_PATH - 1);
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    static wchar_t empty[] = L"";
    SERVICE_TABLE_ENTRYW table[] = {{empty, service_main}, {NULL, NULL}};
    return StartServiceCtrlDispatcherW(table) ? 0 : (int)GetLastError();
}

/* ---- raw RPC on svcctl ------------------------------------------------------ */

typedef struct buf {
    uint8_t b[4096];
    size_t n;
} buf;

static void put(buf *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put32(buf *o, uint32_t v) { put(o, &v, 4); }
static void put16(buf *o, uint16_t v) { put(o, &v, 2); }
static void align4(buf *o)
{
    while (o->n % 4)
        o->b[o->n++] = 0;
}

/* An NDR conformant varying string (the [string] WCHAR * of svcctl.idl). */
static void put_wstring(buf *o, const wchar_t *s)
{
    uint32_t n = (uint32_t)wcslen(s) + 1;
    align4(o);
    put32(o, n);
    put32(o, 0);
    put32(o, n);
    put(o, s, n * 2);
    align4(o);
}

static void header(buf *o, uint8_t type, uint32_t call)
{
    const uint8_t h[] = {5, 0, type, 3, 0x10, 0, 0, 0};   /* v5.0, first+last fragment, little-endian */
    put(o, h, sizeof h);
    put16(o, 0);   /* frag length, patched */
    put16(o, 0);   /* auth length */
    put32(o, call);
}

static void finish(buf *o) { memcpy(o->b + 8, &(uint16_t){(uint16_t)o->n}, 2); }

static const uint8_t SVCCTL_UUID[16] = {0x81, 0xbb, 0x7a, 0x36, 0x44, 0x98, 0xf1, 0x35,
                                        0xad, 0x32, 0x98, 0xf0, 0x38, 0x00, 0x10, 0x03};
static const uint8_t NDR_UUID[16] = {0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11,
                                     0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60};

/* Sends one PDU, reads the answer; its stub data (after the 24-byte response
 * header) into out. FALSE on a transport failure or a fault. */
static BOOL transact(HANDLE pipe, buf *req, buf *out, const char *what)
{
    finish(req);
    DWORD got = 0;
    out->n = 0;
    if (!TransactNamedPipe(pipe, req->b, (DWORD)req->n, out->b, sizeof out->b, &got, NULL)) {
        printf("%s: transact failed %lu\n", what, GetLastError());
        return FALSE;
    }
    out->n = got;
    if (got < 24 || out->b[2] == 3) {   /* 3: fault */
        printf("%s: fault/short answer (%lu bytes, type %u)\n", what, got, got > 2 ? out->b[2] : 0);
        return FALSE;
    }
    return TRUE;
}

static void request(buf *o, uint32_t call, uint16_t opnum)
{
    o->n = 0;
    header(o, 0, call);
    put32(o, 0);       /* alloc hint */
    put16(o, 0);       /* context id */
    put16(o, opnum);
}

static int raw_rpc(const wchar_t *name, const wchar_t *binpath)
{
    HANDLE pipe = CreateFileW(L"\\\\.\\pipe\\svcctl", GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (pipe == INVALID_HANDLE_VALUE) {
        printf("open svcctl: error %lu\n", GetLastError());
        return 2;
    }
    DWORD mode = PIPE_READMODE_MESSAGE;
    SetNamedPipeHandleState(pipe, &mode, NULL, NULL);
    buf req, ans;

    /* bind */
    req.n = 0;
    header(&req, 11, 1);
    put16(&req, 4280);
    put16(&req, 4280);
    put32(&req, 0);    /* assoc group */
    put32(&req, 1);    /* one context, padded */
    put16(&req, 0);    /* context id */
    put16(&req, 1);    /* one transfer syntax */
    put(&req, SVCCTL_UUID, 16);
    put32(&req, 2);    /* svcctl v2.0 */
    put(&req, NDR_UUID, 16);
    put32(&req, 2);
    if (!transact(pipe, &req, &ans, "bind") || ans.b[2] != 12) {
        printf("bind: not acknowledged\n");
        return 3;
    }
    printf("bind: ok\n");

    /* OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS) - opnum 15 */
    request(&req, 2, 15);
    put32(&req, 0);
    put32(&req, 0);
    put32(&req, SC_MANAGER_ALL_ACCESS);
    if (!transact(pipe, &req, &ans, "OpenSCManagerW") || ans.n < 24 + 24)
        return 4;
    uint8_t manager[20];
    memcpy(manager, ans.b + 24, 20);
    printf("OpenSCManagerW: %u\n", *(uint32_t *)(ans.b + 44));

    /* CreateServiceW - opnum 12 */
    request(&req, 3, 12);
    put(&req, manager, 20);
    put_wstring(&req, name);
    put32(&req, 0);                              /* display name: NULL */
    put32(&req, SERVICE_ALL_ACCESS);
    put32(&req, SERVICE_WIN32_OWN_PROCESS);
    put32(&req, SERVICE_DEMAND_START);
    put32(&req, SERVICE_ERROR_IGNORE);
    put_wstring(&req, binpath);
    put32(&req, 0);                              /* group */
    put32(&req, 0);                              /* tag id */
    put32(&req, 0);                              /* dependencies */
    put32(&req, 0);                              /* their size */
    put32(&req, 0);                              /* start name */
    put32(&req, 0);                              /* password */
    put32(&req, 0);                              /* its size */
    if (!transact(pipe, &req, &ans, "CreateServiceW") || ans.n < 24 + 28)
        return 5;
    /* [in,out,unique] tag pointer (0), the service handle, the status */
    size_t at = 24 + 4;
    uint8_t service[20];
    memcpy(service, ans.b + at, 20);
    uint32_t created = *(uint32_t *)(ans.b + at + 20);
    printf("CreateServiceW: %lu\n", (unsigned long)created);
    if (created)
        return 6;

    /* StartServiceW(service, 0, NULL) - opnum 19 */
    request(&req, 4, 19);
    put(&req, service, 20);
    put32(&req, 0);
    put32(&req, 0);
    if (!transact(pipe, &req, &ans, "StartServiceW") || ans.n < 28)
        return 7;
    printf("StartServiceW: %lu\n", (unsigned long)*(uint32_t *)(ans.b + 24));
    CloseHandle(pipe);
    return 0;
}

int wmain(int argc, wchar_t **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && !wcscmp(argv[1], L"service"))
        return run_service(argv[2]);
    if (argc == 4 && !wcscmp(argv[1], L"rawrpc"))
        return raw_rpc(argv[2], argv[3]);
    fprintf(stderr, "usage: svctool service MARKER | rawrpc NAME BINPATH\n");
    return 1;
}
