/* regstore.h - the box registry's live tree and its file.
 *
 * While a box runs, its registry delta is a key tree in the registry itself:
 * \REGISTRY\USER\FVM.<h> (HKEY_USERS\FVM.<h>), h = the 16 hex digits of
 * fvm_hash_path(box folder), as for the box's object names. Below it each
 * changed host key keeps its NT path minus "\REGISTRY\" (MACHINE\SOFTWARE\X
 * mirrors HKLM\Software\X; USER\<SID>\... mirrors HKEY_USERS\<SID>\...). A
 * value of type REG_FVM_DELETED is a tombstone: deleted in the box, it hides
 * the host value of that name. The runtime (src/runtime/key*.c) writes and
 * merges this tree; the broker loads it from <box>\registry.dat at box start
 * and saves it back (core/regfile.h is the format); fvm diff reads it.
 *
 * Every name is a counted UTF-16 string handed to the NT registry calls, so
 * names with any unit (NUL included) survive a dump and a load. The tree
 * name helpers are CRT-free (the runtime uses them); the rest is not in the
 * runtime build (FVM_RUNTIME). */
#ifndef FVM_COMMON_REGSTORE_H
#define FVM_COMMON_REGSTORE_H

#include "common/boxcfg.h"

/* The value type of a tombstone ("FVMD"). */
#define REG_FVM_DELETED 0x46564D44u

/* "FVM.<h>": the tree's key name below HKEY_USERS. */
#define REGSTORE_TREE_NAME_CHARS 21
void regstore_tree_name(const wchar_t *box_path, wchar_t out[REGSTORE_TREE_NAME_CHARS]);
/* "\REGISTRY\USER\FVM.<h>": its NT path. */
#define REGSTORE_TREE_PATH_CHARS 36
void regstore_tree_path(const wchar_t *box_path, wchar_t out[REGSTORE_TREE_PATH_CHARS]);

#ifndef FVM_RUNTIME
#include "core/regfile.h"

/* <box>\registry.dat */
void regstore_file_path(const wchar_t *box_path, wchar_t *out, size_t cap);

/* ---- keys (counted names; root NULL: name is an absolute NT path) -------- */

NTSTATUS regstore_open_key(HANDLE root, const wchar_t *name, size_t len, ACCESS_MASK access, HANDLE *key);
/* Opens or creates the key and every missing key above it (below root). */
NTSTATUS regstore_create_key(HANDLE root, const wchar_t *name, size_t len, HANDLE *key, BOOL *created);
/* A value's type and data (malloc'd, free it); STATUS_OBJECT_NAME_NOT_FOUND
 * when the key has no value of that name. */
NTSTATUS regstore_query_value(HANDLE key, const wchar_t *name, size_t len, ULONG *type, uint8_t **data,
                              ULONG *size);

/* Every value, then every subkey name, of one key. A callback returning
 * non-zero stops the walk (the walk returns STATUS_SUCCESS). */
typedef int (*regstore_value_fn)(void *ctx, const wchar_t *name, size_t len, ULONG type, const uint8_t *data,
                                 ULONG size);
typedef int (*regstore_subkey_fn)(void *ctx, const wchar_t *name, size_t len);
NTSTATUS regstore_enum_values(HANDLE key, regstore_value_fn fn, void *ctx);
NTSTATUS regstore_enum_subkeys(HANDLE key, regstore_subkey_fn fn, void *ctx);

/* ---- the tree ----------------------------------------------------------- */

/* Opens the box's live tree; STATUS_OBJECT_NAME_NOT_FOUND when there is none. */
NTSTATUS regstore_open_tree(const wchar_t *box_path, ACCESS_MASK access, HANDLE *tree);
/* Opens it, creating it (empty) when there is none; *created says which. */
NTSTATUS regstore_create_tree(const wchar_t *box_path, HANDLE *tree, BOOL *created);
/* Appends the whole tree below root to out as registry text (header to
 * END); *empty is set when root has neither values nor subkeys. Top-level
 * keys named ".fvm-..." (the runtime's scratch keys) are left out. */
fvm_status regstore_dump(HANDLE root, regfile_buf *out, BOOL *empty, fvm_error *err);
/* Creates the keys and values of registry text below root. */
fvm_status regstore_load(HANDLE root, const char *text, size_t len, fvm_error *err);
/* Deletes root and everything below it (root must have DELETE and
 * KEY_ENUMERATE_SUB_KEYS access); the handle stays to be closed. */
NTSTATUS regstore_delete_tree(HANDLE root);
/* Deletes the box's live tree if there is one; TRUE when none is left. */
BOOL regstore_delete_box_tree(const wchar_t *box_path);

/* ---- the file ----------------------------------------------------------- */

/* Reads a whole file (malloc'd, free it). FVM_E_NOTFOUND when it does not
 * exist, FVM_E_IO otherwise. */
fvm_status regstore_read_file(const wchar_t *path, char **text, size_t *len, fvm_error *err);
/* Replaces the file atomically and durably: a temporary file next to it is
 * written and flushed, then moved over it (MOVEFILE_REPLACE_EXISTING |
 * MOVEFILE_WRITE_THROUGH); a crash leaves the old file or the new one. */
fvm_status regstore_write_file(const wchar_t *path, const char *text, size_t len, fvm_error *err);

#endif /* FVM_RUNTIME */
#endif
