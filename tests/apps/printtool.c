/* printtool.c - print jobs by every path a Windows program has, for the
 * printing tests (test_print.py): each command prints one small document
 * (or lists printers) and says what happened.
 *
 *   printtool list                      EnumPrintersW: one printer name a line
 *   printtool raw PRINTER DOC TEXT      OpenPrinterW, StartDocPrinterW (RAW), WritePrinter
 *                                       of a one-page PostScript program showing TEXT
 *   printtool rawa PRINTER DOC TEXT     the same with OpenPrinterA / StartDocPrinterA
 *   printtool gdi PRINTER DOC TEXT      CreateDCW("WINSPOOL", PRINTER), StartDocW,
 *                                       TextOutW(TEXT), EndDoc
 *   printtool gdia PRINTER DOC TEXT     CreateDCA / StartDocA / TextOutA
 *   printtool addjob PRINTER DOC TEXT   AddJobW, the PostScript written to the spool
 *                                       file it names, ScheduleJob (DOC unused: the
 *                                       spooler names the job)
 *   printtool open PRINTER              OpenPrinterW, then ClosePrinter
 *   printtool alias PRINTER NEW DOC     AddPrinterW: a printer NEW with PRINTER's port,
 *                                       driver and processor (a second name for the
 *                                       same host queue), then a RAW job DOC on NEW
 *   printtool monitor QUEUE DOC TEXT    no winspool: localspl.dll's port monitor
 *                                       (InitializePrintMonitor) driven by hand,
 *                                       OpenPort("CUPS:QUEUE"), StartDocPort, WritePort
 *   printtool every PRINTER DOC TEXT    raw, rawa, gdi, gdia and addjob in turn, the
 *                                       document of each named DOC-<path>; one line
 *                                       "<path> OK ..." or "<path> ERR ..." each
 * Output: "OK" (with the job id for jobs) or "ERR <step> <GetLastError>";
 * exit code 0 on success, 1 otherwise. */
#include <windows.h>
#include <winspool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *step)
{
    printf("ERR %s %lu\n", step, GetLastError());
    return 1;
}

static wchar_t *wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = malloc(n * sizeof *w);
    MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
    return w;
}

