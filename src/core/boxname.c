/* boxname.c - see boxname.h. Allowed: ASCII letters, digits, '-', '_', '.';
 * starting with a letter or digit; not ending with '.'; at most 32
 * characters; not a DOS device name (CON, NUL, COM1, ... even with an
 * extension, since Windows maps "con.txt" to the device too). */
#include "core/boxname.h"

#include <string.h>

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* True when the part before the first dot is a reserved device name. */
static int is_device_name(const char *name)
{
    static const char *const devices[] = {"con", "prn", "aux", "nul", "conin$", "conout$"};
    size_t stem = strcspn(name, ".");
    char low[8];
    if (stem >= sizeof low)
        return 0;
    for (size_t i = 0; i < stem; i++)
        low[i] = lower(name[i]);
    low[stem] = 0;
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (strcmp(low, devices[i]) == 0)
            return 1;
    if (stem == 4 && (memcmp(low, "com", 3) == 0 || memcmp(low, "lpt", 3) == 0) &&
        low[3] >= '0' && low[3] <= '9')
        return 1;
    return 0;
}

fvm_status fvm_box_name_validate(const char *name, fvm_error *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return fvm_error_set(err, FVM_E_INVALID, "box name is empty");
    if (len > FVM_BOX_NAME_MAX_LEN)
        return fvm_error_set(err, FVM_E_INVALID, "box name '%.40s%s' is too long (%lu characters, at most %d)",
                             name, len > 40 ? "..." : "", (unsigned long)len, FVM_BOX_NAME_MAX_LEN);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return fvm_error_set(err, FVM_E_INVALID, "box name '%s' is a relative folder reference", name);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '\\' || c == '/' || c == ':')
            return fvm_error_set(err, FVM_E_INVALID,
                                 "box name '%s' contains a path separator '%c' at position %lu", name, c, (unsigned long)(i + 1));
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
            return fvm_error_set(err, FVM_E_INVALID,
                                 "box name '%s' contains a character not allowed at position %lu "
                                 "(use letters, digits, '-', '_' and '.')", name, (unsigned long)(i + 1));
    }
    if (!is_alnum(name[0]))
        return fvm_error_set(err, FVM_E_INVALID, "box name '%s' must start with a letter or a digit", name);
    if (name[len - 1] == '.')
        return fvm_error_set(err, FVM_E_INVALID, "box name '%s' must not end with '.'", name);
    if (is_device_name(name))
        return fvm_error_set(err, FVM_E_INVALID, "box name '%s' is a reserved Windows device name", name);
    return FVM_OK;
}
