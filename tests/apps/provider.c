/* provider.c - provider.exe, a sample decision provider (include/fvm/provider.h).
 *
 *   provider.exe PIPE WORD [DELAY_MS]
 *
 * Listens on \\.\pipe\PIPE; for every request prints the request line to
 * standard output, waits DELAY_MS, and answers WORD (allow, deny, hide, read
 * or open). Runs until killed. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fvm/provider.h"

int wmain(int argc, wchar_t **argv)
{
    if (argc < 3)
        return 2;
    wchar_t name[256];
    _snwprintf(name, 256, L"\\\\.\\pipe\\%ls", argv[1]);
    char word[32];
    WideCharToMultiByte(CP_UTF8, 0, argv[2], -1, word, sizeof word, NULL, NULL);
    DWORD delay = argc > 3 ? (DWORD)_wtoi(argv[3]) : 0;
    printf("provider ready\n");
    fflush(stdout);
    for (;;) {
        HANDLE pipe = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                       PIPE_UNLIMITED_INSTANCES, 4096, FVM_PROVIDER_MAX_LINE, 0, NULL);
        if (pipe == INVALID_HANDLE_VALUE)
            return 1;
        if (ConnectNamedPipe(pipe, NULL) || GetLastError() == ERROR_PIPE_CONNECTED) {
            char line[FVM_PROVIDER_MAX_LINE + 1];
            DWORD got = 0, n = 0;
            while (got < FVM_PROVIDER_MAX_LINE && ReadFile(pipe, line + got, FVM_PROVIDER_MAX_LINE - got, &n, NULL) && n) {
                got += n;
                if (line[got - 1] == '\n')
                    break;
            }
            line[got] = 0;
            printf("request: %s", line);
            fflush(stdout);
            Sleep(delay);
            char reply[40];
            int len = snprintf(reply, sizeof reply, "%s\n", word);
            DWORD written;
            WriteFile(pipe, reply, (DWORD)len, &written, NULL);
            FlushFileBuffers(pipe);
            DisconnectNamedPipe(pipe);
        }
        CloseHandle(pipe);
    }
}