static char *narrow(const wchar_t *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = malloc(n);
    WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

/* A one-page PostScript program that shows text (ASCII only). */
static int postscript(const char *text, char *out, size_t cap)
{
    return snprintf(out, cap,
                    "%%!PS-Adobe-3.0\n%%%%Pages: 1\n%%%%EndComments\n%%%%Page: 1 1\n"
                    "/Helvetica findfont 24 scalefont setfont\n72 700 moveto\n(%s) show\nshowpage\n%%%%EOF\n",
                    text);
}

static int print_list(void)
{
    DWORD needed = 0, count = 0;
    EnumPrintersW(PRINTER_ENUM_LOCAL | PRINTER_ENUM_CONNECTIONS, NULL, 4, NULL, 0, &needed, &count);
    BYTE *buf = malloc(needed ? needed : 1);
    if (!EnumPrintersW(PRINTER_ENUM_LOCAL | PRINTER_ENUM_CONNECTIONS, NULL, 4, buf, needed, &needed, &count))
        return fail("EnumPrinters");
    PRINTER_INFO_4W *info = (PRINTER_INFO_4W *)buf;
    for (DWORD i = 0; i < count; i++)
        printf("%ls\n", info[i].pPrinterName);
    printf("OK %lu\n", count);
    return 0;
}

static int print_raw(const char *printer, const char *doc, const char *text, BOOL ansi)
{
    HANDLE h = NULL;
    DWORD job;
    if (ansi) {
        if (!OpenPrinterA((char *)printer, &h, NULL))
            return fail("OpenPrinter");
        DOC_INFO_1A info = {(char *)doc, NULL, "RAW"};
        job = StartDocPrinterA(h, 1, (BYTE *)&info);
    } else {
        if (!OpenPrinterW(wide(printer), &h, NULL))
            return fail("OpenPrinter");
        DOC_INFO_1W info = {wide(doc), NULL, L"RAW"};
        job = StartDocPrinterW(h, 1, (BYTE *)&info);
    }
    if (!job) {
        int r = fail("StartDocPrinter");
        ClosePrinter(h);
        return r;
    }
    char data[1024];
    int n = postscript(text, data, sizeof data);
    DWORD written = 0;
    if (!StartPagePrinter(h) || !WritePrinter(h, data, (DWORD)n, &written) || written != (DWORD)n ||
        !EndPagePrinter(h))
        return fail("WritePrinter");
    if (!EndDocPrinter(h))
        return fail("EndDocPrinter");
    ClosePrinter(h);
    printf("OK %lu\n", job);
    return 0;
}

static int print_gdi(const char *printer, const char *doc, const char *text, BOOL ansi)
{
    HDC dc;
    int job;
    if (ansi) {
        dc = CreateDCA("WINSPOOL", printer, NULL, NULL);
        if (!dc)
            return fail("CreateDC");
        DOCINFOA info = {sizeof info, doc, NULL, NULL, 0};
        job = StartDocA(dc, &info);
    } else {
        dc = CreateDCW(L"WINSPOOL", wide(printer), NULL, NULL);
        if (!dc)
            return fail("CreateDC");
        DOCINFOW info = {sizeof info, wide(doc), NULL, NULL, 0};
        job = StartDocW(dc, &info);
    }
    if (job <= 0) {
        int r = fail("StartDoc");
        DeleteDC(dc);
        return r;
    }
    if (StartPage(dc) <= 0)
        return fail("StartPage");
    BOOL shown = ansi ? TextOutA(dc, 200, 200, text, (int)strlen(text))
                      : TextOutW(dc, 200, 200, wide(text), (int)wcslen(wide(text)));
    if (!shown)
        return fail("TextOut");
    if (EndPage(dc) <= 0)
        return fail("EndPage");
    if (EndDoc(dc) <= 0)
        return fail("EndDoc");
    DeleteDC(dc);
    printf("OK %d\n", job);
    return 0;
}

static int print_addjob(const char *printer, const char *doc, const char *text)
{
    HANDLE h = NULL;
    if (!OpenPrinterW(wide(printer), &h, NULL))
        return fail("OpenPrinter");
    BYTE buf[sizeof(ADDJOB_INFO_1W) + MAX_PATH * sizeof(wchar_t)];
    DWORD needed = 0;
    if (!AddJobW(h, 1, buf, sizeof buf, &needed)) {
        int r = fail("AddJob");
        ClosePrinter(h);
        return r;
    }
    ADDJOB_INFO_1W *info = (ADDJOB_INFO_1W *)buf;
    /* The job keeps the spooler's name for it (Wine: "Local Downlevel
     * Document"); doc is not used. */
    (void)doc;
    HANDLE f = CreateFileW(info->Path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return fail("CreateFile");
    char data[1024];
    int n = postscript(text, data, sizeof data);
    DWORD written;
    WriteFile(f, data, (DWORD)n, &written, NULL);
    CloseHandle(f);
    if (!ScheduleJob(h, info->JobId))
        return fail("ScheduleJob");
    ClosePrinter(h);
    printf("OK %lu\n", info->JobId);
    return 0;
}

/* MONITOR / MONITOREX of ddk/winsplp.h (not in mingw's headers). */
typedef struct monitor_functions {
    void *EnumPorts;
    BOOL (WINAPI *OpenPort)(LPWSTR, PHANDLE);
    void *OpenPortEx;
    BOOL (WINAPI *StartDocPort)(HANDLE, LPWSTR, DWORD, DWORD, LPBYTE);
    BOOL (WINAPI *WritePort)(HANDLE, LPBYTE, DWORD, LPDWORD);
    void *ReadPort;
    BOOL (WINAPI *EndDocPort)(HANDLE);
    BOOL (WINAPI *ClosePort)(HANDLE);
    void *rest[9];
} monitor_functions;
typedef struct monitor_ex {
    DWORD size;
    monitor_functions m;
} monitor_ex;

static int print_monitor(const char *queue, const char *doc, const char *text)
{
    HMODULE spl = LoadLibraryW(L"localspl.dll");
    if (!spl)
        return fail("LoadLibrary");
    monitor_ex *(WINAPI *init)(LPWSTR) = (monitor_ex *(WINAPI *)(LPWSTR))(void *)GetProcAddress(spl, "InitializePrintMonitor");
    if (!init)
        return fail("GetProcAddress");
    monitor_ex *mon = init(L"System\\CurrentControlSet\\Control\\Print\\Monitors\\Local Port");
    if (!mon)
        return fail("InitializePrintMonitor");
    wchar_t port_name[300];
    swprintf(port_name, 300, L"CUPS:%ls", wide(queue));
    HANDLE port;
    if (!mon->m.OpenPort(port_name, &port))
        return fail("OpenPort");
    DOC_INFO_1W info = {wide(doc), NULL, L"RAW"};
    if (!mon->m.StartDocPort(port, wide(queue), 1, 1, (BYTE *)&info)) {
        int r = fail("StartDocPort");
        mon->m.ClosePort(port);
        return r;
    }
    char data[1024];
    int n = postscript(text, data, sizeof data);
    DWORD written = 0;
    if (!mon->m.WritePort(port, (BYTE *)data, (DWORD)n, &written))
        return fail("WritePort");
    if (!mon->m.EndDocPort(port))
        return fail("EndDocPort");
    mon->m.ClosePort(port);
    printf("OK\n");
    return 0;
}

static int print_alias(const char *printer, const char *alias, const char *doc)
{
    HANDLE h;
    if (!OpenPrinterW(wide(printer), &h, NULL))
        return fail("OpenPrinter");
    DWORD needed = 0;
    GetPrinterW(h, 2, NULL, 0, &needed);
    PRINTER_INFO_2W *info = malloc(needed ? needed : 1);
    if (!GetPrinterW(h, 2, (BYTE *)info, needed, &needed))
        return fail("GetPrinter");
    ClosePrinter(h);
    info->pPrinterName = wide(alias);
    info->pShareName = NULL;
    info->pServerName = NULL;
    info->pSecurityDescriptor = NULL;
    info->Attributes &= ~PRINTER_ATTRIBUTE_SHARED;
    HANDLE added = AddPrinterW(NULL, 2, (BYTE *)info);
    if (!added)
        return fail("AddPrinter");
    ClosePrinter(added);
    printf("added %ls: ", info->pPortName);
    return print_raw(alias, doc, "alias", FALSE);
}

int wmain(int argc, wchar_t **wargv)
{
    char **argv = malloc((argc + 1) * sizeof *argv);
    for (int i = 0; i < argc; i++)
        argv[i] = narrow(wargv[i]);
    argv[argc] = NULL;
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return print_list();
    if (argc >= 3 && !strcmp(argv[1], "open")) {
        HANDLE h;
        if (!OpenPrinterW(wide(argv[2]), &h, NULL))
            return fail("OpenPrinter");
        ClosePrinter(h);
        printf("OK\n");
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "monitor"))
        return print_monitor(argv[2], argv[3], argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "alias"))
        return print_alias(argv[2], argv[3], argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "every")) {
        static const char *const paths[] = {"raw", "rawa", "gdi", "gdia", "addjob"};
        int failed = 0;
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            char doc[512];
            snprintf(doc, sizeof doc, "%s-%s", argv[3], paths[i]);
            printf("%s ", paths[i]);
            fflush(stdout);
            int r = !strcmp(paths[i], "raw")    ? print_raw(argv[2], doc, argv[4], FALSE)
                    : !strcmp(paths[i], "rawa") ? print_raw(argv[2], doc, argv[4], TRUE)
                    : !strcmp(paths[i], "gdi")  ? print_gdi(argv[2], doc, argv[4], FALSE)
                    : !strcmp(paths[i], "gdia") ? print_gdi(argv[2], doc, argv[4], TRUE)
                                                : print_addjob(argv[2], doc, argv[4]);
            fflush(stdout);
            failed |= r;
        }
        return failed;
    }
    if (argc >= 5 && !strcmp(argv[1], "raw"))
        return print_raw(argv[2], argv[3], argv[4], FALSE);
    if (argc >= 5 && !strcmp(argv[1], "rawa"))
        return print_raw(argv[2], argv[3], argv[4], TRUE);
    if (argc >= 5 && !strcmp(argv[1], "gdi"))
        return print_gdi(argv[2], argv[3], argv[4], FALSE);
    if (argc >= 5 && !strcmp(argv[1], "gdia"))
        return print_gdi(argv[2], argv[3], argv[4], TRUE);
    if (argc >= 5 && !strcmp(argv[1], "addjob"))
        return print_addjob(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: printtool list | open P | raw|rawa|gdi|gdia|addjob|every PRINTER DOC TEXT\n");
    return 2;
}
