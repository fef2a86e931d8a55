/* sdk.h - what the SDK's files share (not installed: the public API is
 * include/fvm/fvm.h). */
#ifndef FVM_SDK_SDK_H
#define FVM_SDK_SDK_H

#include "fvm/fvm.h"
#include "common/boxcfg.h"

struct fvm_sdk {
    wchar_t exe_dir[FVM_PATH_MAX];   /* fvm.exe's folder, no trailing backslash */
    wchar_t fvm_exe[FVM_PATH_MAX];   /* <exe_dir>\fvm.exe */
    wchar_t root[FVM_PATH_MAX];      /* the FVM root, full path */
    wchar_t *child_env;              /* environment block for fvm.exe: ours with FVM_ROOT=root */
};

/* Fill err (may be NULL) and return code. */
fvm_result sdk_fail(fvm_sdk_error *err, fvm_result code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
fvm_result sdk_ok(fvm_sdk_error *err);
fvm_result sdk_win_fail(fvm_sdk_error *err, DWORD code, const char *what);

void sdk_utf8(const wchar_t *in, char *out, size_t cap);
BOOL sdk_wide(const char *in, wchar_t *out, size_t cap);

/* <root>\boxes\<name> after validating the name (FVM_PATH_MAX characters). */
fvm_result sdk_box_path(const fvm_sdk *sdk, const char *name, wchar_t *out, fvm_sdk_error *err);
/* The same, and FVM_SDK_E_NOTFOUND when the box does not exist. */
fvm_result sdk_existing_box(const fvm_sdk *sdk, const char *name, wchar_t *out, fvm_sdk_error *err);

#endif
