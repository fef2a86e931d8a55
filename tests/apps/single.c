/* single.c - single.exe, a single-instance program as real ones are written.
 *
 *   single.exe [--checks=mutex,pipe,window] [--name NAME] [--until FILE] [--timeout S]
 *
 * Looks for a running copy of itself by up to three signs, in this order,
 * as real programs combine them:
 *   mutex   CreateMutex("Local\FvmSingleDemo.NAME") reports ERROR_ALREADY_EXISTS
 *   pipe    CreateNamedPipe("\\.\pipe\FvmSingleDemo.NAME") with
 *           FILE_FLAG_FIRST_PIPE_INSTANCE is refused (another server owns it)
 *   window  FindWindow("FvmSingleDemo.NAME", NULL) finds a window
 * (default: all three; NAME defaults to "default"). The first sign found
 * decides: it prints "running copy found by CHECK" and exits with 20 (mutex),
 * 21 (pipe) or 22 (window). Otherwise it owns all the selected signs - the
 * mutex, the pipe server, a window of its own class titled
 * "FvmSingleDemo NAME" - prints "ready" and stays, pumping messages, until
 * FILE exists (--until) or the timeout passes (default 120 s), then exits 0.
 * Exit 3: a sign could not be created (e.g. no display for the window). */
#include <windows.h>

#include <stdio.h>
#include <string.h>
#include <wchar.h>

enum { CHECK_MUTEX = 1, CHECK_PIPE = 2, CHECK_WINDOW = 4 };

static LRESULT CALLBACK window_proc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static int parse_checks(const wchar_t *list)
{
    int checks = 0;
    while (*list) {
        size_t n = wcscspn(list, L",");
        if (n == 5 && !wcsncmp(list, L"mutex", 5))
            checks |= CHECK_MUTEX;
        else if (n == 4 && !wcsncmp(list, L"pipe", 4))
            checks |= CHECK_PIPE;
        else if (n == 6 && !wcsncmp(list, L"window", 6))
            checks |= CHECK_WINDOW;
        else
            return -1;
        list += n;
        if (*list == L',')
            list++;
    }
    return checks;
}

static int found(const char *check, int code)
{
    printf("running copy found by %s\n", check);
    fflush(stdout);
    return code;
}

int wmain(int argc, wchar_t **argv)
{
    int checks = CHECK_MUTEX | CHECK_PIPE | CHECK_WINDOW;
    const wchar_t *name = L"default", *until = NULL;
    DWORD timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        if (!wcsncmp(argv[i], L"--checks=", 9)) {
            checks = parse_checks(argv[i] + 9);
        } else if (!wcscmp(argv[i], L"--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (!wcscmp(argv[i], L"--until") && i + 1 < argc) {
            until = argv[++i];
        } else if (!wcscmp(argv[i], L"--timeout") && i + 1 < argc) {
            timeout_s = (DWORD)_wtoi(argv[++i]);
        } else {
            checks = -1;
        }
    }
    if (checks <= 0) {
        fprintf(stderr, "usage: single.exe [--checks=mutex,pipe,window] [--name NAME] [--until FILE] [--timeout S]\n");
        return 2;
    }
    wchar_t mutex_name[200], pipe_name[200], class_name[200], title[200];
    _snwprintf(mutex_name, 200, L"Local\\FvmSingleDemo.%ls", name);
    _snwprintf(pipe_name, 200, L"\\\\.\\pipe\\FvmSingleDemo.%ls", name);
    _snwprintf(class_name, 200, L"FvmSingleDemo.%ls", name);
    _snwprintf(title, 200, L"FvmSingleDemo %ls", name);

    HANDLE mutex = NULL, pipe = INVALID_HANDLE_VALUE;
    if (checks & CHECK_MUTEX) {
        mutex = CreateMutexW(NULL, TRUE, mutex_name);
        if (mutex && GetLastError() == ERROR_ALREADY_EXISTS)
            return found("mutex", 20);
        if (!mutex) {
            printf("cannot create the mutex (error %lu)\n", GetLastError());
            return 3;
        }
    }
    if (checks & CHECK_PIPE) {
        pipe = CreateNamedPipeW(pipe_name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                                PIPE_TYPE_BYTE | PIPE_WAIT, 1, 512, 512, 0, NULL);
        if (pipe == INVALID_HANDLE_VALUE) {
            DWORD error = GetLastError();
            if (error == ERROR_ACCESS_DENIED || error == ERROR_PIPE_BUSY)
                return found("pipe", 21);
            printf("cannot create the pipe server (error %lu)\n", error);
            return 3;
        }
    }
    if (checks & CHECK_WINDOW) {
        if (FindWindowW(class_name, NULL))
            return found("window", 22);
        WNDCLASSW wc;
        memset(&wc, 0, sizeof wc);
        wc.lpfnWndProc = window_proc;
        wc.hInstance = GetModuleHandleW(NULL);
        wc.lpszClassName = class_name;
        if (!RegisterClassW(&wc)) {
            printf("cannot register the window class (error %lu)\n", GetLastError());
            return 3;
        }
        HWND hwnd = CreateWindowExW(0, class_name, title, WS_OVERLAPPEDWINDOW, 0, 0, 200, 100, NULL, NULL,
                                    wc.hInstance, NULL);
        if (!hwnd) {
            printf("cannot create the window (error %lu)\n", GetLastError());
            return 3;
        }
    }
    printf("ready\n");
    fflush(stdout);

    ULONGLONG end = GetTickCount64() + (ULONGLONG)timeout_s * 1000;
    while (GetTickCount64() < end) {
        if (until && GetFileAttributesW(until) != INVALID_FILE_ATTRIBUTES)
            break;
        MsgWaitForMultipleObjects(0, NULL, FALSE, 100, QS_ALLINPUT);
        MSG msg;
        while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE)) {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
    if (pipe != INVALID_HANDLE_VALUE)
        CloseHandle(pipe);
    if (mutex)
        CloseHandle(mutex);
    return 0;
}
