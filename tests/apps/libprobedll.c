/* libprobedll.c - probedll.dll, a static import of probe.exe.
 *
 * Its DllMain records whether fvm.dll's hooks were already active when it
 * ran: the loader initialises static imports before the program's TLS
 * callbacks and entry point, so this is the earliest foreign code a boxed
 * process runs. */
#include <windows.h>

static int hooked_at_dllmain = -1;

/* 1 if this process runs boxed with its hooks in place. Two independent
 * signs: fvm.dll says it is active, and ntdll!NtCreateUserProcess is patched. */
__declspec(dllexport) int probe_is_hooked(void)
{
    HMODULE fvm = GetModuleHandleW(L"fvm.dll");
    BOOL (*status)(wchar_t *, DWORD) = fvm ? (BOOL (*)(wchar_t *, DWORD))(void *)GetProcAddress(fvm, "fvm_runtime_status") : NULL;
    const unsigned char *create = (const unsigned char *)(void *)GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtCreateUserProcess");
    return status && status(NULL, 0) && create && create[0] == 0xE9;
}

__declspec(dllexport) int probe_hooked_at_dllmain(void)
{
    return hooked_at_dllmain;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, void *reserved)
{
    if (reason == DLL_PROCESS_ATTACH)
        hooked_at_dllmain = probe_is_hooked();
    return TRUE;
}
