/* pack.h - the box package format of `fvm export` / `fvm import`
 * (docs/pack-format.md is the reference).
 *
 * A package is one file: a header, records, and an END record holding the
 * SHA-256 of every byte before it. Records carry the box's policy, its
 * index (the region, zero runs squeezed out), its registry delta, and each
 * file of the box folder, either whole or as a delta against the host file
 * the box copy started from (the base version the index records: size,
 * last-write time, SHA-256), so a 1-byte change in a large file travels as
 * one block.
 *
 * This module only reads and checks; it never touches files. pack_parse
 * first checks the checksum and the structure of the whole package (every
 * length, every path, every delta op within its base and adding up to the
 * file's size) and only then calls the visitor, so a caller that applies
 * from the visitor never starts on a package it would have to abandon for
 * a format reason. Packages are outside input: fuzz/fuzz_pack.c. */
#ifndef FVM_CORE_PACK_H
#define FVM_CORE_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PACK_MAGIC "FVMPACK\x1a"
#define PACK_MAGIC_LEN 8u
#define PACK_VERSION 1u
#define PACK_HEADER_FIXED 26u        /* magic, version, flags, created, name length */
#define PACK_RECORD_HEADER 16u       /* type (1), zero (7), payload length (8) */
#define PACK_MAX_NAME 255u
#define PACK_MAX_PATH_UNITS 32767u

enum {
    PACK_FLAG_INCREMENTAL = 1u       /* only files changed since an earlier package (--since) */
};

typedef enum pack_record_type {
    PACK_REC_POLICY = 1,             /* the box's policy.ini, as text */
    PACK_REC_INDEX = 2,              /* the box index region, zero-squeezed */
    PACK_REC_FILE = 3,               /* a box file, whole */
    PACK_REC_DELTA = 4,              /* a box file as ops against its host base */
    PACK_REC_DIR = 5,                /* a box folder */
    PACK_REC_REGISTRY = 6,           /* the box's registry.dat, as text */
    PACK_REC_END = 0xFF              /* SHA-256 of everything before this record */
} pack_record_type;

typedef struct pack_header {
    uint32_t version;
    uint32_t flags;
    int64_t created;                 /* FILETIME */
    const char *name;                /* box name, UTF-8, not terminated */
    size_t name_len;
} pack_header;

/* A file or folder of the box folder, by its host path. */
typedef struct pack_file {
    const uint16_t *path;            /* host path, NT form (\??\C:\...), UTF-16LE, unaligned: copy before use */
    size_t path_len;                 /* units */
    uint32_t attributes;
    int64_t ctime, atime, mtime;     /* FILETIME */
    uint64_t size;                   /* bytes of the file */
} pack_file;

/* A delta: the file is the concatenation of its ops' outputs. */
typedef struct pack_delta {
    uint64_t base_size;
    int64_t base_mtime;
    uint8_t base_hash[32];           /* SHA-256 of the base */
    const uint8_t *ops;
    size_t ops_len;
} pack_delta;

typedef struct pack_op {
    int copy;                        /* 1: length bytes of the base from offset; 0: length literal bytes at data */
    uint64_t offset, length;
    const uint8_t *data;
} pack_op;

typedef struct pack_visitor {
    fvm_status (*header)(void *ctx, const pack_header *h, fvm_error *err);
    /* POLICY, INDEX (still squeezed: pack_unsqueeze), REGISTRY */
    fvm_status (*blob)(void *ctx, pack_record_type type, const uint8_t *data, size_t len, fvm_error *err);
    fvm_status (*file)(void *ctx, const pack_file *f, const uint8_t *data, fvm_error *err);
    fvm_status (*delta)(void *ctx, const pack_file *f, const pack_delta *d, fvm_error *err);
    fvm_status (*dir)(void *ctx, const pack_file *f, fvm_error *err);
    void *ctx;
} pack_visitor;

/* Checks all of data[0..len), then visits it (v may be NULL: check only).
 * FVM_E_INVALID with the offset and what is wrong; a visitor's status is
 * returned as it is. */
fvm_status pack_parse(const uint8_t *data, size_t len, const pack_visitor *v, fvm_error *err);

/* The next op of a checked delta: 1 and *op, 0 at the end. */
int pack_delta_next(const pack_delta *d, size_t *pos, pack_op *op);

/* ---- writing helpers (the CLI streams the records itself) ---- */

/* The fixed header and the name: PACK_HEADER_FIXED + name_len bytes. */
size_t pack_put_header(uint8_t *out, uint32_t flags, int64_t created, const char *name, size_t name_len);
void pack_put_record_header(uint8_t out[PACK_RECORD_HEADER], pack_record_type type, uint64_t payload_len);
/* The fixed part of a FILE/DELTA/DIR payload before the path: 42 bytes. */
#define PACK_FILE_FIXED 42u
size_t pack_put_file(uint8_t *out, const pack_file *f);   /* fixed part + path: 42 + 2*path_len */
/* DELTA: after the file part, the base: 8 + 8 + 32 bytes. */
#define PACK_BASE_LEN 48u
void pack_put_base(uint8_t out[PACK_BASE_LEN], uint64_t size, int64_t mtime, const uint8_t hash[32]);
/* One op's header: COPY = 17 bytes (kind, offset, length), DATA = 9 bytes then the data. */
size_t pack_put_op(uint8_t out[17], int copy, uint64_t offset, uint64_t length);

/* Zero squeezing (the index region is mostly zeros): runs of
 * [u32 literal length][literal bytes][u32 zero length] after a u64 total.
 * pack_squeeze needs out of pack_squeeze_bound(n) bytes; returns the length. */
size_t pack_squeeze_bound(size_t n);
size_t pack_squeeze(const uint8_t *in, size_t n, uint8_t *out);
/* The total size a squeezed blob expands to (checked), or FVM_E_INVALID. */
fvm_status pack_unsqueezed_size(const uint8_t *in, size_t n, uint64_t *size, fvm_error *err);
fvm_status pack_unsqueeze(const uint8_t *in, size_t n, uint8_t *out, size_t out_len, fvm_error *err);

#endif
