/* ntpath.h - one canonical name for every way a Windows program can spell a
 * file, and the mapping of host files into a box folder.
 *
 * The file virtualizer decides per file (copy-on-write, read, open, hide,
 * deny) and redirects writes into the box. A decision is only as good as the
 * name it is made on: "\??\C:\box\..\host", "\Device\HarddiskVolume1\host",
 * "\\?\UNC\localhost\C$\host", "C:\HOST.", "c:\host::$DATA" all name the same
 * file. ntpath_normalize turns any NT or Win32 spelling into one canonical NT
 * path ("\??\C:\Dir\File", "\??\UNC\server\share\x", original case), plus its
 * kind, stream and flags. Two spellings of one file give paths that compare
 * equal with ntpath_compare (case-insensitive), so policy and box mapping work
 * on that and nothing else.
 *
 * The runtime must pass the canonical path (or its box mapping) to the real
 * system call, never the program's original string: then the name that was
 * decided on and the name that is opened are the same by construction, even
 * where Windows, Wine and this module would read the original differently.
 *
 * Portable C11, no allocation, no Windows headers: strings are UTF-16 code
 * units with explicit lengths (NT UNICODE_STRINGs are not NUL-terminated).
 *
 * Rules chosen where Windows is ambiguous or where Windows and Wine differ
 * (the .c file explains each at the place it is applied):
 *  - "." and ".." are always collapsed in drive and UNC paths, also in NT
 *    forms (Windows refuses them there, Wine resolves them); ".." stops at the
 *    root of the drive or share. In device, pipe and other object names they
 *    are refused, because we cannot know how the object manager would read
 *    them. In Win32 "\\.\" device paths ".." may climb over the device name,
 *    as Win32 does ("\\.\C:\..\x" is "\??\x", not a drive path).
 *  - Trailing dots and spaces are stripped from every file and folder name in
 *    every form, so "file", "file." and "file ." are one name. Win32 does that
 *    for the last name only; NTFS would keep them in NT forms. When stripping
 *    changed a name Windows would have kept, NTPATH_FLAG_TRAILING_DOTS is set
 *    so the runtime can refuse instead of silently redirecting. A name made
 *    only of dots and spaces (other than "." and "..") is refused.
 *  - "/" separates names in Win32 forms only; in NT forms it is refused
 *    (Wine would treat it as a unix separator).
 *  - A Win32 last name whose base is CON, PRN, AUX, NUL, COM1-9, LPT1-9
 *    (also with superscript 1-3), CONIN$ or CONOUT$, with any extension, is
 *    that device ("C:\dir\NUL.txt" is "\??\NUL"), except in "\\?\", "\\.\"
 *    and UNC forms, as Win32 does. In NT forms such names are ordinary files.
 *  - Streams: "a::$DATA", "a:$DATA" are "a"; "a:s" and "a:s:$DATA" are stream
 *    "s" of "a"; "d::$INDEX_ALLOCATION" and "d:$I30:$INDEX_ALLOCATION" are the
 *    folder "d" (on any component). Other attribute types and stream names
 *    starting with '$' are FVM_E_UNSUPPORTED; a named stream on a folder
 *    component is FVM_E_INVALID.
 *  - "\\localhost\C$\x" (also 127.x.x.x and ctx->computer_name) is the drive
 *    path "\??\C:\x": an administrative share is only another name for the
 *    drive. Other shares on such servers keep their UNC form but are flagged.
 *  - Storage names the context cannot map ("\Device\HarddiskVolume9",
 *    "\??\Volume{...}", "\Device\Harddisk0\Partition1", "\SystemRoot" without
 *    ctx->system_root) are FVM_E_NOTFOUND rather than OTHER_NT: they are file
 *    system paths and must not be mistaken for something harmless.
 */
#ifndef FVM_CORE_NTPATH_H
#define FVM_CORE_NTPATH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The longest name a UNICODE_STRING can hold (65534 bytes). Inputs and
 * canonical paths longer than this are FVM_E_RANGE. */
