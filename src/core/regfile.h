/* regfile.h - the text format of a box's registry delta (<box>\registry.dat).
 *
 * A box's registry changes live, while the box runs, as a key tree in the
 * registry (common/regstore.h); between runs they are kept in this text
 * file. The format is line-oriented UTF-8 that an administrator can read,
 * and it round-trips everything the registry can hold: key and value names
 * are counted UTF-16 strings (any unit, quotes, newlines, NUL, unpaired
 * surrogates), values have any 32-bit type (including FVM's tombstone type)
 * and any bytes. Example:
 *
 *     FVM REGISTRY 1
 *     [MACHINE\\SOFTWARE\\Vendor]
 *     ""=sz:"default value"
 *     "Count"=dword:0000002a
 *     "Paths"=multi_sz:"C:\\a\0C:\\b\0"
 *     "Blob"=hex(3):00ff10
 *     "Odd"=hex(1):4100
 *     "Removed"=deleted
 *     [MACHINE\\SOFTWARE\\Vendor\\Empty key]
 *     END
 *
 * Grammar (one item per line; blank lines and lines starting with ';' are
 * ignored; "\r\n" is accepted for "\n"):
 *
 *     file   = "FVM REGISTRY 1" { key | value } "END"
 *     key    = "[" chars "]"          path below the tree root, "\" between
 *                                     names (written "\\"); "[]" is the root
 *     value  = string "=" data        the value of the last key line
 *     data   = "sz:" string | "expand_sz:" string | "multi_sz:" string
 *            | "dword:" 8 hex | "qword:" 16 hex | "hex(" TYPE "):" {hex hex}
 *            | "deleted"
 *     string = '"' chars '"'
 *     chars  = UTF-8 text; escapes \\ \" \] \0 \n \r \t and \uXXXX (one
 *              UTF-16 unit, any value); control characters must be escaped
 *
 * The string forms hold types 1, 2 and 7 whose data is whole UTF-16 units
 * ending in one NUL unit, which the file leaves out (multi_sz keeps the NUL
 * that ends its last string); dword and qword hold types 4 and 11 of exactly
 * 4 and 8 bytes (the number, little-endian in the data); "deleted" is a
 * tombstone (type REGFILE_TYPE_DELETED, no data); hex(TYPE) holds anything
 * else. The final END line tells a complete file from a truncated one.
 *
 * The serializer appends to a growable buffer of the caller; the parser
 * reports each key and value to a visitor and fails with the line and column
 * of the first problem; it never reads outside its input, whatever it is
 * (fuzz/fuzz_regfile.c). Not in the runtime build (FVM_RUNTIME): it
 * allocates. Writing the file atomically is the caller's business. */
#ifndef FVM_CORE_REGFILE_H
#define FVM_CORE_REGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define REGFILE_HEADER "FVM REGISTRY 1"
/* The value type of a tombstone: the value was deleted in the box and hides
 * the host value of that name ("FVMD"; common/regstore.h: REG_FVM_DELETED). */
#define REGFILE_TYPE_DELETED 0x46564D44u

/* Text being built: data[0..len), grown with realloc. Start it zeroed. */
typedef struct regfile_buf {
    char *data;
    size_t len;
    size_t cap;
} regfile_buf;

void regfile_buf_free(regfile_buf *buf);

/* The first line; call once, first. */
fvm_status regfile_put_header(regfile_buf *buf, fvm_error *err);
/* A key line. path[0..len) is the key's path below the tree root, names
 * separated by one backslash (len 0: the root). FVM_E_INVALID for an empty
 * name (a leading, trailing or doubled backslash). */
fvm_status regfile_put_key(regfile_buf *buf, const uint16_t *path, size_t len, fvm_error *err);
/* A value line of the last key: name[0..name_len) (may be empty: the
 * default value), its type and data[0..size). */
fvm_status regfile_put_value(regfile_buf *buf, const uint16_t *name, size_t name_len, uint32_t type,
                             const void *data, size_t size, fvm_error *err);
/* The END line; call once, last. */
fvm_status regfile_put_end(regfile_buf *buf, fvm_error *err);

/* What the parser reports, in file order. Either callback may be NULL. A
 * callback that fails stops the parse; its error is returned with the line
 * and column put in front of its message. Pointers are valid during the call
 * only. */
typedef struct regfile_visitor {
    fvm_status (*key)(void *ctx, const uint16_t *path, size_t len, fvm_error *err);
    fvm_status (*value)(void *ctx, const uint16_t *name, size_t name_len, uint32_t type, const uint8_t *data,
                        size_t size, fvm_error *err);
    void *ctx;
} regfile_visitor;

/* Parses text[0..len). FVM_E_PARSE ("line L, column C: ...") for a
 * malformed file, FVM_E_UNSUPPORTED for another format version, FVM_E_NOMEM,
 * or the error of a callback. */
fvm_status regfile_parse(const char *text, size_t len, const regfile_visitor *visitor, fvm_error *err);

#endif
