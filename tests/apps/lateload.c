/* lateload.c - lateload.exe: a DLL the runtime hooks late, loaded, unloaded
 * and loaded again (tests/e2e/test_services_barrier.py).
 *
 *   lateload sechost    loads sechost.dll (the runtime hooks it from the DLL
 *                       notification), frees it, and loads it again; after
 *                       each load calls CreateServiceW(NULL, ...) and prints
 *                       "load N unloaded U error E": E 5 (ERROR_ACCESS_DENIED)
 *                       is the box's refusal, 6 (ERROR_INVALID_HANDLE) the
 *                       real function (no SCM handle: nothing is created
 *                       either way). U: whether the first copy was really
 *                       gone before the second load. Exit 0.
 *
 * The program imports neither advapi32 nor sechost, so sechost.dll is not
 * loaded at start-up and FreeLibrary can unload it. */
#include <windows.h>

#include <stdio.h>

typedef SC_HANDLE (WINAPI *CreateServiceW_fn)(SC_HANDLE, LPCWSTR, LPCWSTR, DWORD, DWORD, DWORD, DWORD, LPCWSTR,
                                             LPCWSTR, LPDWORD, LPCWSTR, LPCWSTR, LPCWSTR);

static DWORD try_create(HMODULE sechost)
{
    CreateServiceW_fn create = (CreateServiceW_fn)(void *)GetProcAddress(sechost, "CreateServiceW");
    if (!create)
        return 0;
    SetLastError(0);
    SC_HANDLE h = create(NULL, L"fvmlateload", L"fvmlateload", SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
                         SERVICE_DEMAND_START, SERVICE_ERROR_IGNORE, L"C:\\nothing.exe", NULL, NULL, NULL, NULL,
                         NULL);
    return h ? 0 : GetLastError();
}

int wmain(int argc, wchar_t **argv)
{
    if (argc < 2 || wcscmp(argv[1], L"sechost")) {
        fprintf(stderr, "usage: lateload sechost\n");
        return 2;
    }
    int was_loaded = GetModuleHandleW(L"sechost.dll") != NULL;
    printf("at-start %d\n", was_loaded);
    for (int load = 1; load <= 2; load++) {
        HMODULE sechost = LoadLibraryW(L"sechost.dll");
        if (!sechost) {
            printf("cannot load sechost.dll (error %lu)\n", GetLastError());
            return 3;
        }
        DWORD error = try_create(sechost);
        FreeLibrary(sechost);
        int unloaded = GetModuleHandleW(L"sechost.dll") == NULL;
        printf("load %d unloaded %d error %lu\n", load, unloaded, error);
        fflush(stdout);
    }
    return 0;
}