#define NTPATH_MAX_UNITS 32767u
/* NTFS limits a stream name to 255 characters. */
#define NTPATH_STREAM_MAX_UNITS 255u

typedef enum ntpath_kind {
    NTPATH_KIND_NONE = 0,  /* not filled (after an error) */
    NTPATH_KIND_DRIVE,     /* a file or folder on a drive letter: \??\C:\... */
    NTPATH_KIND_UNC,       /* a file or folder on a network share: \??\UNC\server\share\... */
    NTPATH_KIND_VOLUME,    /* the volume itself, not its root folder: \??\C: */
    NTPATH_KIND_DEVICE,    /* a device that is not a file system: \??\NUL, \Device\Afd, \??\PhysicalDrive0 */
    NTPATH_KIND_PIPE,      /* a named pipe: \Device\NamedPipe\x, or \??\UNC\server\pipe\x */
    NTPATH_KIND_MAILSLOT,  /* a mailslot: \Device\MailSlot\x, or \??\UNC\server\mailslot\x */
    NTPATH_KIND_OTHER_NT   /* any other object manager name; never a known file system path */
} ntpath_kind;

/* ntpath.flags. Flags describe the input as well as the result: the runtime
 * uses them to refuse what Windows would refuse, and for audit records. */
enum {
    NTPATH_FLAG_ROOT               = 1u << 0,  /* the root folder of a drive or share (or the pipe/mailslot root) */
    NTPATH_FLAG_SHORT_NAME         = 1u << 1,  /* a name looks like an 8.3 alias (PROGRA~1): expand before deciding, see short_name_end */
    NTPATH_FLAG_WILDCARDS          = 1u << 2,  /* '*' or '?' in a name or stream */
    NTPATH_FLAG_TRAILING_DOTS      = 1u << 3,  /* trailing dots/spaces were stripped where Windows would have kept them */
    NTPATH_FLAG_DOT_COMPONENTS     = 1u << 4,  /* an NT form had "." or ".." (Windows refuses these, Wine resolves them) */
    NTPATH_FLAG_EMPTY_COMPONENTS   = 1u << 5,  /* an NT form had repeated backslashes (same) */
    NTPATH_FLAG_ABOVE_ROOT         = 1u << 6,  /* a ".." tried to climb above the root and was ignored */
    NTPATH_FLAG_TRAILING_SEPARATOR = 1u << 7,  /* the input ended with a separator: the caller means a folder */
    NTPATH_FLAG_STREAM             = 1u << 8,  /* a named stream: see stream[] */
    NTPATH_FLAG_DEFAULT_STREAM     = 1u << 9,  /* "::$DATA" or ":$DATA" was spelled out */
    NTPATH_FLAG_DIRECTORY_INDEX    = 1u << 10, /* the last name carried ::$INDEX_ALLOCATION: it must be a folder */
    NTPATH_FLAG_WIN32_INPUT        = 1u << 11, /* the input was a Win32 form */
    NTPATH_FLAG_VERBATIM           = 1u << 12, /* the input was a \\?\ form */
    NTPATH_FLAG_RELATIVE_INPUT     = 1u << 13, /* the input used the context's current directory */
    NTPATH_FLAG_DOS_DEVICE_NAME    = 1u << 14, /* a Win32 last name was a DOS device (C:\x\NUL.txt) */
    NTPATH_FLAG_VIA_DEVICE_NAME    = 1u << 15, /* reached through a volume device name, GLOBALROOT or \SystemRoot */
    NTPATH_FLAG_LOOPBACK_UNC       = 1u << 16, /* a UNC server that is this machine (localhost, 127.*, computer_name) */
    NTPATH_FLAG_ADMIN_SHARE        = 1u << 17, /* \\this-machine\X$ was turned into drive X */
    NTPATH_FLAG_RAW_STORAGE        = 1u << 18, /* opens a volume or disk below the file system (VOLUME, PhysicalDriveN) */
    NTPATH_FLAG_WINE_UNIX          = 1u << 19, /* Wine's \??\unix\... form: a unix path the core cannot map (OTHER_NT) */
    NTPATH_FLAG_INNER_TRAILING_DOTS = 1u << 20 /* as TRAILING_DOTS, on a folder name before the last: another folder for Windows */
};

