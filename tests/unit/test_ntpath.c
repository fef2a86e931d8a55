/* test_ntpath.c - NT path canonicalization: every spelling a program or ntdll
 * can produce, with the canonical result expected, hostile spellings that try
 * to leave a folder or dodge a rule, host <-> box mapping, and comparisons.
 * Strings are u"" literals; expected canonical paths are written the way
 * they should come out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>
#include <cmocka.h>

#include "core/ntpath.h"

#define U(s) ((const uint16_t *)(s))

static size_t ulen(const char16_t *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void to_ascii(const uint16_t *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7F)
            out[o++] = (char)s[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\u%04X", s[i]);
    }
    out[o] = 0;
}

/* The paths are big; the tests keep them in static storage. */
static ntpath result, other, third;

static const ntpath_volume test_volumes[] = {
    {U(u"\\Device\\HarddiskVolume1"), 23, 'C'},
    {U(u"\\Device\\HarddiskVolume2"), 23, 'z'},
    {U(u"\\??\\Volume{11111111-2222-3333-4444-555555555555}"), 48, 'D'},
};

static ntpath_context test_context(void)
{
    ntpath_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.volumes = test_volumes;
    ctx.volume_count = 3;
    ctx.current_dir.units = U(u"C:\\Users\\me\\work");
    ctx.current_dir.len = 16;
    ctx.drive_dirs['D' - 'A'].units = U(u"D:\\data");
    ctx.drive_dirs['D' - 'A'].len = 7;
    ctx.system_root.units = U(u"C:\\Windows");
    ctx.system_root.len = 10;
    ctx.computer_name.units = U(u"MYPC");
    ctx.computer_name.len = 4;
    return ctx;
}

static void assert_path(const ntpath *p, const char16_t *expected, const char *input)
{
    char got[512], want[512];
    to_ascii(p->path, p->len, got, sizeof got);
    to_ascii(U(expected), ulen(expected), want, sizeof want);
    if (strcmp(got, want) != 0)
        fail_msg("'%s': canonical '%s', expected '%s'", input, got, want);
    assert_int_equal(p->path[p->len], 0);
}

/* Normalizes `in` with ctx and checks kind and canonical path. */
static ntpath *expect_ctx(const ntpath_context *ctx, const char16_t *in, ntpath_kind kind, const char16_t *canonical)
{
    fvm_error err = {0};
    char shown[512];
    to_ascii(U(in), ulen(in), shown, sizeof shown);
    fvm_status st = ntpath_normalize(U(in), ulen(in), ctx, &result, &err);
    if (st != FVM_OK)
        fail_msg("'%s': %s: %s", shown, fvm_status_name(st), err.message);
    if (result.kind != kind)
        fail_msg("'%s': kind %s, expected %s", shown, ntpath_kind_name(result.kind), ntpath_kind_name(kind));
    assert_path(&result, canonical, shown);
    return &result;
}

static ntpath *expect(const char16_t *in, ntpath_kind kind, const char16_t *canonical)
{
    ntpath_context ctx = test_context();
    return expect_ctx(&ctx, in, kind, canonical);
}

static ntpath *expect_drive(const char16_t *in, const char16_t *canonical)
{
    return expect(in, NTPATH_KIND_DRIVE, canonical);
}

static void expect_error_ctx(const ntpath_context *ctx, const char16_t *in, fvm_status status, const char *in_message)
{
    fvm_error err = {0};
    char shown[512];
    to_ascii(U(in), ulen(in), shown, sizeof shown);
    fvm_status st = ntpath_normalize(U(in), ulen(in), ctx, &result, &err);
    if (st != status)
        fail_msg("'%s': status %s, expected %s (message: %s)", shown, fvm_status_name(st), fvm_status_name(status),
                 err.message);
    assert_int_equal(result.kind, NTPATH_KIND_NONE);
    if (!strstr(err.message, in_message))
        fail_msg("'%s': message '%s' does not contain '%s'", shown, err.message, in_message);
}

static void expect_error(const char16_t *in, fvm_status status, const char *in_message)
{
    ntpath_context ctx = test_context();
    expect_error_ctx(&ctx, in, status, in_message);
}

static void assert_flags(const ntpath *p, uint32_t set, uint32_t clear)
{
    if ((p->flags & set) != set || (p->flags & clear) != 0)
        fail_msg("flags 0x%x: expected set 0x%x and clear 0x%x", p->flags, set, clear);
}

static void assert_stream(const ntpath *p, const char16_t *stream)
{
    char got[300], want[300];
    to_ascii(p->stream, p->stream_len, got, sizeof got);
    to_ascii(U(stream), ulen(stream), want, sizeof want);
    assert_string_equal(got, want);
}

/* ---- NT forms ---------------------------------------------------------------- */

static void test_nt_drive_forms(void **state)
{
    expect_drive(u"\\??\\C:\\a\\b", u"\\??\\C:\\a\\b");
    expect_drive(u"\\DosDevices\\C:\\a", u"\\??\\C:\\a");
    expect_drive(u"\\GLOBAL??\\C:\\a", u"\\??\\C:\\a");
    expect_drive(u"\\??\\Global\\C:\\a", u"\\??\\C:\\a");
    expect_drive(u"\\??\\c:\\Dir\\File", u"\\??\\C:\\Dir\\File");
    assert_flags(expect_drive(u"\\??\\C:\\", u"\\??\\C:\\"), NTPATH_FLAG_ROOT, NTPATH_FLAG_TRAILING_SEPARATOR);
    assert_flags(expect_drive(u"\\??\\C:\\dir\\", u"\\??\\C:\\dir"), NTPATH_FLAG_TRAILING_SEPARATOR, NTPATH_FLAG_ROOT);
    ntpath *v = expect(u"\\??\\C:", NTPATH_KIND_VOLUME, u"\\??\\C:");
    assert_int_equal(v->drive, 'C');
    assert_flags(v, NTPATH_FLAG_RAW_STORAGE, 0);
    ntpath *d = expect_drive(u"\\??\\C:\\x", u"\\??\\C:\\x");
    assert_int_equal(d->drive, 'C');
    assert_int_equal(d->root_len, 6);
    assert_int_equal(d->name_offset, 7);
}

static void test_nt_volume_devices(void **state)
{
    assert_flags(expect_drive(u"\\Device\\HarddiskVolume1\\x", u"\\??\\C:\\x"), NTPATH_FLAG_VIA_DEVICE_NAME, 0);
    expect_drive(u"\\device\\harddiskvolume1\\Windows\\win.ini", u"\\??\\C:\\Windows\\win.ini");
    expect_drive(u"\\Device\\HarddiskVolume2\\home", u"\\??\\Z:\\home");
    expect(u"\\Device\\HarddiskVolume1", NTPATH_KIND_VOLUME, u"\\??\\C:");
    expect_drive(u"\\Device\\HarddiskVolume1\\", u"\\??\\C:\\");
    expect_drive(u"\\??\\Volume{11111111-2222-3333-4444-555555555555}\\x", u"\\??\\D:\\x");
    expect_drive(u"\\\\?\\Volume{11111111-2222-3333-4444-555555555555}\\x", u"\\??\\D:\\x");
    expect_drive(u"\\GLOBAL??\\HarddiskVolume1\\x", u"\\??\\C:\\x");
    expect_drive(u"\\??\\GLOBALROOT\\Device\\HarddiskVolume1\\x", u"\\??\\C:\\x");
    expect_drive(u"\\\\?\\GLOBALROOT\\Device\\HarddiskVolume1\\x", u"\\??\\C:\\x");
    expect_drive(u"\\\\.\\GLOBALROOT\\Device\\HarddiskVolume1\\x", u"\\??\\C:\\x");
    expect_drive(u"\\??\\GLOBALROOT\\??\\C:\\x", u"\\??\\C:\\x");
    expect_drive(u"\\??\\GLOBALROOT\\GLOBAL??\\GLOBALROOT\\DosDevices\\Global\\Global\\C:\\x", u"\\??\\C:\\x");
    /* Each GLOBALROOT link recurses: a long chain is refused, not followed. */
    static uint16_t chain[16 * 20 + 8];
    size_t n = 0;
    for (int i = 0; i < 20; i++) {
        memcpy(chain + n, u"\\??\\GLOBALROOT", 14 * sizeof(uint16_t));
        n += 14;
    }
    memcpy(chain + n, u"\\??\\C:\\x", 8 * sizeof(uint16_t));
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(chain, n + 8, NULL, &result, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "too many links"));
    assert_int_equal(ntpath_normalize(chain + 14 * 12, n + 8 - 14 * 12, NULL, &result, &err), FVM_OK);
    /* Unknown storage is an error, never a harmless-looking object. */
    expect_error(u"\\Device\\HarddiskVolume9\\x", FVM_E_NOTFOUND, "HarddiskVolume9");
    expect_error(u"\\Device\\HarddiskVolume10\\x", FVM_E_NOTFOUND, "volume table");
    expect_error(u"\\??\\Volume{00000000-0000-0000-0000-000000000000}\\x", FVM_E_NOTFOUND, "offset 4");
    expect_error(u"\\Device\\Harddisk0\\Partition1\\x", FVM_E_NOTFOUND, "Harddisk0");
    ntpath_context none;
    memset(&none, 0, sizeof none);
    expect_error_ctx(&none, u"\\Device\\HarddiskVolume1\\x", FVM_E_NOTFOUND, "volume table");
    expect_error_ctx(NULL, u"\\Device\\HarddiskVolume1\\x", FVM_E_NOTFOUND, "volume table");
    /* Devices we do not know stay objects. */
    expect(u"\\Device\\CdRom0\\x", NTPATH_KIND_OTHER_NT, u"\\Device\\CdRom0\\x");
}

