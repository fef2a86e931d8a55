/* boxcfg.c - box configuration helpers and derived object names (see boxcfg.h). */
#include "common/boxcfg.h"

WCHAR NTAPI RtlUpcaseUnicodeChar(WCHAR c);

size_t fvm_wcslen(const wchar_t *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

BOOL fvm_wcscpy(wchar_t *dst, size_t dst_chars, const wchar_t *src)
{
    size_t i;
    if (!dst_chars)
        return FALSE;
    for (i = 0; src[i]; i++) {
        if (i + 1 >= dst_chars) {
            dst[i] = 0;
            return FALSE;
        }
        dst[i] = src[i];
    }
    dst[i] = 0;
    return TRUE;
}

BOOL fvm_wcscat(wchar_t *dst, size_t dst_chars, const wchar_t *src)
{
    size_t n = fvm_wcslen(dst);
    if (n >= dst_chars)
        return FALSE;
    return fvm_wcscpy(dst + n, dst_chars - n, src);
}

wchar_t fvm_wupcase(wchar_t c)
{
    if (c >= L'a' && c <= L'z')
        return (wchar_t)(c - L'a' + L'A');
    if (c < 0x80)
        return c;
    return RtlUpcaseUnicodeChar(c);
}

int fvm_wcsicmp_n(const wchar_t *a, const wchar_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wchar_t ca = fvm_wupcase(a[i]), cb = fvm_wupcase(b[i]);
        if (ca != cb)
            return ca < cb ? -1 : 1;
        if (!ca)
            return 0;
    }
    return 0;
}

uint64_t fvm_hash_path(const wchar_t *path)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *path; path++) {
        wchar_t c = fvm_wupcase(*path == L'/' ? L'\\' : *path);
        h ^= (uint8_t)(c & 0xff);
        h *= 0x100000001b3ull;
        h ^= (uint8_t)(c >> 8);
        h *= 0x100000001b3ull;
    }
    return h;
}

static void append_hex64(wchar_t *out, size_t out_chars, uint64_t v)
{
    wchar_t hex[17];
    for (int i = 15; i >= 0; i--) {
        hex[i] = L"0123456789abcdef"[v & 15];
        v >>= 4;
    }
    hex[16] = 0;
    fvm_wcscat(out, out_chars, hex);
}

void fvm_box_object_name(const wchar_t *box_path, fvm_box_object which,
                         wchar_t *out, size_t out_chars)
{
    static const wchar_t *const suffix[] = {
        [FVM_OBJ_JOB] = L".job", [FVM_OBJ_LOCK] = L".lock",
        [FVM_OBJ_READY] = L".ready", [FVM_OBJ_PIPE] = L".ctl",
        [FVM_OBJ_INDEX_LOCK] = L".index", [FVM_OBJ_USAGE] = L".usage",
        [FVM_OBJ_SHARED] = L".shared", [FVM_OBJ_SCM] = L".scm", [FVM_OBJ_CLIPBOARD_LOCK] = L".clip",
        [FVM_OBJ_IO_TALLY] = L".iotally",
    };
    fvm_wcscpy(out, out_chars, which == FVM_OBJ_PIPE ? L"\\\\.\\pipe\\FVM." : L"Global\\FVM.");
    append_hex64(out, out_chars, fvm_hash_path(box_path));
    fvm_wcscat(out, out_chars, suffix[which]);
}

BOOL fvm_box_server_dir(const wchar_t *box_path, wchar_t *out, size_t cap)
{
    /* <root>\boxes\<name>: two levels up. */
    if (!fvm_wcscpy(out, cap, box_path))
        return FALSE;
    for (int level = 0; level < 2; level++) {
        size_t n = fvm_wcslen(out);
        while (n > 0 && out[n - 1] != L'\\' && out[n - 1] != L'/')
            n--;
        if (n < 2)
            return FALSE;
        out[n - 1] = 0;
    }
    if (fvm_wcslen(out) + 9 + 16 >= cap || !fvm_wcscat(out, cap, L"\\servers\\"))
        return FALSE;
    append_hex64(out, cap, fvm_hash_path(box_path));
    return TRUE;
}

/* [box] key of the box's box.ini into value (def when missing); FALSE if
 * the path is too long. */
static BOOL box_ini_string(const wchar_t *box_path, const wchar_t *key, const wchar_t *def, wchar_t *value,
                           DWORD cap, wchar_t *ini)
{
    if (!fvm_wcscpy(ini, FVM_PATH_MAX, box_path) || !fvm_wcscat(ini, FVM_PATH_MAX, L"\\box.ini"))
        return FALSE;
    GetPrivateProfileStringW(L"box", key, def, value, cap, ini);
    return TRUE;
}

int fvm_box_display_number(const wchar_t *box_path)
{
    wchar_t ini[FVM_PATH_MAX], value[16];
    if (!box_ini_string(box_path, L"display", L"host", value, 16, ini) || fvm_wcsicmp_n(value, L"own", 4))
        return -1;
    int n = (int)GetPrivateProfileIntW(L"box", L"display_number", -1, ini);
    return n >= 0 && n <= 65535 ? n : -2;
}

BOOL fvm_box_display_nested(const wchar_t *box_path)
{
    wchar_t ini[FVM_PATH_MAX], value[16];
    return box_ini_string(box_path, L"display", L"host", value, 16, ini) && !fvm_wcsicmp_n(value, L"nested", 7);
}

BOOL fvm_box_own_server(const wchar_t *box_path)
{
    wchar_t ini[FVM_PATH_MAX], value[16];
    return box_ini_string(box_path, L"server", L"host", value, 16, ini) && !fvm_wcsicmp_n(value, L"own", 4);
}
