/* boxlimits.c - box.ini's limit keys (see boxlimits.h). */
#include "common/boxlimits.h"

#include <string.h>

BOOL box_limits_read(const wchar_t *ini, box_limits *out, char *problem, size_t problem_cap)
{
    BOOL ok = TRUE;
    memset(out, 0, sizeof *out);
    for (int k = 0; k < LIMIT_KEY_COUNT; k++) {
        wchar_t key[32], wide[64];
        char text[64];
        const char *name = limit_ini_key((limit_key)k);
        size_t i = 0;
        for (; name[i] && i + 1 < 32; i++)
            key[i] = (wchar_t)name[i];
        key[i] = 0;
        DWORD n = GetPrivateProfileStringW(L"box", key, L"", wide, 64, ini);
        if (!n)
            continue;
        for (i = 0; i < n && i + 1 < sizeof text; i++)
            text[i] = wide[i] < 0x80 ? (char)wide[i] : '?';
        text[i] = 0;
        fvm_error err;
        if (limit_value_parse((limit_key)k, text, &out->value[k], &err) != FVM_OK) {
            out->value[k] = 0;
            if (ok && problem && problem_cap) {
                size_t len = strlen(err.message);
                if (len >= problem_cap)
                    len = problem_cap - 1;
                memcpy(problem, err.message, len);
                problem[len] = 0;
            }
            ok = FALSE;
        }
    }
    return ok;
}

BOOL box_limits_write(const wchar_t *ini, limit_key key, uint64_t value)
{
    wchar_t wkey[32], wvalue[32];
    char text[32];
    const char *name = limit_ini_key(key);
    size_t i = 0;
    for (; name[i] && i + 1 < 32; i++)
        wkey[i] = (wchar_t)name[i];
    wkey[i] = 0;
    if (!value)
        return WritePrivateProfileStringW(L"box", wkey, NULL, ini) || GetLastError() == ERROR_FILE_NOT_FOUND;
    limit_format(key, value, text, sizeof text);
    for (i = 0; text[i] && i + 1 < 32; i++)
        wvalue[i] = (wchar_t)text[i];
    wvalue[i] = 0;
    return WritePrivateProfileStringW(L"box", wkey, wvalue, ini);
}