static void test_system_root(void **state)
{
    assert_flags(expect_drive(u"\\SystemRoot\\System32\\x.dll", u"\\??\\C:\\Windows\\System32\\x.dll"),
                 NTPATH_FLAG_VIA_DEVICE_NAME, 0);
    expect_drive(u"\\SystemRoot", u"\\??\\C:\\Windows");
    expect_drive(u"\\SystemRoot\\..\\..\\x", u"\\??\\C:\\x");
    expect_error_ctx(NULL, u"\\SystemRoot\\x", FVM_E_NOTFOUND, "system root");
}

static void test_unc_forms_all_equal(void **state)
{
    static const char16_t *const forms[] = {
        u"\\??\\UNC\\srv\\share\\dir\\f.txt",
        u"\\??\\unc\\srv\\share\\dir\\f.txt",
        u"\\DosDevices\\UNC\\srv\\share\\dir\\f.txt",
        u"\\Device\\Mup\\srv\\share\\dir\\f.txt",
        u"\\Device\\LanmanRedirector\\srv\\share\\dir\\f.txt",
        u"\\Device\\Mup\\;LanmanRedirector\\;Z:000000000000abcd\\srv\\share\\dir\\f.txt",
        u"\\\\srv\\share\\dir\\f.txt",
        u"//srv/share/dir/f.txt",
        u"\\\\?\\UNC\\srv\\share\\dir\\f.txt",
        u"\\\\.\\UNC\\srv\\share\\dir\\f.txt",
        u"\\\\srv\\share\\x\\..\\dir\\.\\f.txt",
        u"\\??\\UNC\\SRV\\SHARE\\DIR\\F.TXT",
    };
    ntpath_context ctx = test_context();
    ntpath_normalize(U(forms[0]), ulen(forms[0]), &ctx, &other, NULL);
    assert_path(&other, u"\\??\\UNC\\srv\\share\\dir\\f.txt", "first UNC form");
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ntpath *p = expect(forms[i], NTPATH_KIND_UNC, i == 11 ? u"\\??\\UNC\\SRV\\SHARE\\DIR\\F.TXT" : forms[0]);
        if (!ntpath_equal(p, &other))
            fail_msg("UNC form %lu differs from the first", (unsigned long)i);
        assert_true(ntpath_hash(p) == ntpath_hash(&other));
    }
    ntpath *root = expect(u"\\\\srv\\share", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\");
    assert_flags(root, NTPATH_FLAG_ROOT, 0);
    char server[32];
    to_ascii(root->path + root->server_offset, root->server_len, server, sizeof server);
    assert_string_equal(server, "srv");
    to_ascii(root->path + root->share_offset, root->share_len, server, sizeof server);
    assert_string_equal(server, "share");
    expect(u"\\\\srv\\share\\a\\..\\..\\..", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\");
    expect_error(u"\\??\\UNC\\srv", FVM_E_INVALID, "share");
    expect_error(u"\\??\\UNC\\", FVM_E_INVALID, "server");
    expect_error(u"\\\\srv", FVM_E_INVALID, "share");
    expect_error(u"\\\\\\srv\\share", FVM_E_INVALID, "empty server");
    expect_error(u"\\\\srv\\..\\x", FVM_E_INVALID, "share name");
    expect(u"\\Device\\Mup", NTPATH_KIND_DEVICE, u"\\Device\\Mup");
}

static void test_loopback_and_admin_shares(void **state)
{
    assert_flags(expect_drive(u"\\\\localhost\\C$\\Windows", u"\\??\\C:\\Windows"),
                 NTPATH_FLAG_ADMIN_SHARE | NTPATH_FLAG_LOOPBACK_UNC, 0);
    expect_drive(u"\\??\\UNC\\127.0.0.1\\d$\\x", u"\\??\\D:\\x");
    expect_drive(u"\\\\mypc\\c$", u"\\??\\C:\\");
    assert_flags(expect(u"\\\\localhost\\share\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\localhost\\share\\x"),
                 NTPATH_FLAG_LOOPBACK_UNC, NTPATH_FLAG_ADMIN_SHARE);
    assert_flags(expect(u"\\\\otherpc\\C$\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\otherpc\\C$\\x"), 0,
                 NTPATH_FLAG_LOOPBACK_UNC);
}

static void test_pipes_mailslots_devices(void **state)
{
    expect(u"\\Device\\NamedPipe\\x", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\x");
    expect(u"\\??\\pipe\\x", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\x");
    expect(u"\\\\.\\pipe\\x", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\x");
    expect(u"\\\\.\\PIPE\\a/b", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\a\\b");
    /* In NT form a pipe name is flat: backslashes and dots are kept. */
    expect(u"\\??\\pipe\\a\\b.", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\a\\b.");
    expect_error(u"\\??\\pipe\\..\\C:\\x", FVM_E_INVALID, "pipe");
    assert_flags(expect(u"\\Device\\NamedPipe\\", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\"), NTPATH_FLAG_ROOT, 0);
    expect(u"\\\\srv\\pipe\\x", NTPATH_KIND_PIPE, u"\\??\\UNC\\srv\\pipe\\x");
    expect(u"\\Device\\MailSlot\\m", NTPATH_KIND_MAILSLOT, u"\\Device\\MailSlot\\m");
    expect(u"\\??\\mailslot\\m", NTPATH_KIND_MAILSLOT, u"\\Device\\MailSlot\\m");
    expect(u"\\\\.\\mailslot\\m", NTPATH_KIND_MAILSLOT, u"\\Device\\MailSlot\\m");
    expect(u"\\\\*\\mailslot\\m", NTPATH_KIND_MAILSLOT, u"\\??\\UNC\\*\\mailslot\\m");
    expect(u"\\??\\CON", NTPATH_KIND_DEVICE, u"\\??\\CON");
    expect(u"\\??\\nul", NTPATH_KIND_DEVICE, u"\\??\\NUL");
    expect(u"\\??\\CONOUT$", NTPATH_KIND_DEVICE, u"\\??\\CONOUT$");
    expect(u"\\\\.\\COM1", NTPATH_KIND_DEVICE, u"\\??\\COM1");
    expect(u"\\Device\\Null", NTPATH_KIND_DEVICE, u"\\Device\\Null");
    expect(u"\\Device\\Afd\\Endpoint", NTPATH_KIND_DEVICE, u"\\Device\\Afd\\Endpoint");
    assert_flags(expect(u"\\\\.\\PhysicalDrive0", NTPATH_KIND_DEVICE, u"\\??\\PhysicalDrive0"),
                 NTPATH_FLAG_RAW_STORAGE, 0);
    expect(u"\\\\.\\C:", NTPATH_KIND_VOLUME, u"\\??\\C:");
    expect(u"\\\\?\\C:", NTPATH_KIND_VOLUME, u"\\??\\C:");
    assert_flags(expect(u"\\??\\unix\\home\\me", NTPATH_KIND_OTHER_NT, u"\\??\\unix\\home\\me"),
                 NTPATH_FLAG_WINE_UNIX, 0);
    expect(u"\\??", NTPATH_KIND_OTHER_NT, u"\\??");
    expect(u"\\??\\Foo\\bar", NTPATH_KIND_OTHER_NT, u"\\??\\Foo\\bar");
    ntpath_context nt = test_context();
    nt.input = NTPATH_INPUT_NT;
    expect_ctx(&nt, u"\\BaseNamedObjects\\x", NTPATH_KIND_OTHER_NT, u"\\BaseNamedObjects\\x");
    expect_ctx(&nt, u"\\", NTPATH_KIND_OTHER_NT, u"\\");
    expect_ctx(&nt, u"\\Windows\\WindowStations", NTPATH_KIND_OTHER_NT, u"\\Windows\\WindowStations");
}

static void test_win32_device_names_in_last_component(void **state)
{
    assert_flags(expect(u"C:\\dir\\NUL.txt", NTPATH_KIND_DEVICE, u"\\??\\NUL"), NTPATH_FLAG_DOS_DEVICE_NAME, 0);
    expect(u"C:\\dir\\nul", NTPATH_KIND_DEVICE, u"\\??\\NUL");
    expect(u"C:\\dir\\com1.log", NTPATH_KIND_DEVICE, u"\\??\\COM1");
    expect(u"C:\\dir\\lpt\u00B9", NTPATH_KIND_DEVICE, u"\\??\\LPT\u00B9");
    expect(u"C:\\dir\\nul .txt", NTPATH_KIND_DEVICE, u"\\??\\NUL");
    expect(u"C:\\dir\\aux:x", NTPATH_KIND_DEVICE, u"\\??\\AUX");
    expect(u"nul", NTPATH_KIND_DEVICE, u"\\??\\NUL");
    expect(u"C:con", NTPATH_KIND_DEVICE, u"\\??\\CON");
    expect(u"\\prn", NTPATH_KIND_DEVICE, u"\\??\\PRN");
    ntpath_context none;
    memset(&none, 0, sizeof none);
    expect_ctx(&none, u"..\\nul", NTPATH_KIND_DEVICE, u"\\??\\NUL"); /* no current directory needed */
    /* Not devices: other names, folders, verbatim, NT and UNC forms. */
    expect_drive(u"C:\\dir\\console", u"\\??\\C:\\dir\\console");
    expect_drive(u"C:\\dir\\com10", u"\\??\\C:\\dir\\com10");
    expect_drive(u"C:\\dir\\com0", u"\\??\\C:\\dir\\com0");
    expect_drive(u"C:\\nul\\x", u"\\??\\C:\\nul\\x");
    expect_drive(u"\\\\?\\C:\\dir\\NUL", u"\\??\\C:\\dir\\NUL");
    expect_drive(u"\\??\\C:\\dir\\NUL", u"\\??\\C:\\dir\\NUL");
    expect(u"\\\\srv\\share\\NUL", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\NUL");
}

/* ---- Win32 forms -------------------------------------------------------------- */

static void test_win32_forms(void **state)
{
    assert_flags(expect_drive(u"C:\\a", u"\\??\\C:\\a"), NTPATH_FLAG_WIN32_INPUT, NTPATH_FLAG_RELATIVE_INPUT);
    expect_drive(u"c:/a//b\\\\c/", u"\\??\\C:\\a\\b\\c");
    expect_drive(u"C:\\", u"\\??\\C:\\");
    expect_drive(u"C:/", u"\\??\\C:\\");
    assert_flags(expect_drive(u"C:a", u"\\??\\C:\\Users\\me\\work\\a"), NTPATH_FLAG_RELATIVE_INPUT, 0);
    expect_drive(u"C:", u"\\??\\C:\\Users\\me\\work");
    expect_drive(u"C:..\\..", u"\\??\\C:\\Users");
    expect_drive(u"D:a", u"\\??\\D:\\data\\a");
    expect_drive(u"e:a", u"\\??\\E:\\a");
    expect_drive(u"E:", u"\\??\\E:\\");
    expect_drive(u"\\a", u"\\??\\C:\\a");
    expect_drive(u"/a/b", u"\\??\\C:\\a\\b");
    expect_drive(u"\\", u"\\??\\C:\\");
    expect_drive(u"a\\b", u"\\??\\C:\\Users\\me\\work\\a\\b");
    expect_drive(u".\\a", u"\\??\\C:\\Users\\me\\work\\a");
    expect_drive(u"..\\a", u"\\??\\C:\\Users\\me\\a");
    expect_drive(u".", u"\\??\\C:\\Users\\me\\work");
    expect_drive(u"..\\..\\..\\..\\..", u"\\??\\C:\\");
    assert_flags(expect_drive(u"\\\\?\\C:\\a\\..\\b", u"\\??\\C:\\b"),
                 NTPATH_FLAG_VERBATIM | NTPATH_FLAG_DOT_COMPONENTS | NTPATH_FLAG_WIN32_INPUT, 0);
    expect_drive(u"\\\\.\\C:\\x", u"\\??\\C:\\x");
    expect_drive(u"//./C:/x", u"\\??\\C:\\x");
    expect_drive(u"//?/C:/x", u"\\??\\C:\\x");
    expect_drive(u"\\\\.\\C:\\a\\..\\x", u"\\??\\C:\\x");
    /* Win32 device paths: ".." can climb over the device name, as Win32 does. */
    expect(u"\\\\.\\C:\\..\\x", NTPATH_KIND_OTHER_NT, u"\\??\\x");
    expect(u"\\\\.\\pipe\\..\\C:\\Windows", NTPATH_KIND_DRIVE, u"\\??\\C:\\Windows");
    expect(u"\\\\.\\UNC\\s\\..\\t\\share\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\t\\share\\x");
    /* UNC current directory: rooted paths stay on the share. */
    ntpath_context unc = test_context();
    unc.current_dir.units = U(u"\\\\srv\\share\\dir");
    unc.current_dir.len = 15;
    expect_ctx(&unc, u"\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\x");
    expect_ctx(&unc, u"..\\..\\..\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\x");
    /* An NT-form current directory works too. */
    ntpath_context nt_cwd = test_context();
    nt_cwd.current_dir.units = U(u"\\Device\\HarddiskVolume1\\w");
    nt_cwd.current_dir.len = 25;
    expect_ctx(&nt_cwd, u"f", NTPATH_KIND_DRIVE, u"\\??\\C:\\w\\f");
    /* ANY input: "\Windows" is Win32; NT input: an object directory. */
    expect_drive(u"\\Windows\\x", u"\\??\\C:\\Windows\\x");
    ntpath_context win32 = test_context();
    win32.input = NTPATH_INPUT_WIN32;
    expect_ctx(&win32, u"\\Device\\x", NTPATH_KIND_DRIVE, u"\\??\\C:\\Device\\x");
    expect_ctx(&win32, u"\\??\\C:\\x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
}

static void test_relative_without_context(void **state)
{
    ntpath_context none;
    memset(&none, 0, sizeof none);
    expect_error_ctx(&none, u"a\\b", FVM_E_INVALID, "no current directory");
    expect_error_ctx(NULL, u"\\a", FVM_E_INVALID, "no current directory");
    expect_ctx(&none, u"C:a", NTPATH_KIND_DRIVE, u"\\??\\C:\\a");
    ntpath_context bad = test_context();
    bad.current_dir.units = U(u"work");
    bad.current_dir.len = 4;
    expect_error_ctx(&bad, u"a", FVM_E_INVALID, "current directory");
    bad.current_dir.units = U(u"\\??\\pipe\\x");
    bad.current_dir.len = 10;
    expect_error_ctx(&bad, u"a", FVM_E_INVALID, "not a folder on a drive or share");
    ntpath_context nt = test_context();
    nt.input = NTPATH_INPUT_NT;
    expect_error_ctx(&nt, u"a\\b", FVM_E_INVALID, "directory handle");
    expect_error_ctx(&nt, u"C:\\a", FVM_E_INVALID, "starts with '\\'");
}

/* ---- hostile spellings ------------------------------------------------------------ */

static void test_dot_dot_never_leaves_the_root(void **state)
{
    assert_flags(expect_drive(u"\\??\\C:\\a\\..\\..\\..\\Windows", u"\\??\\C:\\Windows"),
                 NTPATH_FLAG_DOT_COMPONENTS | NTPATH_FLAG_ABOVE_ROOT, 0);
    assert_flags(expect_drive(u"\\??\\C:\\a\\.\\b", u"\\??\\C:\\a\\b"), NTPATH_FLAG_DOT_COMPONENTS,
                 NTPATH_FLAG_ABOVE_ROOT);
    expect_drive(u"\\??\\C:\\FVM\\boxes\\b1\\..\\..\\..\\host", u"\\??\\C:\\host");
    assert_flags(expect_drive(u"C:\\a\\b\\..\\..\\..\\..", u"\\??\\C:\\"), NTPATH_FLAG_ROOT | NTPATH_FLAG_ABOVE_ROOT,
                 NTPATH_FLAG_DOT_COMPONENTS);
    expect_drive(u"C:\\a/b\\../c", u"\\??\\C:\\a\\c");
    assert_flags(expect_drive(u"\\??\\C:\\a\\\\b", u"\\??\\C:\\a\\b"), NTPATH_FLAG_EMPTY_COMPONENTS, 0);
    expect_drive(u"\\??\\C:\\..", u"\\??\\C:\\");
    /* Dots cannot name a device or an object. */
    expect_error(u"\\??\\..\\C:\\x", FVM_E_INVALID, "offset 4");
    expect_error(u"\\??\\.\\C:\\x", FVM_E_INVALID, "device name");
    expect_error(u"\\Device\\..\\x", FVM_E_INVALID, "device name");
    ntpath_context nt = test_context();
    nt.input = NTPATH_INPUT_NT;
    expect_error_ctx(&nt, u"\\..\\Device\\x", FVM_E_INVALID, "relative component");
    expect_error_ctx(&nt, u"\\BaseNamedObjects\\..\\Device\\HarddiskVolume1\\x", FVM_E_INVALID,
                     "relative component");
    /* In ANY mode these are Win32 paths rooted on the current drive. */
    expect_drive(u"\\..\\Device\\x", u"\\??\\C:\\Device\\x");
    /* '/' is not a separator in NT names: Wine would make it one. */
    expect_error(u"\\??\\C:\\box/../host", FVM_E_INVALID, "U+002F");
    expect_error(u"\\??\\C:/x", FVM_E_INVALID, "'/'");
    expect_error(u"\\??\\unix/../x", FVM_E_INVALID, "'/'");
}

static void test_trailing_dots_and_spaces(void **state)
{
    /* Win32 strips these itself: no flag. */
    assert_flags(expect_drive(u"C:\\dir.\\file. ", u"\\??\\C:\\dir\\file"), 0, NTPATH_FLAG_TRAILING_DOTS);
    /* NT forms: the same canonical name, flagged. */
    assert_flags(expect_drive(u"\\??\\C:\\dir.\\file. ", u"\\??\\C:\\dir\\file"), NTPATH_FLAG_TRAILING_DOTS, 0);
    assert_flags(expect_drive(u"\\\\?\\C:\\file.", u"\\??\\C:\\file"), NTPATH_FLAG_TRAILING_DOTS, 0);
    /* Win32 keeps "dir." out of "dir..", and "dir " in the middle: flagged. */
    assert_flags(expect_drive(u"C:\\dir..\\f", u"\\??\\C:\\dir\\f"), NTPATH_FLAG_TRAILING_DOTS, 0);
    assert_flags(expect_drive(u"C:\\dir \\f", u"\\??\\C:\\dir\\f"), NTPATH_FLAG_TRAILING_DOTS, 0);
    /* Which name carried them: a folder before the last is another folder
     * for Windows (the runtime answers PATH_NOT_FOUND), the last one not. */
    assert_flags(expect_drive(u"\\??\\C:\\dir \\f", u"\\??\\C:\\dir\\f"),
                 NTPATH_FLAG_TRAILING_DOTS | NTPATH_FLAG_INNER_TRAILING_DOTS, 0);
    assert_flags(expect_drive(u"\\??\\C:\\dir\\f.", u"\\??\\C:\\dir\\f"), NTPATH_FLAG_TRAILING_DOTS,
                 NTPATH_FLAG_INNER_TRAILING_DOTS);
    expect_drive(u"C:\\ lead", u"\\??\\C:\\ lead");
    expect_drive(u"C:\\a.b.c", u"\\??\\C:\\a.b.c");
    expect_drive(u"C:\\...x", u"\\??\\C:\\...x");
    ntpath_context ctx = test_context();
    ntpath_normalize(U(u"\\??\\C:\\Dir\\file"), 15, &ctx, &other, NULL);
    expect_drive(u"\\??\\C:\\Dir\\file.", u"\\??\\C:\\Dir\\file");
    assert_true(ntpath_equal(&result, &other));
    expect_error(u"C:\\a\\...", FVM_E_INVALID, "dots and spaces");
    expect_error(u"C:\\a\\...\\b", FVM_E_INVALID, "'...' at offset 5");
    expect_error(u"\\??\\C:\\a\\ ", FVM_E_INVALID, "dots and spaces");
    expect_error(u"\\??\\C:\\. .\\x", FVM_E_INVALID, "dots and spaces");
    expect_error(u"\\??\\UNC\\srv\\...\\x", FVM_E_INVALID, "dots and spaces");
}

static void test_streams(void **state)
{
    ntpath *p = expect_drive(u"C:\\a.txt::$DATA", u"\\??\\C:\\a.txt");
    assert_int_equal(p->stream_len, 0);
    assert_flags(p, NTPATH_FLAG_DEFAULT_STREAM, NTPATH_FLAG_STREAM);
    expect_drive(u"C:\\a.txt:$DATA", u"\\??\\C:\\a.txt");
    expect_drive(u"\\??\\C:\\a.txt::$data", u"\\??\\C:\\a.txt");
    p = expect_drive(u"C:\\a.txt:s", u"\\??\\C:\\a.txt");
    assert_stream(p, u"s");
    assert_flags(p, NTPATH_FLAG_STREAM, 0);
    assert_stream(expect_drive(u"C:\\a.txt:s:$DATA", u"\\??\\C:\\a.txt"), u"s");
    assert_stream(expect_drive(u"\\??\\C:\\a.txt. :Zone.Identifier", u"\\??\\C:\\a.txt"), u"Zone.Identifier");
    assert_stream(expect_drive(u"C:\\a:s. ", u"\\??\\C:\\a"), u"s");         /* Win32 trims the end */
    assert_stream(expect_drive(u"\\??\\C:\\a:s. ", u"\\??\\C:\\a"), u"s. "); /* NT does not */
    assert_flags(expect_drive(u"C:\\dir::$INDEX_ALLOCATION", u"\\??\\C:\\dir"), NTPATH_FLAG_DIRECTORY_INDEX, 0);
    assert_flags(expect_drive(u"C:\\dir:$I30:$INDEX_ALLOCATION", u"\\??\\C:\\dir"), NTPATH_FLAG_DIRECTORY_INDEX, 0);
    assert_flags(expect_drive(u"\\??\\C:\\dir::$INDEX_ALLOCATION\\x", u"\\??\\C:\\dir\\x"), 0,
                 NTPATH_FLAG_DIRECTORY_INDEX);
    expect_drive(u"\\??\\C:\\dir::$INDEX_ALLOCATION\\..\\x", u"\\??\\C:\\x");
    assert_stream(expect(u"\\\\srv\\share\\f:s", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\f"), u"s");
    expect_error(u"C:\\a:s\\b", FVM_E_INVALID, "folder");
    expect_error(u"C:\\a::$DATA\\b", FVM_E_INVALID, "folder");
    expect_error(u"C:\\a:", FVM_E_INVALID, "empty stream name");
    expect_error(u"C:\\a::", FVM_E_INVALID, "empty stream type");
    expect_error(u"C:\\a:s:$BITMAP", FVM_E_UNSUPPORTED, "stream type");
    expect_error(u"C:\\a:s:DATA", FVM_E_INVALID, "'$'");
    expect_error(u"C:\\a:s:$DATA:x", FVM_E_INVALID, "too many");
    expect_error(u"C:\\a:$Foo", FVM_E_UNSUPPORTED, "reserved");
    expect_error(u"C:\\d:x:$INDEX_ALLOCATION", FVM_E_UNSUPPORTED, "$I30");
    expect_error(u"C:\\:s", FVM_E_INVALID, "empty file name");
    expect_error(u"C:\\a:s<", FVM_E_INVALID, "U+003C");
    /* "C:x" is not a drive name: an unknown \?? entry (Wine finds no dosdevices link "c:x" either). */
    expect(u"\\??\\C:x", NTPATH_KIND_OTHER_NT, u"\\??\\C:x");
}

static void test_invalid_characters_and_wildcards(void **state)
{
    expect_error(u"C:\\a<b", FVM_E_INVALID, "U+003C at offset 4");
    expect_error(u"C:\\a>b", FVM_E_INVALID, "U+003E");
    expect_error(u"C:\\a\"b", FVM_E_INVALID, "U+0022");
    expect_error(u"C:\\dir\\a|b", FVM_E_INVALID, "offset 8");
    expect_error(u"C:\\a\x01", FVM_E_INVALID, "U+0001");
    expect_error(u"\\??\\C:\\a\x1f", FVM_E_INVALID, "U+001F");
    expect_error(u"\\\\s<\\share", FVM_E_INVALID, "server or share");
    static const uint16_t with_nul[] = {'C', ':', '\\', 'a', 0, 'b'};
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(with_nul, 6, NULL, &result, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "embedded NUL at offset 4"));
    assert_flags(expect_drive(u"C:\\dir\\*.txt", u"\\??\\C:\\dir\\*.txt"), NTPATH_FLAG_WILDCARDS, 0);
    assert_flags(expect_drive(u"C:\\dir\\a?c", u"\\??\\C:\\dir\\a?c"), NTPATH_FLAG_WILDCARDS, 0);
    assert_flags(expect_drive(u"C:\\dir\\abc", u"\\??\\C:\\dir\\abc"), 0, NTPATH_FLAG_WILDCARDS);
}

static void test_empty_and_lone_surrogates(void **state)
{
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(U(u""), 0, NULL, &result, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "empty"));
    assert_int_equal(ntpath_normalize(NULL, 0, NULL, &result, &err), FVM_E_INVALID);
    assert_int_equal(ntpath_normalize(NULL, 5, NULL, &result, &err), FVM_E_INVALID);
    /* NTFS allows unpaired surrogates in names; so do we. */
    static const uint16_t lone[] = {'\\', '?', '?', '\\', 'C', ':', '\\', 0xD800, 'x', '\\', 0xDC00};
    assert_int_equal(ntpath_normalize(lone, 11, NULL, &result, &err), FVM_OK);
    assert_int_equal(result.len, 11);
    assert_memory_equal(result.path, lone, sizeof lone);
    expect_drive(u"C:\\\U0001F600.txt", u"\\??\\C:\\\U0001F600.txt");
}

static void test_length_limits(void **state)
{
    static uint16_t long_path[NTPATH_MAX_UNITS + 2];
    static const uint16_t prefix[] = {'\\', '?', '?', '\\', 'C', ':', '\\'};
    memcpy(long_path, prefix, sizeof prefix);
    for (size_t i = 7; i < NTPATH_MAX_UNITS + 1; i++)
        long_path[i] = (i % 200 == 0) ? '\\' : 'a';
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(long_path, NTPATH_MAX_UNITS, NULL, &result, &err), FVM_OK);
    assert_int_equal(result.len, NTPATH_MAX_UNITS);
    assert_memory_equal(result.path, long_path, NTPATH_MAX_UNITS * sizeof(uint16_t));
    assert_int_equal(ntpath_normalize(long_path, NTPATH_MAX_UNITS + 1, NULL, &result, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "32768 units long"));
    assert_non_null(strstr(err.message, "offset 32767"));
    /* A Win32 path that only becomes too long as an NT path. */
    long_path[0] = 'C';
    long_path[1] = ':';
    long_path[2] = '\\';
    for (size_t i = 3; i < 7; i++)
        long_path[i] = 'b';
    assert_int_equal(ntpath_normalize(long_path, NTPATH_MAX_UNITS, NULL, &result, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "longer than 32767"));
    /* A relative path that becomes too long with the current directory. */
    ntpath_context ctx = test_context();
    assert_int_equal(ntpath_normalize(long_path + 3, NTPATH_MAX_UNITS - 3, &ctx, &result, &err), FVM_E_RANGE);
    /* Stream names: 255 units at most. */
    static uint16_t streamed[300];
    memcpy(streamed, u"C:\\f:", 5 * sizeof(uint16_t));
    for (size_t i = 5; i < 300; i++)
        streamed[i] = 's';
    assert_int_equal(ntpath_normalize(streamed, 5 + 255, NULL, &result, &err), FVM_OK);
    assert_int_equal(result.stream_len, 255);
    assert_int_equal(ntpath_normalize(streamed, 5 + 256, NULL, &result, &err), FVM_E_RANGE);
    assert_non_null(strstr(err.message, "stream name"));
}

/* ---- case-insensitive keys --------------------------------------------------------- */

static void test_case_insensitive_equality(void **state)
{
    ntpath_context ctx = test_context();
    assert_int_equal(ntpath_normalize(U(u"\\??\\c:\\X"), 8, &ctx, &result, NULL), FVM_OK);
    assert_int_equal(ntpath_normalize(U(u"\\??\\C:\\x"), 8, &ctx, &other, NULL), FVM_OK);
    assert_true(ntpath_equal(&result, &other));
    assert_true(ntpath_hash(&result) == ntpath_hash(&other));
    uint16_t k1[64], k2[64];
    size_t n1, n2;
    assert_int_equal(ntpath_key(&result, k1, 64, &n1, NULL), FVM_OK);
    assert_int_equal(ntpath_key(&other, k2, 64, &n2, NULL), FVM_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(k1, k2, n1 * sizeof(uint16_t));
    assert_int_equal(ntpath_key(&result, k1, 8, &n1, NULL), FVM_E_RANGE);

    static const struct {
        const char16_t *a, *b;
        int equal;
    } pairs[] = {
        {u"C:\\\u00C9t\u00E9", u"C:\\\u00E9T\u00C9", 1},        /* Latin-1 */
        {u"C:\\\u00FF", u"C:\\\u0178", 1},                        /* ÿ Ÿ */
        {u"C:\\\u0101\u017E", u"C:\\\u0100\u017D", 1},            /* Latin Extended-A */
        {u"C:\\\u03B1\u03C9\u03AC", u"C:\\\u0391\u03A9\u0386", 1}, /* Greek */
        {u"C:\\\u0436\u0451", u"C:\\\u0416\u0401", 1},            /* Cyrillic */
        {u"C:\\\u00B5", u"C:\\\u039C", 0},                        /* µ is not Greek Mu on NTFS */
        {u"C:\\\u0131", u"C:\\I", 0},                             /* dotless i */
        {u"C:\\\u00DF", u"C:\\SS", 0},
        {u"C:\\a:S", u"C:\\A:s", 1},                              /* stream names too */
        {u"C:\\a:s", u"C:\\a", 0},
        {u"C:\\a", u"\\\\localhost\\C$\\a", 1},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_int_equal(ntpath_normalize(U(pairs[i].a), ulen(pairs[i].a), &ctx, &result, NULL), FVM_OK);
        assert_int_equal(ntpath_normalize(U(pairs[i].b), ulen(pairs[i].b), &ctx, &other, NULL), FVM_OK);
        if (ntpath_equal(&result, &other) != pairs[i].equal)
            fail_msg("pair %lu: equal=%d expected %d", (unsigned long)i, ntpath_equal(&result, &other), pairs[i].equal);
        if (pairs[i].equal)
            assert_true(ntpath_hash(&result) == ntpath_hash(&other));
        assert_int_equal(ntpath_compare(&result, &other), -ntpath_compare(&other, &result));
    }
    /* Different kinds never compare equal. */
    assert_int_equal(ntpath_normalize(U(u"\\??\\NUL"), 7, &ctx, &result, NULL), FVM_OK);
    assert_int_equal(ntpath_normalize(U(u"\\??\\C:\\NUL"), 10, &ctx, &other, NULL), FVM_OK);
    assert_false(ntpath_equal(&result, &other));
}

static void test_upcase_table_hook(void **state)
{
    static uint16_t table[65536];
    for (uint32_t c = 0; c < 65536; c++)
        table[c] = ntpath_upcase(NULL, (uint16_t)c);
    table[0x131] = 'I'; /* a system that folds dotless i */
    ntpath_context ctx = test_context();
    ctx.upcase_table = table;
    assert_int_equal(ntpath_normalize(U(u"C:\\f\u0131le"), 7, &ctx, &result, NULL), FVM_OK);
    assert_int_equal(ntpath_normalize(U(u"C:\\FILE"), 7, &ctx, &other, NULL), FVM_OK);
    assert_true(ntpath_equal(&result, &other));
    assert_true(ntpath_hash(&result) == ntpath_hash(&other));
    ntpath_context builtin = test_context();
    assert_int_equal(ntpath_normalize(U(u"C:\\f\u0131le"), 7, &builtin, &result, NULL), FVM_OK);
    assert_false(ntpath_equal(&result, &other));
    assert_int_equal(ntpath_upcase(table, 0x131), 'I');
    assert_int_equal(ntpath_upcase(NULL, 0x131), 0x131);
}

/* ---- short names ----------------------------------------------------------------- */

static void test_short_names(void **state)
{
    ntpath *p = expect_drive(u"C:\\PROGRA~1\\App\\FILE~1.TXT\\x", u"\\??\\C:\\PROGRA~1\\App\\FILE~1.TXT\\x");
    assert_flags(p, NTPATH_FLAG_SHORT_NAME, 0);
    assert_int_equal(p->short_name_end, 30); /* after FILE~1.TXT */
    assert_flags(expect_drive(u"C:\\Program Files\\a~b", u"\\??\\C:\\Program Files\\a~b"), 0, NTPATH_FLAG_SHORT_NAME);
    assert_flags(expect_drive(u"C:\\LONGNAME~1", u"\\??\\C:\\LONGNAME~1"), 0, NTPATH_FLAG_SHORT_NAME); /* base > 8 */
    assert_flags(expect_drive(u"C:\\AB~1.TEXT", u"\\??\\C:\\AB~1.TEXT"), 0, NTPATH_FLAG_SHORT_NAME);
    assert_flags(expect_drive(u"C:\\AB~12", u"\\??\\C:\\AB~12"), NTPATH_FLAG_SHORT_NAME, 0);
    /* A popped short name does not count. */
    assert_flags(expect_drive(u"C:\\PROGRA~1\\..\\x", u"\\??\\C:\\x"), 0, NTPATH_FLAG_SHORT_NAME);

    /* The runtime expands the prefix with the file system and splices it in. */
    ntpath_context ctx = test_context();
    const char16_t *in = u"C:\\PROGRA~1\\App\\FILE~1.TXT:s";
    assert_int_equal(ntpath_normalize(U(in), ulen(in), &ctx, &other, NULL), FVM_OK);
    const char16_t *long_prefix = u"\\Device\\HarddiskVolume1\\Program Files\\App\\File One.txt";
    fvm_error err = {0};
    assert_int_equal(ntpath_replace_prefix(&other, other.short_name_end, U(long_prefix), ulen(long_prefix), &ctx,
                                           &result, &err),
                     FVM_OK);
    assert_path(&result, u"\\??\\C:\\Program Files\\App\\File One.txt", "replaced");
    assert_stream(&result, u"s");
    assert_flags(&result, 0, NTPATH_FLAG_SHORT_NAME);
    /* Only the first alias expanded: the second is still flagged. */
    assert_int_equal(ntpath_normalize(U(in), ulen(in) - 2, &ctx, &other, NULL), FVM_OK);
    assert_int_equal(ntpath_replace_prefix(&other, 15, U(u"C:\\Program Files"), 16, &ctx, &result, &err), FVM_OK);
    assert_path(&result, u"\\??\\C:\\Program Files\\App\\FILE~1.TXT", "partly replaced");
    assert_flags(&result, NTPATH_FLAG_SHORT_NAME, 0);
    assert_int_equal(result.short_name_end, result.len);
    /* Replacing everything with a root cannot keep a stream (found by the fuzzer). */
    assert_int_equal(ntpath_normalize(U(u"C:\\a:s"), 6, &ctx, &third, NULL), FVM_OK);
    assert_int_equal(ntpath_replace_prefix(&third, third.len, U(u"\\\\srv\\share"), 11, &ctx, &result, &err),
                     FVM_E_INVALID);
    assert_non_null(strstr(err.message, "root"));
    /* Errors: not on a name boundary, aliasing, a device as prefix. */
    assert_int_equal(ntpath_replace_prefix(&other, 10, U(u"C:\\x"), 4, &ctx, &result, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "offset 10"));
    assert_int_equal(ntpath_replace_prefix(&other, 15, U(u"C:\\x"), 4, &ctx, &other, &err), FVM_E_INVALID);
    assert_int_equal(ntpath_replace_prefix(&other, 15, U(u"\\??\\NUL"), 7, &ctx, &result, &err), FVM_E_INVALID);
}

/* ---- join ------------------------------------------------------------------------ */

static void join_ok(const ntpath *dir, const char16_t *rel, ntpath_kind kind, const char16_t *canonical)
{
    ntpath_context ctx = test_context();
    fvm_error err = {0};
    fvm_status st = ntpath_join(dir, U(rel), ulen(rel), &ctx, &third, &err);
    if (st != FVM_OK)
        fail_msg("join: %s", err.message);
    assert_int_equal(third.kind, kind);
    assert_path(&third, canonical, "joined");
}

static void test_join_relative_to_handle(void **state)
{
    ntpath_context ctx = test_context();
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(U(u"\\??\\C:\\a"), 8, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"b\\c", NTPATH_KIND_DRIVE, u"\\??\\C:\\a\\b\\c");
    join_ok(&other, u"..\\..\\..\\Windows", NTPATH_KIND_DRIVE, u"\\??\\C:\\Windows");
    join_ok(&other, u"f. ", NTPATH_KIND_DRIVE, u"\\??\\C:\\a\\f");
    assert_flags(&third, NTPATH_FLAG_TRAILING_DOTS, 0);
    join_ok(&other, u"", NTPATH_KIND_DRIVE, u"\\??\\C:\\a");
    join_ok(&other, u":s", NTPATH_KIND_DRIVE, u"\\??\\C:\\a");
    assert_stream(&third, u"s");
    join_ok(&other, u"::$DATA", NTPATH_KIND_DRIVE, u"\\??\\C:\\a");
    assert_int_equal(ntpath_join(&other, U(u":s\\b"), 4, &ctx, &third, &err), FVM_E_INVALID); /* fuzzer */
    assert_non_null(strstr(err.message, "offset 2"));
    join_ok(&other, u"x:s", NTPATH_KIND_DRIVE, u"\\??\\C:\\a\\x");
    assert_stream(&third, u"s");
    /* The NT rule: a relative name must not start with a backslash. */
    assert_int_equal(ntpath_join(&other, U(u"\\x"), 2, &ctx, &third, &err), FVM_E_INVALID);
    assert_non_null(strstr(err.message, "backslash"));
    assert_int_equal(third.kind, NTPATH_KIND_NONE);
    assert_int_equal(ntpath_join(&other, U(u"a/b"), 3, &ctx, &third, &err), FVM_E_INVALID);
    assert_int_equal(ntpath_join(&other, U(u"a\0b"), 3, &ctx, &third, &err), FVM_E_INVALID);
    /* Root and volume handles. */
    assert_int_equal(ntpath_normalize(U(u"\\??\\C:\\"), 7, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
    assert_int_equal(ntpath_join(&other, U(u":s"), 2, &ctx, &third, &err), FVM_E_INVALID);
    assert_int_equal(ntpath_normalize(U(u"\\??\\C:"), 6, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
    /* Below object directories the name is resolved as if absolute. */
    assert_int_equal(ntpath_normalize(U(u"\\??"), 3, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"C:\\Windows", NTPATH_KIND_DRIVE, u"\\??\\C:\\Windows");
    join_ok(&other, u"pipe\\p", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\p");
    assert_int_equal(ntpath_normalize(U(u"\\GLOBAL??\\"), 10, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"HarddiskVolume1\\x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
    assert_int_equal(ntpath_normalize(U(u"\\Device"), 7, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"HarddiskVolume1\\x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
    assert_int_equal(ntpath_normalize(U(u"\\Device\\Mup"), 11, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"srv\\share\\x", NTPATH_KIND_UNC, u"\\??\\UNC\\srv\\share\\x");
    ntpath_context nt = test_context();
    nt.input = NTPATH_INPUT_NT;
    assert_int_equal(ntpath_normalize(U(u"\\"), 1, &nt, &other, NULL), FVM_OK);
    join_ok(&other, u"Device\\HarddiskVolume1\\x", NTPATH_KIND_DRIVE, u"\\??\\C:\\x");
    assert_int_equal(ntpath_normalize(U(u"\\BaseNamedObjects"), 17, &nt, &other, NULL), FVM_OK);
    join_ok(&other, u"x", NTPATH_KIND_OTHER_NT, u"\\BaseNamedObjects\\x");
    assert_int_equal(ntpath_join(&other, U(u".."), 2, &ctx, &third, &err), FVM_E_INVALID);
    /* Below a raw disk: storage, as when spelled out (found by the fuzzer). */
    assert_int_equal(ntpath_normalize(U(u"\\DosDevices\\PhysicalDrive0"), 26, &ctx, &other, NULL), FVM_OK);
    assert_int_equal(ntpath_join(&other, U(u"x"), 1, &ctx, &third, &err), FVM_E_NOTFOUND);
    /* Pipe root handle, as CreateNamedPipe uses it. */
    assert_int_equal(ntpath_normalize(U(u"\\Device\\NamedPipe\\"), 18, &ctx, &other, NULL), FVM_OK);
    join_ok(&other, u"my\\pipe", NTPATH_KIND_PIPE, u"\\Device\\NamedPipe\\my\\pipe");
    /* out may be dir. */
    assert_int_equal(ntpath_normalize(U(u"C:\\a"), 4, &ctx, &other, NULL), FVM_OK);
    assert_int_equal(ntpath_join(&other, U(u"b"), 1, &ctx, &other, &err), FVM_OK);
    assert_path(&other, u"\\??\\C:\\a\\b", "joined in place");
    /* A stream handle is no directory. */
    assert_int_equal(ntpath_normalize(U(u"C:\\a:s"), 6, &ctx, &other, NULL), FVM_OK);
    assert_int_equal(ntpath_join(&other, U(u"b"), 1, &ctx, &third, &err), FVM_E_INVALID);
}

/* ---- box mapping ------------------------------------------------------------------ */

static const char16_t box_root[] = u"\\??\\C:\\FVM\\boxes\\b1";

static void to_box_ok(const char16_t *host, const char16_t *expected)
{
    ntpath_context ctx = test_context();
    uint16_t out[512];
    size_t n = 0;
    fvm_error err = {0};
    assert_int_equal(ntpath_normalize(U(host), ulen(host), &ctx, &other, &err), FVM_OK);
    if (ntpath_to_box(&other, U(box_root), ulen(box_root), out, 512, &n, &err) != FVM_OK)
        fail_msg("to_box: %s", err.message);
    char got[600], want[600];
    to_ascii(out, n, got, sizeof got);
    to_ascii(U(expected), ulen(expected), want, sizeof want);
    assert_string_equal(got, want);
    assert_int_equal(out[n], 0);
    /* And back. */
    assert_int_equal(ntpath_normalize(out, n, &ctx, &third, &err), FVM_OK);
    if (ntpath_from_box(&third, U(box_root), ulen(box_root), &result, &err) != FVM_OK)
        fail_msg("from_box: %s", err.message);
    assert_int_equal(result.len, other.len);
    assert_memory_equal(result.path, other.path, other.len * sizeof(uint16_t));
    assert_int_equal(result.stream_len, other.stream_len);
    assert_memory_equal(result.stream, other.stream, other.stream_len * sizeof(uint16_t));
    assert_int_equal(result.kind, other.kind);
}

static void test_box_mapping(void **state)
{
    to_box_ok(u"C:\\Dir\\File", u"\\??\\C:\\FVM\\boxes\\b1\\drive\\C\\Dir\\File");
    to_box_ok(u"c:\\", u"\\??\\C:\\FVM\\boxes\\b1\\drive\\C");
    to_box_ok(u"\\Device\\HarddiskVolume2\\etc", u"\\??\\C:\\FVM\\boxes\\b1\\drive\\Z\\etc");
    to_box_ok(u"\\\\srv\\share\\x", u"\\??\\C:\\FVM\\boxes\\b1\\unc\\srv\\share\\x");
    to_box_ok(u"\\\\srv\\share", u"\\??\\C:\\FVM\\boxes\\b1\\unc\\srv\\share");
    to_box_ok(u"C:\\a.txt:s", u"\\??\\C:\\FVM\\boxes\\b1\\drive\\C\\a.txt:s");
    to_box_ok(u"C:\\FVM\\boxes\\b1\\x", u"\\??\\C:\\FVM\\boxes\\b1\\drive\\C\\FVM\\boxes\\b1\\x");

    ntpath_context ctx = test_context();
    uint16_t out[64];
    size_t n;
    fvm_error err = {0};
    ntpath_normalize(U(u"\\??\\NUL"), 7, &ctx, &other, NULL);
    assert_int_equal(ntpath_to_box(&other, U(box_root), ulen(box_root), out, 64, &n, &err), FVM_E_UNSUPPORTED);
    ntpath_normalize(U(u"\\??\\C:"), 6, &ctx, &other, NULL);
    assert_int_equal(ntpath_to_box(&other, U(box_root), ulen(box_root), out, 64, &n, &err), FVM_E_UNSUPPORTED);
    ntpath_normalize(U(u"C:\\a\\b\\c\\d\\e\\f\\g\\h\\i\\j\\k\\l\\m\\n\\o\\p\\q\\r\\s\\t\\u\\v\\w"), 48, &ctx, &other, NULL);
    assert_int_equal(ntpath_to_box(&other, U(box_root), ulen(box_root), out, 64, &n, &err), FVM_E_RANGE);
    /* Box roots must be canonical folders. */
    ntpath_normalize(U(u"C:\\a"), 4, &ctx, &other, NULL);
    static const char16_t *const bad_roots[] = {
        u"C:\\FVM\\b1", u"\\??\\C:\\", u"\\??\\C:\\FVM\\", u"\\??\\C:\\FVM\\..\\b1", u"\\??\\C:\\FVM\\\\b1",
        u"\\??\\C:\\FVM.\\b1", u"\\??\\C:\\F/VM", u"\\??\\UNC\\srv", u"\\??\\UNC\\srv\\share", u"\\??\\X\\y",
        u"\\??\\C:\\a:s",
    };
    for (size_t i = 0; i < sizeof bad_roots / sizeof bad_roots[0]; i++)
        if (ntpath_to_box(&other, U(bad_roots[i]), ulen(bad_roots[i]), out, 64, &n, &err) != FVM_E_INVALID)
            fail_msg("bad box root %lu accepted", (unsigned long)i);
    assert_int_equal(ntpath_to_box(&other, U(u"\\??\\UNC\\srv\\share\\boxes"), 23, out, 64, &n, &err), FVM_OK);

    /* from_box: only mapped paths inside the root. */
    static const char16_t *const not_mapped[] = {
        u"C:\\FVM\\boxes\\b1x\\drive\\C\\x", u"C:\\FVM\\boxes\\b1\\index.dat", u"C:\\FVM\\boxes\\b1\\drive",
        u"C:\\FVM\\boxes\\b1\\drive\\CC\\x", u"C:\\FVM\\boxes\\b1\\unc\\srv", u"C:\\FVM\\boxes\\b1",
        u"C:\\FVM\\boxes\\b1\\unc\\srv\\pipe\\x", u"D:\\FVM\\boxes\\b1\\drive\\C\\x",
    };
    for (size_t i = 0; i < sizeof not_mapped / sizeof not_mapped[0]; i++) {
        ntpath_normalize(U(not_mapped[i]), ulen(not_mapped[i]), &ctx, &other, NULL);
        if (ntpath_from_box(&other, U(box_root), ulen(box_root), &result, &err) != FVM_E_NOTFOUND)
            fail_msg("unmapped box path %lu accepted: %s", (unsigned long)i, err.message);
    }
    /* Case of the box root and spellings of the box path do not matter. */
    const char16_t *spelled = u"\\Device\\HarddiskVolume1\\fvm\\BOXES\\B1\\Drive\\c\\x";
    ntpath_normalize(U(spelled), ulen(spelled), &ctx, &other, NULL);
    assert_int_equal(ntpath_from_box(&other, U(box_root), ulen(box_root), &result, &err), FVM_OK);
    assert_path(&result, u"\\??\\C:\\x", "from box");
    assert_int_equal(ntpath_from_box(&other, U(box_root), ulen(box_root), &other, &err), FVM_E_INVALID);
}

/* Deterministic generator for the round trip. */
static uint32_t rng_state = 12345;
static uint32_t next_random(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static void test_box_round_trip_1000_paths(void **state)
{
    static const char16_t *const names[] = {
        u"Windows", u"System32", u"a", u"Program Files", u"x.txt", u"file.", u"dir ", u"..", u".", u"PROGRA~1",
        u"\u00E9t\u00E9", u"\u0416", u"a*b", u"nul", u"CON.txt", u"$MFT", u"drive", u"unc", u"~", u"a b.c.d",
    };
    static const char16_t *const roots[] = {u"C:\\", u"\\??\\d:\\", u"\\\\srv\\share\\", u"\\Device\\HarddiskVolume1\\",
                                            u"\\??\\UNC\\h\\s$\\", u"\\\\?\\Z:\\"};
    static const char16_t *const streams[] = {u"", u":s", u"::$DATA", u":Zone.Identifier:$DATA", u":x y"};
    static uint16_t in[2048], boxed[4096];
    ntpath_context ctx = test_context();
    int done = 0;
    for (int i = 0; i < 1000; i++) {
        size_t n = 0;
        const char16_t *r = roots[next_random() % 6];
        memcpy(in, r, ulen(r) * 2);
        n = ulen(r);
        int count = (int)(next_random() % 8);
        for (int c = 0; c < count; c++) {
            const char16_t *name = names[next_random() % 20];
            memcpy(in + n, name, ulen(name) * 2);
            n += ulen(name);
            /* '/' only where it is a separator: NT forms refuse it. */
            int win32 = r[0] != '\\' || (r[1] == '\\' && r[2] != '?');
            if (c + 1 < count)
                in[n++] = (win32 && (next_random() & 1)) ? '/' : '\\';
        }
        if (count > 0) {
            const char16_t *s = streams[next_random() % 5];
            memcpy(in + n, s, ulen(s) * 2);
            n += ulen(s);
        }
        /* Lone surrogates and a random BMP character now and then. */
        if (next_random() % 4 == 0) {
            in[n++] = '\\';
            in[n++] = (uint16_t)(0xD800 + next_random() % 0x800);
            in[n++] = (uint16_t)(0x100 + next_random() % 0xD000);
        }
        fvm_error err = {0};
        if (ntpath_normalize(in, n, &ctx, &other, &err) != FVM_OK)
            continue; /* '/' in an NT form, or a stream on a folder: refused, fine */
        if (other.kind != NTPATH_KIND_DRIVE && other.kind != NTPATH_KIND_UNC)
            continue;
        size_t bn;
        assert_int_equal(ntpath_to_box(&other, U(box_root), ulen(box_root), boxed, 4096, &bn, &err), FVM_OK);
        assert_int_equal(ntpath_normalize(boxed, bn, &ctx, &third, &err), FVM_OK);
        assert_int_equal(ntpath_normalize(U(box_root), ulen(box_root), &ctx, &result, &err), FVM_OK);
        assert_true(ntpath_is_within(&third, &result));
        assert_int_equal(ntpath_from_box(&third, U(box_root), ulen(box_root), &result, &err), FVM_OK);
        assert_int_equal(result.kind, other.kind);
        assert_int_equal(result.len, other.len);
        assert_memory_equal(result.path, other.path, other.len * sizeof(uint16_t));
        assert_int_equal(result.stream_len, other.stream_len);
        assert_memory_equal(result.stream, other.stream, other.stream_len * sizeof(uint16_t));
        done++;
    }
    assert_true(done >= 700);
    print_message("round trip: %d of 1000 generated paths were file paths, all came back\n", done);
}

/* ---- is_within ---------------------------------------------------------------------- */

static int within(const char16_t *path, const char16_t *folder)
{
    ntpath_context ctx = test_context();
    assert_int_equal(ntpath_normalize(U(path), ulen(path), &ctx, &other, NULL), FVM_OK);
    assert_int_equal(ntpath_normalize(U(folder), ulen(folder), &ctx, &third, NULL), FVM_OK);
    return ntpath_is_within(&other, &third);
}

static void test_is_within(void **state)
{
    assert_true(within(u"C:\\FVM\\boxes\\b1\\x", u"C:\\FVM\\boxes\\b1"));
    assert_true(within(u"C:\\FVM\\boxes\\b1", u"C:\\FVM\\boxes\\b1"));
    assert_true(within(u"c:\\fvm\\BOXES\\B1\\x", u"C:\\FVM\\boxes\\b1\\"));
    assert_false(within(u"C:\\FVM\\boxes\\b1x", u"C:\\FVM\\boxes\\b1"));
    assert_false(within(u"C:\\FVM\\boxes\\b", u"C:\\FVM\\boxes\\b1"));
    assert_false(within(u"C:\\FVM\\boxes", u"C:\\FVM\\boxes\\b1"));
    assert_false(within(u"C:\\FVM\\boxes\\b1\\..\\b2", u"C:\\FVM\\boxes\\b1"));
    assert_false(within(u"\\??\\C:\\FVM\\boxes\\b1\\..\\b2", u"C:\\FVM\\boxes\\b1"));
    assert_true(within(u"\\Device\\HarddiskVolume1\\FVM\\boxes\\b1\\a", u"C:\\FVM\\boxes\\b1"));
    assert_true(within(u"C:\\FVM\\boxes\\b1.\\a", u"C:\\FVM\\boxes\\b1"));
    assert_true(within(u"C:\\anything", u"C:\\"));
    assert_true(within(u"C:\\", u"C:\\"));
    assert_false(within(u"D:\\x", u"C:\\"));
    assert_false(within(u"\\\\srv\\share\\x", u"C:\\"));
    assert_true(within(u"\\\\srv\\share\\x", u"\\??\\UNC\\SRV\\share"));
    assert_false(within(u"\\\\srv\\share2\\x", u"\\\\srv\\share"));
    assert_true(within(u"C:\\a\\f:s", u"C:\\a"));
    assert_true(within(u"C:\\a\\f:s", u"C:\\a\\f"));
    assert_false(within(u"C:\\a\\f", u"C:\\a\\f:s"));
    assert_false(within(u"\\??\\NUL", u"C:\\"));
    assert_false(within(u"\\??\\C:", u"C:\\"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nt_drive_forms),
        cmocka_unit_test(test_nt_volume_devices),
        cmocka_unit_test(test_system_root),
        cmocka_unit_test(test_unc_forms_all_equal),
        cmocka_unit_test(test_loopback_and_admin_shares),
        cmocka_unit_test(test_pipes_mailslots_devices),
        cmocka_unit_test(test_win32_device_names_in_last_component),
        cmocka_unit_test(test_win32_forms),
        cmocka_unit_test(test_relative_without_context),
        cmocka_unit_test(test_dot_dot_never_leaves_the_root),
        cmocka_unit_test(test_trailing_dots_and_spaces),
        cmocka_unit_test(test_streams),
        cmocka_unit_test(test_invalid_characters_and_wildcards),
        cmocka_unit_test(test_empty_and_lone_surrogates),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_case_insensitive_equality),
        cmocka_unit_test(test_upcase_table_hook),
        cmocka_unit_test(test_short_names),
        cmocka_unit_test(test_join_relative_to_handle),
        cmocka_unit_test(test_box_mapping),
        cmocka_unit_test(test_box_round_trip_1000_paths),
        cmocka_unit_test(test_is_within),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