/* Which syntax an input follows. ANY (the default) tells them apart: "\??\",
 * "\DosDevices\", "\GLOBAL??\", "\Device\" and "\SystemRoot" starts are NT,
 * everything else is Win32 ("\Windows" is then C:\Windows, not the object
 * directory). NT is what NtCreateFile receives: relative and Win32 forms are
 * errors there. WIN32 never reads a single leading backslash as NT. */
typedef enum ntpath_input {
    NTPATH_INPUT_ANY = 0,
    NTPATH_INPUT_NT,
    NTPATH_INPUT_WIN32
} ntpath_input;

typedef struct ntpath_string {
    const uint16_t *units;
    size_t len;            /* 0 = not set */
} ntpath_string;

/* One entry of the volume table: an NT device (or \?? link) name and the
 * drive letter the runtime found for it by querying the \??\X: links. */
typedef struct ntpath_volume {
    const uint16_t *device; /* "\Device\HarddiskVolume1" or "\??\Volume{GUID}" */
    size_t device_len;
    uint16_t drive;         /* 'A'..'Z' (a lower-case letter is accepted) */
} ntpath_volume;

/* What the core cannot know by itself. Every field is optional; a NULL
 * context behaves like an all-zero one. The strings are read during the call
 * only. */
typedef struct ntpath_context {
    ntpath_input input;
    const ntpath_volume *volumes;
    size_t volume_count;
    ntpath_string current_dir;      /* absolute folder, Win32 or NT form: used by "a\b", "\a", "C:a" */
    ntpath_string drive_dirs[26];   /* per-drive current folders (the "=C:" variables), for "D:a" */
    ntpath_string system_root;      /* what \SystemRoot stands for, e.g. "C:\Windows" */
    ntpath_string computer_name;    /* this machine's name: \\NAME\C$ is drive C */
    /* Case folding: 65536 entries mapping each code unit to its upper case
     * (the volume's $UpCase, or a table built from RtlUpcaseUnicodeChar).
     * NULL = the built-in folding: ASCII, Latin-1, Latin Extended-A, Greek and
     * Cyrillic, as NTFS folds them (so µ, ı, ſ and final ς are left alone).
     * The runtime should pass the system's table so that names Wine or NTFS
     * consider equal are equal here too. */
    const uint16_t *upcase_table;
} ntpath_context;

/* A canonical path. It is large (about 65 KB): keep it in static or heap
 * storage in the runtime, whose threads have small stacks and no stack
 * probes. Offsets index path[]. */
typedef struct ntpath {
    ntpath_kind kind;
    uint32_t flags;            /* NTPATH_FLAG_* */
    uint16_t drive;            /* 'A'..'Z' for DRIVE and VOLUME, otherwise 0 */
    size_t len;                /* units in path[], without the terminating NUL */
    size_t root_len;           /* path[0..root_len) is the root: "\??\C:", "\??\UNC\srv\share",
                                  "\Device\NamedPipe", "\??\NUL"; ".." never goes below it */
    size_t server_offset, server_len; /* UNC (and pipes/mailslots on a server): the server name */
    size_t share_offset, share_len;   /* and the share name */
    size_t name_offset;        /* start of the last name (== len for a root) */
    size_t short_name_end;     /* end of the last name that looks like an 8.3 alias, or 0 */
    size_t stream_len;         /* units in stream[] (0 = the default data stream) */
    const uint16_t *upcase_table; /* from the context, used by the comparisons */
    uint16_t stream[NTPATH_STREAM_MAX_UNITS + 1]; /* NUL-terminated stream name, without ':' */
    uint16_t path[NTPATH_MAX_UNITS + 1];          /* NUL-terminated canonical NT path */
} ntpath;

