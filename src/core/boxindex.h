/* boxindex.h - the box index: what a box has done to host paths (copied up,
 * created, deleted, renamed), shared by all of the box's processes.
 *
 * The runtime maps one file, <box>\index.fvm, shared and writable into every
 * boxed process, and asks this module about it. The question asked most is
 * "has the box touched this host path?": for an untouched path the answer is
 * a few loads from the mapping and no system call (architecture invariant 3).
 *
 * The idea: a fixed-layout region (header, two open-addressing tables of
 * 64-bit slot words, an append-only arena). Every fact about one path is an
 * immutable record in the arena; a slot word names the current record.
 * Writers (serialized by a lock the caller provides) append a new record and
 * then swing the slot word with one release store, so a reader that takes no
 * lock sees the old record or the new one, never a mix. A second table maps
 * a folder's key hash to the slots of its children, so a folder's box
 * entries are listed without scanning every key. A one-operation journal in
 * the header lets the next writer finish an operation whose writer was
 * killed at any instruction. boxindex_validate checks every invariant of a
 * region, which is outside input (a file on disk).
 *
 * Keys are canonical host paths (core/ntpath) of kind DRIVE or UNC, upper-
 * cased as ntpath_key gives them ("\??\C:\DIR\FILE", "\??\UNC\SRV\SHARE\X",
 * a stream as "...\FILE:S"); their hash is ntpath_hash of the path, which
 * boxindex_key_hash computes from the key alone. The original-case path is
 * kept too (same length as the key), for listings and `fvm diff`.
 *
 * Registry keys share the index (the registry virtualizer's key states):
 * "\REGISTRY\MACHINE\SOFTWARE\X", upper-cased, root "\REGISTRY\", with
 * ':' an ordinary character; their hash seed is BOXINDEX_KIND_REGISTRY, so
 * they never collide in kind with file paths. boxindex_key_is_registry
 * tells them apart for callers that walk every entry.
 *
 * Portable C11, no allocation, no system calls; the region layout is native
 * x64 (little-endian, 8-byte aligned). The .c file describes the layout. */
#ifndef FVM_CORE_BOXINDEX_H
#define FVM_CORE_BOXINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/ntpath.h"

#define BOXINDEX_FORMAT_VERSION 1u
/* The hash seed's kind for registry keys (file keys use ntpath_kind). */
#define BOXINDEX_KIND_REGISTRY 0x52u
/* The longest key: a canonical path, ':' and a stream name. */
#define BOXINDEX_MAX_KEY_UNITS (NTPATH_MAX_UNITS + 1u + NTPATH_STREAM_MAX_UNITS)
/* Capacity limits of the format (32-bit slot words and arena offsets). */
#define BOXINDEX_MAX_ENTRIES (1u << 28)
#define BOXINDEX_MAX_ARENA_BYTES 0xFFFFFFF8u

/* What the box has done to one path. */
typedef enum boxindex_state {
    BOXINDEX_ABSENT = 0,    /* no entry: an untouched host path (lookup result only) */
    BOXINDEX_COPIED = 1,    /* exists in the box and shadows a host file (base version in base, if HAS_BASE) */
    BOXINDEX_CREATED = 2,   /* exists only in the box: there is no host file at this path */
    BOXINDEX_TOMBSTONE = 3, /* deleted in the box: hides the host path and everything below it */
    BOXINDEX_RENAMED = 4    /* moved away in the box (renamed_to says where): hides like a tombstone */
} boxindex_state;

/* Entry flags. The low byte belongs to the index; the caller may use the
 * bits of BOXINDEX_FLAG_CALLER_MASK freely (they are stored and returned). */
enum {
    BOXINDEX_FLAG_DIRECTORY = 1u << 0, /* a folder */
    BOXINDEX_FLAG_HAS_BASE = 1u << 1,  /* base holds the host version this entry diverged from */
    BOXINDEX_FLAG_OPAQUE = 1u << 2,    /* a folder re-created over a deleted host folder: host contents stay hidden */
    BOXINDEX_FLAG_CALLER_MASK = 0xFF00u
};

