/* dump_prologues.c - print the first bytes of the functions FVM hooks.
 *
 * The hook engine's unit tests decode the real prologues of Wine's DLLs
 * natively (tests/unit/prologues.h). This program regenerates that header
 * under Wine so the data is reproducible rather than hand-typed:
 *
 *     wine build/win/apps/dump_prologues.exe > tests/unit/prologues.h
 *
 * Each function is resolved with GetProcAddress exactly like the runtime
 * does, and its run-time address is kept with the bytes: RIP-relative
 * operands only make sense relative to where the code really lives. */
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>

enum { PROLOGUE_BYTES = 32 };

struct wanted_function {
    const char *module;   /* the DLL file name passed to LoadLibraryA */
    const char *function; /* the exported name */
};

static const struct wanted_function wanted[] = {
    { "ntdll.dll", "NtCreateUserProcess" },
    { "ntdll.dll", "NtCreateFile" },
    { "ntdll.dll", "NtOpenFile" },
    { "ntdll.dll", "NtQueryAttributesFile" },
    { "ntdll.dll", "NtCreateKey" },
    { "ntdll.dll", "NtOpenKeyEx" },
    { "ntdll.dll", "NtSetValueKey" },
    { "ntdll.dll", "NtCreateMutant" },
    { "ntdll.dll", "NtResumeThread" },
    { "ntdll.dll", "LdrLoadDll" },
    { "kernelbase.dll", "CreateFileW" },
    { "kernelbase.dll", "CreateProcessW" },
    { "kernelbase.dll", "CreateProcessInternalW" },
    { "kernel32.dll", "CreateFileW" },
    { "kernel32.dll", "CreateProcessW" },
    { "kernel32.dll", "CreateProcessInternalW" },
    { "sechost.dll", "OpenSCManagerW" },
    { "sechost.dll", "CreateServiceW" },
    { "sechost.dll", "StartServiceW" },
    { "advapi32.dll", "OpenSCManagerW" },
    { "advapi32.dll", "CreateServiceW" },
    { "advapi32.dll", "StartServiceW" },
    { "user32.dll", "GetDC" },
    { "user32.dll", "GetWindowDC" },
    { "user32.dll", "SetWindowDisplayAffinity" },
    { "user32.dll", "FindWindowW" },
    { "user32.dll", "CreateDesktopW" },
    { "win32u.dll", "NtUserFindWindowEx" },
    { "win32u.dll", "NtUserGetDC" },
    { "gdi32.dll", "BitBlt" },
    { "gdi32.dll", "StartDocW" },
    { "gdi32.dll", "CreateDCW" },
    { "ws2_32.dll", "connect" },
    { "ws2_32.dll", "bind" },
    { "ws2_32.dll", "sendto" },
    { "ws2_32.dll", "WSAConnect" },
    { "ws2_32.dll", "GetAddrInfoW" },
    { "winspool.drv", "OpenPrinterW" },
};

/* "winspool.drv" -> "winspool": the module part of a C identifier. */
static void module_stem(const char *module, char *stem, size_t stem_size)
{
    size_t i = 0;
    for (; module[i] && module[i] != '.' && i + 1 < stem_size; i++)
        stem[i] = module[i];
    stem[i] = 0;
}

int wmain(void)
{
    size_t count = sizeof wanted / sizeof wanted[0];
    int found[sizeof wanted / sizeof wanted[0]];

    /* LF line ends, so the redirected output is the committed file byte for byte. */
    _setmode(_fileno(stdout), _O_BINARY);

    printf("/* prologues.h - the first %d bytes of real Wine DLL functions (x64).\n"
           " *\n"
           " * GENERATED, do not edit: regenerate under Wine with\n"
           " *     wine build/win/apps/dump_prologues.exe > tests/unit/prologues.h\n"
           " * (source: tests/apps/dump_prologues.c). The unit tests decode these\n"
           " * bytes and build trampolines from them at their real addresses, so the\n"
           " * length disassembler is checked against the code it really meets. */\n"
           "#ifndef FVM_TESTS_PROLOGUES_H\n#define FVM_TESTS_PROLOGUES_H\n\n"
           "#include <stdint.h>\n\n", PROLOGUE_BYTES);

    for (size_t i = 0; i < count; i++) {
        char stem[32];
        HMODULE module = LoadLibraryA(wanted[i].module);
        const uint8_t *code = module ? (const uint8_t *)GetProcAddress(module, wanted[i].function) : NULL;

        found[i] = code != NULL;
        module_stem(wanted[i].module, stem, sizeof stem);
        if (!code) {
            printf("/* %s!%s: not exported by this Wine */\n\n", stem, wanted[i].function);
            continue;
        }
        printf("/* %s!%s at %p */\n", stem, wanted[i].function, (const void *)code);
        printf("static const uint8_t prologue_%s_%s[%d] = {", stem, wanted[i].function, PROLOGUE_BYTES);
        for (int b = 0; b < PROLOGUE_BYTES; b++)
            printf("%s0x%02x", b == 0 ? "\n    " : b % 8 == 0 ? ",\n    " : ", ", code[b]);
        printf("\n};\n\n");
    }

    printf("struct prologue_sample {\n"
           "    const char *name;      /* module!function */\n"
           "    uint64_t address;      /* where Wine mapped it when dumped */\n"
           "    const uint8_t *bytes;  /* %d bytes */\n"
           "};\n\n"
           "static const struct prologue_sample prologue_samples[] = {\n", PROLOGUE_BYTES);
    for (size_t i = 0; i < count; i++) {
        char stem[32];
        HMODULE module;
        if (!found[i])
            continue;
        module = GetModuleHandleA(wanted[i].module);
        module_stem(wanted[i].module, stem, sizeof stem);
        printf("    { \"%s!%s\", 0x%llxull, prologue_%s_%s },\n", stem, wanted[i].function,
               (unsigned long long)(ULONG_PTR)GetProcAddress(module, wanted[i].function),
               stem, wanted[i].function);
    }
    printf("};\n\n#endif\n");
    return 0;
}