/* Canonicalizes any NT or Win32 spelling of a path (see the top of this
 * file). On failure out->kind is NTPATH_KIND_NONE and err names the offset
 * and the component. Errors: FVM_E_INVALID (malformed: empty, embedded NUL,
 * invalid character, bad stream syntax, relative path without a current
 * directory), FVM_E_RANGE (longer than NTPATH_MAX_UNITS), FVM_E_NOTFOUND (a
 * storage device the context does not map), FVM_E_UNSUPPORTED (a stream
 * type other than $DATA/$INDEX_ALLOCATION). */
fvm_status ntpath_normalize(const uint16_t *path, size_t len, const ntpath_context *ctx,
                            ntpath *out, fvm_error *err);

/* Resolves a name relative to a directory handle (RootDirectory in
 * OBJECT_ATTRIBUTES); dir is the canonical path of that handle. As NT does:
 * an empty name is the directory itself, a name starting with a backslash is
 * FVM_E_INVALID (STATUS_INVALID_PARAMETER), a name starting with ':' is a
 * stream of dir. The name follows NT rules; below an object directory it is
 * resolved like the absolute name ("\??" + "C:\x" is the drive path C:\x).
 * ctx (may be NULL) supplies the volume table and upcase table for that.
 * out may be dir. */
fvm_status ntpath_join(const ntpath *dir, const uint16_t *rel, size_t len, const ntpath_context *ctx, ntpath *out,
                       fvm_error *err);

/* Replaces path[0..prefix_len) (a whole number of names, not less than the
 * root) with long_prefix, which the runtime got from the file system for that
 * prefix (any absolute form; usually the expansion of 8.3 aliases up to
 * short_name_end). The rest of the path and its stream are kept. out must
 * not be path. */
fvm_status ntpath_replace_prefix(const ntpath *path, size_t prefix_len, const uint16_t *long_prefix,
                                 size_t long_len, const ntpath_context *ctx, ntpath *out, fvm_error *err);

/* Where a host file lives in the box: box_root_nt is a canonical drive or UNC
 * folder ("\??\C:\FVM\boxes\b1", no trailing backslash). The result is
 * "<box_root>\drive\C\Dir\File" or "<box_root>\unc\server\share\Dir\File",
 * with ":stream" appended when host names one. out receives a NUL-terminated
 * string of *out_len units (cap counts the NUL). Only DRIVE and UNC paths
 * have a place in the box (others: FVM_E_UNSUPPORTED). */
fvm_status ntpath_to_box(const ntpath *host, const uint16_t *box_root_nt, size_t box_root_len,
                         uint16_t *out, size_t cap, size_t *out_len, fvm_error *err);

/* The reverse, for name queries that must report the host name: boxed is the
 * normalized name of a file in the box. FVM_E_NOTFOUND when boxed is not a
 * mapped path under box_root_nt. host must not be boxed. */
fvm_status ntpath_from_box(const ntpath *boxed, const uint16_t *box_root_nt, size_t box_root_len,
                           ntpath *host, fvm_error *err);

/* 1 when path is folder or inside it: same kind (DRIVE or UNC), the same
 * names case-insensitively, aligned on a component ("C:\a\bc" is not within
 * "C:\a\b"). A stream of a file is within the file's folder and within the
 * file itself. */
int ntpath_is_within(const ntpath *path, const ntpath *folder);

/* Case-insensitive order of two canonical paths: path, then stream. Paths of
 * different kinds never compare equal. Uses a's upcase table. */
int ntpath_compare(const ntpath *a, const ntpath *b);
int ntpath_equal(const ntpath *a, const ntpath *b);

/* A case-insensitive 64-bit hash (FNV-1a of the upper-cased path and stream),
 * equal for equal paths. */
uint64_t ntpath_hash(const ntpath *path);

/* The comparison key as a string: the upper-cased path, then ':' and the
 * upper-cased stream if any. Equal keys <=> ntpath_equal. FVM_E_RANGE when
 * cap (counting the NUL) is too small. */
fvm_status ntpath_key(const ntpath *path, uint16_t *out, size_t cap, size_t *out_len, fvm_error *err);

/* The case folding used by this module (table may be NULL: built-in). */
uint16_t ntpath_upcase(const uint16_t *table, uint16_t c);

const char *ntpath_kind_name(ntpath_kind kind);

#endif