/* The host version a box copy started from: commit compares it with the
 * host's current version to detect a conflict (invariant 6). */
typedef struct boxindex_base {
    uint64_t size;               /* bytes */
    int64_t mtime;               /* last-write time, FILETIME (100 ns since 1601) */
    uint8_t content_hash[32];    /* filled by the caller (e.g. SHA-256), zero if unknown */
} boxindex_base;

/* A path as the caller has it. hash = ntpath_hash of the path (equal to
 * boxindex_key_hash(key, len)); key = ntpath_key of it (upper case); path =
 * the same path in original case, len units too (NULL: use key). */
typedef struct boxindex_key {
    uint64_t hash;
    const uint16_t *key;
    const uint16_t *path;
    size_t len;
} boxindex_key;

/* What the caller knows about a path: its flags (DIRECTORY, caller bits;
 * HAS_BASE when base is filled) and the host base version. */
typedef struct boxindex_info {
    uint32_t flags;
    boxindex_base base;
} boxindex_info;

/* One entry as lookups and iterations return it. The pointers point into
 * the mapped region, whose strings are never rewritten in place: they stay
 * valid as long as the region stays mapped. */
typedef struct boxindex_entry {
    boxindex_state state;
    uint32_t flags;              /* BOXINDEX_FLAG_* */
    uint64_t key_hash;
    const uint16_t *key;         /* upper-cased canonical path */
    const uint16_t *path;        /* the same path in original case */
    size_t len;                  /* units of key and of path */
    uint64_t parent_hash;        /* hash of key[0..parent_len): the folder (or the file, for a stream) */
    size_t parent_len;           /* 0 for a root ("\??\C:\"), which has no parent */
    const uint16_t *renamed_to;  /* RENAMED: the original-case path it went to; else NULL */
    size_t renamed_to_len;
    boxindex_base base;          /* valid when flags & BOXINDEX_FLAG_HAS_BASE */
} boxindex_entry;

/* The writers' lock, shared by every process of the box (the runtime: a
 * named mutex; tests: a process-shared robust pthread mutex). lock returns
 * 0 when the caller now holds it (also when the previous holder died: the
 * index repairs what that holder left), anything else when it could not be
 * taken. Readers never lock. */
typedef struct boxindex_lock {
    int (*lock)(void *ctx);
    void (*unlock)(void *ctx);
    void *ctx;
} boxindex_lock;

/* Test hook: called at every step of a write (after each record, journal
 * write, slot store, counter update...). A test can stop the operation there
 * (longjmp, or kill the process) to simulate a crash at that point. */
typedef void (*boxindex_step_hook)(void *ctx, unsigned step, const char *what);

/* A process's handle on a mapped region. The layout is copied from the
 * header once, at open, and every access is checked against this copy, so
 * no content of the shared region (which any process of the box can write)
 * can make a lookup read outside it. Fields are private. */
typedef struct boxindex {
    unsigned char *mem;
    size_t total_size;
    uint32_t slot_count;
    uint32_t max_entries;
    size_t arena_off;
    size_t arena_size;
    const boxindex_lock *lock;   /* NULL: the caller has exclusive access */
    boxindex_step_hook step_hook;
    void *step_ctx;
    unsigned step;
} boxindex;

typedef struct boxindex_stats {
    uint64_t generation;         /* +1 per completed write: a cache of lookups is stale when it changed */
    uint32_t entries;            /* live entries, all states */
    uint32_t hidden;             /* TOMBSTONE and RENAMED entries */
    uint32_t max_entries;
    uint32_t slot_count;
    uint32_t key_markers;        /* deletion markers in the key table */
    uint32_t child_markers;      /* and in the children table */
    uint64_t arena_used;
    uint64_t arena_size;
    int retired;                 /* rebuilt into another region: reopen */
} boxindex_stats;

