/* guinop.c - guinop.exe, nop.exe for a program linked with user32.
 *
 * user32 (and with it win32u and gdi32) is loaded before the program runs,
 * so a boxed start of this program installs the window hooks of
 * src/runtime/gui.c in the start-up batch; bench/procstart.exe starts it
 * with "procstart.exe N guinop.exe" to measure what that costs. It creates
 * no window: what is measured is loading and exit.
 *
 *   guinop.exe          exit 0
 *   guinop.exe check    exit 10 if fvm.dll is loaded (boxed), 11 if not */
#include <windows.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc > 1)
        return GetModuleHandleW(L"fvm.dll") ? 10 : 11;
    /* A real import of user32, so the loader maps it at start. */
    return IsWindow(NULL) ? 1 : 0;
}
