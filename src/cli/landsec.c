/* landsec.c - the security a committed file ends with on the host.
 *
 * Commit lands a box file by renaming it over the host file (or by renaming
 * a copy made next to it). A rename keeps the renamed file's security
 * descriptor, so without this the host file would end with the box copy's
 * (whatever the box folder gave it) instead of what a copy onto the host
 * gives: a changed file keeps the host file's own owner, group and DACL;
 * a new file gets what the host folder gives a new file by inheritance.
 * That inherited SD is learnt by creating an empty probe file in the
 * folder (deleted on close) and reading its SD: the system computes the
 * inheritance itself, Windows and Wine alike, with no ACL rules redone
 * here. It is cached per folder (a commit of many new files in one folder
 * probes once). The SD is set on the file before the rename, so the host
 * never sees the landed file with other security. SACLs are not copied
 * (reading them needs a privilege a commit does not hold). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#define WPATH (FVM_PATH_MAX * 2)

static const SECURITY_INFORMATION WHAT = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION |
                                         DACL_SECURITY_INFORMATION;

static wchar_t g_cached_dir[WPATH];
static void *g_cached_sd;

static void *sd_of_handle(HANDLE h)
{
    DWORD need = 0;
    GetKernelObjectSecurity(h, WHAT, NULL, 0, &need);
    if (!need)
        return NULL;
    void *sd = malloc(need);
    if (sd && !GetKernelObjectSecurity(h, WHAT, sd, need, &need)) {
        free(sd);
        sd = NULL;
    }
    return sd;
}

static void *sd_of_file(const wchar_t *path)
{
    DWORD need = 0;
    GetFileSecurityW(path, WHAT, NULL, 0, &need);
    if (!need)
        return NULL;
    void *sd = malloc(need);
    if (sd && !GetFileSecurityW(path, WHAT, sd, need, &need)) {
        free(sd);
        sd = NULL;
    }
    return sd;
}

/* What the folder of target gives a new file: the SD of a probe file made there. */
static void *inherited_sd(const wchar_t *target)
{
    wchar_t dir[WPATH], probe[WPATH];
    _snwprintf(dir, WPATH, L"%ls", target);
    dir[WPATH - 1] = 0;
    wchar_t *slash = wcsrchr(dir, L'\\');
    if (!slash)
        return NULL;
    *slash = 0;
    if (g_cached_sd && !_wcsicmp(dir, g_cached_dir))
        return g_cached_sd;
    _snwprintf(probe, WPATH, L"%ls.fvm-sd", target);
    probe[WPATH - 1] = 0;
    HANDLE h = CreateFileW(probe, READ_CONTROL | DELETE, 0, NULL, CREATE_ALWAYS,
                           FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    void *sd = sd_of_handle(h);
    CloseHandle(h);
    if (sd) {
        free(g_cached_sd);
        g_cached_sd = sd;
        wcscpy(g_cached_dir, dir);
    }
    return sd;
}

int sync_give_landing_security(const wchar_t *file, const wchar_t *target, BOOL host_exists)
{
    void *own = host_exists ? sd_of_file(target) : NULL;
    void *sd = host_exists ? own : inherited_sd(target);
    if (!sd)
        return 0;   /* nothing to give (a file system without security): the file keeps its own */
    int rc = 0;
    if (!SetFileSecurityW(file, WHAT, sd)) {
        /* Taking an owner may need a privilege this process lacks: the DACL still follows. */
        if (!SetFileSecurityW(file, DACL_SECURITY_INFORMATION, sd))
            rc = cli_win_error(GetLastError(), "cannot give %ls the security of %ls", file, target);
    }
    free(own);
    return rc;
}