/* Callback of the iterations: return 0 to go on, anything else to stop
 * (the iteration then returns that value). */
typedef int (*boxindex_visit)(void *ctx, const boxindex_entry *entry);

/* ---- keys ---------------------------------------------------------------- */

/* ntpath_hash of the DRIVE or UNC path whose ntpath_key is key[0..len).
 * With len < the key's length it hashes that prefix (an ancestor's key, when
 * the prefix ends before a backslash). */
uint64_t boxindex_key_hash(const uint16_t *key, size_t len);
/* The same hash built incrementally, for every prefix of one key in a
 * single pass: start with the whole key (its kind decides the seed), then
 * extend unit by unit; after n units the value is boxindex_key_hash(key, n). */
uint64_t boxindex_key_hash_start(const uint16_t *key, size_t len);
uint64_t boxindex_key_hash_extend(uint64_t hash, const uint16_t *units, size_t n);

/* Units of the parent's key: the folder, or the file for a stream
 * ("\??\C:\A\F:S" -> "\??\C:\A\F"); a root's parent is 0 units. Also 0
 * when key is not a canonical DRIVE or UNC key. */
size_t boxindex_parent_len(const uint16_t *key, size_t len);

/* 1 when key is a registry key ("\REGISTRY\..."), 0 for a file path. */
int boxindex_key_is_registry(const uint16_t *key, size_t len);

/* ---- regions -------------------------------------------------------------- */

/* Bytes needed for max_entries entries and arena_bytes of record and string
 * space (each new path takes about 96 + 4 * its length bytes, each later
 * change of it 96). 0 when the numbers exceed the format's limits. */
size_t boxindex_size_for(uint32_t max_entries, size_t arena_bytes);

/* Lays out an empty index in mem[0..size): tables for max_entries entries,
 * the rest of the region is arena. mem must be 8-byte aligned (a mapping
 * is). FVM_E_RANGE when size is too small. */
fvm_status boxindex_init(boxindex *idx, void *mem, size_t size, uint32_t max_entries, const boxindex_lock *lock,
                         fvm_error *err);

/* Opens an existing region: checks the header (magic, version, layout and
 * its checksum) and fills idx. Cheap (no scan). Lookups on the handle are
 * memory-safe whatever the rest of the region holds; boxindex_validate tells
 * whether it is also correct. An interrupted write is repaired by the next
 * writer (or boxindex_recover). */
fvm_status boxindex_open(boxindex *idx, void *mem, size_t size, const boxindex_lock *lock, fvm_error *err);

/* Takes the lock and finishes an operation whose writer died (every write
 * does this first; call it after mapping to repair eagerly). FVM_E_INVALID
 * when what it finds is not a crash but corruption. */
fvm_status boxindex_recover(boxindex *idx, fvm_error *err);

/* Checks every invariant of a region: header and its checksums, layout,
 * slot words, records (bounds, checksum, key shape, hash, parent), probe
 * chains, children table, counts. Reports the first violation with its
 * offset. FVM_E_BUSY (with the journal checked) when an interrupted
 * operation awaits recovery. Read-only; the region must not change during
 * the call (hold the lock, or use a private copy). */
fvm_status boxindex_validate(const void *mem, size_t size, fvm_error *err);

/* Copies every live entry of old into a fresh index in mem[0..size) for
 * max_entries entries (compacting the arena, dropping deletion markers),
 * then marks old retired, so other processes know to map the new file.
 * Hold old's lock during the call; old must have no interrupted operation
 * (FVM_E_BUSY). FVM_E_RANGE when the new region is too small (old is then
 * unchanged). */
fvm_status boxindex_rebuild_into(boxindex *old, void *mem, size_t size, uint32_t max_entries,
                                 const boxindex_lock *lock, boxindex *out, fvm_error *err);

/* 1 once the index was rebuilt into another region: writes to it fail with
 * FVM_E_BUSY, lookups still answer with its last state. */
int boxindex_is_retired(const boxindex *idx);

