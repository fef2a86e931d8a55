/* nop.c - nop.exe, the process that bench/procstart.c starts over and over.
 *
 * With no arguments it returns 0 at once: what is measured is process
 * creation, loading and exit, not anything the program does.
 *
 *   nop.exe          exit 0
 *   nop.exe check    exit 10 if fvm.dll is loaded in this process (boxed),
 *                    11 if not (procstart.exe uses this once, outside the
 *                    timed runs, to confirm that its children were boxed) */
#include <windows.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc > 1)
        return GetModuleHandleW(L"fvm.dll") ? 10 : 11;
    return 0;
}
