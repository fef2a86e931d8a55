/* racer.c - racer.exe: a hostile program that races the hooks' decision.
 *
 *   racer file ALLOWED DENIED N     NtOpenFile(read) N times on a name that a
 *                                   second thread flips between two paths
 *   racer key ALLOWED DENIED N      the same with NtOpenKey + NtQueryValueKey("Secret")
 *
 * ALLOWED and DENIED must have the same length. A hook that decides on the
 * caller's name and then hands the caller's buffer to the real call lets the
 * flip land between the two: the decision says "allowed", the system call
 * opens the denied name. Prints "escaped K of N" (K opens that read the
 * denied object's content: its data holds "SECRET") and exits 0.
 *
 * RACER_HOLD=N: spins the flipper holds the allowed name between flips
 * (default 0). */
#define WIN32_NO_STATUS
#include <windows.h>
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#include <winternl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

NTSTATUS NTAPI NtOpenFile(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, ULONG, ULONG);
NTSTATUS NTAPI NtReadFile(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, PVOID, ULONG, PLARGE_INTEGER, PULONG);
NTSTATUS NTAPI NtOpenKey(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
NTSTATUS NTAPI NtQueryValueKey(HANDLE, PUNICODE_STRING, ULONG, PVOID, ULONG, PULONG);

static wchar_t g_name[1024];
static wchar_t g_allowed[1024], g_denied[1024];
static size_t g_len;
static volatile LONG g_stop;
static int g_hold;   /* spins with the allowed name between flips */

static DWORD WINAPI flipper(void *arg)
{
    (void)arg;
    /* Mostly the allowed name, the denied one for a moment: the hook's own
     * reads tend to see the allowed name, the system call's may not. */
    while (!g_stop) {
        for (volatile int spin = 0; spin < g_hold; spin++)
            ;
        memcpy(g_name, g_denied, g_len * 2);
        memcpy(g_name, g_allowed, g_len * 2);
    }
    return 0;
}

static BOOL read_file_secret(HANDLE h)
{
    char buf[64] = {0};
    IO_STATUS_BLOCK io;
    return NtReadFile(h, NULL, NULL, NULL, &io, buf, sizeof buf - 1, NULL, NULL) >= 0 && strstr(buf, "SECRET");
}

static BOOL read_key_secret(HANDLE h)
{
    UNICODE_STRING v;
    BYTE buf[256];
    ULONG len;
    RtlInitUnicodeString(&v, L"Secret");
    return NtQueryValueKey(h, &v, 2, buf, sizeof buf, &len) >= 0;
}

int wmain(int argc, wchar_t **argv)
{
    if (argc != 5 || wcslen(argv[2]) != wcslen(argv[3]) || wcslen(argv[2]) >= 1024) {
        fprintf(stderr, "usage: racer file|key ALLOWED DENIED N (same length)\n");
        return 2;
    }
    BOOL files = !wcscmp(argv[1], L"file");
    wcscpy(g_allowed, argv[2]);
    wcscpy(g_denied, argv[3]);
    g_len = wcslen(g_allowed);
    wcscpy(g_name, g_allowed);
    int rounds = _wtoi(argv[4]), escaped = 0, opened = 0;
    g_hold = getenv("RACER_HOLD") ? atoi(getenv("RACER_HOLD")) : 0;
    HANDLE thread = CreateThread(NULL, 0, flipper, NULL, 0, NULL);
    for (int i = 0; i < rounds; i++) {
        UNICODE_STRING us = { (USHORT)(g_len * 2), (USHORT)(g_len * 2), g_name };
        OBJECT_ATTRIBUTES oa;
        InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
        HANDLE h;
        IO_STATUS_BLOCK io;
        NTSTATUS st = files ? NtOpenFile(&h, GENERIC_READ | SYNCHRONIZE, &oa, &io, FILE_SHARE_READ,
                                         FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE)
                            : NtOpenKey(&h, KEY_READ, &oa);
        if (st < 0) {
            if (getenv("RACER_VERBOSE") && i < 5)
                printf("status 0x%08lx\n", (unsigned long)st);
            continue;
        }
        opened++;
        if (files ? read_file_secret(h) : read_key_secret(h))
            escaped++;
        CloseHandle(h);
    }
    g_stop = 1;
    WaitForSingleObject(thread, INFINITE);
    printf("escaped %d of %d (opened %d)\n", escaped, rounds, opened);
    return 0;
}