void boxindex_stats_get(const boxindex *idx, boxindex_stats *out);

void boxindex_set_step_hook(boxindex *idx, boxindex_step_hook hook, void *ctx);

/* ---- lookups (no lock, no system call) ------------------------------------- */

/* The entry for key (hash = boxindex_key_hash(key, key_len)): its state,
 * or BOXINDEX_ABSENT. out may be NULL. */
boxindex_state boxindex_lookup(const boxindex *idx, uint64_t key_hash, const uint16_t *key, size_t key_len,
                               boxindex_entry *out);

/* 1 when an ancestor of key (a folder above it; for a stream also its file)
 * is TOMBSTONE or RENAMED, or an OPAQUE folder: the host path is then hidden
 * even though key itself has no entry. O(depth) probes. hider (may be NULL)
 * receives the nearest such ancestor. */
int boxindex_hidden_by_ancestor(const boxindex *idx, const uint16_t *key, size_t key_len, boxindex_entry *hider);

/* Visits the entries whose parent is the folder (or file) parent_key, in no
 * particular order. Returns what visit stopped with, else 0. Entries written
 * by another process during the iteration may be missed or, rarely, seen
 * twice (a caller merging a listing drops repeats); with the lock held (or
 * no concurrent writer) each child is seen exactly once. */
int boxindex_children(const boxindex *idx, uint64_t parent_hash, const uint16_t *parent_key, size_t parent_len,
                      boxindex_visit visit, void *ctx);

/* Visits every live entry (for `fvm diff`, commit and rebuild). */
int boxindex_foreach(const boxindex *idx, boxindex_visit visit, void *ctx);

/* ---- writes (take the lock) ---------------------------------------------------
 *
 * The state machine, per path:
 *   copy_up  absent -> COPIED (base from info). An entry exists: FVM_E_EXISTS
 *            (live) or FVM_E_NOTFOUND (deleted).
 *   create   absent -> CREATED, or COPIED when info has a base (the caller
 *            knows the host has this path); TOMBSTONE/RENAMED -> COPIED with
 *            the base kept (the host file is still the base; a folder becomes
 *            OPAQUE); live: FVM_E_EXISTS.
 *   delete   CREATED -> removed; COPIED -> TOMBSTONE (base kept); absent ->
 *            TOMBSTONE with info (an untouched host file); deleted already:
 *            FVM_E_NOTFOUND.
 *   rename   from: CREATED -> removed, COPIED or absent -> RENAMED (base
 *            kept / from from_host); to: as create, except that a live
 *            entry is replaced (COPIED keeps its own base). to takes from's
 *            folder and caller flags. Same key (a change of case): the path's
 *            case changes. One entry moves; the caller moves a folder's
 *            descendants.
 *   update   a live or deleted entry gets info's flags and base.
 *   forget   the entry is removed whatever its state (after commit/discard).
 * copy_up, create and the target of rename under a deleted folder (see
 * boxindex_hidden_by_ancestor; OPAQUE folders do not count) are
 * FVM_E_NOTFOUND. A full index is FVM_E_RANGE (rebuild into a larger one);
 * a key that is not a canonical DRIVE/UNC key, or whose hash is not its
 * hash, is FVM_E_INVALID. A failed write changes nothing. */
fvm_status boxindex_copy_up(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err);
fvm_status boxindex_create(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err);
fvm_status boxindex_delete(boxindex *idx, const boxindex_key *key, const boxindex_info *host, fvm_error *err);
fvm_status boxindex_rename(boxindex *idx, const boxindex_key *from, const boxindex_key *to,
                           const boxindex_info *from_host, const boxindex_info *to_host, fvm_error *err);
fvm_status boxindex_update(boxindex *idx, const boxindex_key *key, const boxindex_info *info, fvm_error *err);
fvm_status boxindex_forget(boxindex *idx, const boxindex_key *key, fvm_error *err);

const char *boxindex_state_name(boxindex_state state);

#endif
