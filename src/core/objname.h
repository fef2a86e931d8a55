/* objname.h - the rules for names in the object manager's namespace (named
 * objects, pipes, registry keys), written once for the runtime and the policy.
 *
 * Two jobs, both about deciding a name before anything acts on it:
 *
 * 1. Which names can be decided at all (issue 19). A virtualizer decides a
 *    name and passes the decided name to the real call; a name it cannot
 *    read the way the system would must be refused, never handed to the host
 *    as the program spelled it. objname_check names the problem with a name:
 *    an odd byte length (the system refuses it: STATUS_OBJECT_NAME_INVALID),
 *    an embedded NUL (legal for the system, refused in a box: a name C
 *    strings cannot carry is a hiding place, and decisions, audit records and
 *    `fvm diff` all work on text), an empty component ("a\\b", a leading
 *    "\\"), a trailing separator, or a relative name where an absolute one is
 *    needed. The registry reads runs of separators as one and ignores a
 *    trailing one (Wine and Windows both do): objname_collapse turns such a
 *    key name into the one name the host would use, so it can be decided.
 *
 * 2. The Global, Local and Session links of the BaseNamedObjects directories
 *    (issue 15: they were written twice). objname_resolve_links resolves them
 *    in an absolute NT name, as the object manager would; objname_win32_root
 *    reads the Win32 prefixes "Global\", "Local\" and "Session\N\" of a
 *    name as CreateMutex takes it (used by the policy, whose object patterns
 *    are written so).
 *
 * Portable C11, no allocation: UTF-16 code units with explicit lengths. */
#ifndef FVM_CORE_OBJNAME_H
#define FVM_CORE_OBJNAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum objname_problem {
    OBJNAME_OK = 0,
    OBJNAME_ODD_LENGTH,          /* a byte length that is not a whole number of units */
    OBJNAME_EMBEDDED_NUL,        /* a NUL unit inside the counted name */
    OBJNAME_EMPTY_COMPONENT,     /* "a\\b" or a leading "\\" */
    OBJNAME_TRAILING_SEPARATOR,  /* "a\" */
    OBJNAME_NOT_ABSOLUTE,        /* does not start with '\' (where that is required) */
    OBJNAME_TOO_LONG,            /* longer than the caller's limit */
    OBJNAME_ROOTED_RELATIVE,     /* a name starting with '\' given with a root handle */
    OBJNAME_OUTSIDE_NAMESPACE    /* a key name not under \REGISTRY */
} objname_problem;

/* Rules for objname_check (bit set). */
enum {
    OBJNAME_ABSOLUTE = 1u << 0,        /* the name must start with '\' */
    OBJNAME_COLLAPSES = 1u << 1,       /* runs of separators and a trailing one are allowed (registry) */
    OBJNAME_ALLOW_EMPTY = 1u << 2      /* an empty name is allowed (relative: the root itself) */
};

/* The first problem of a counted name of `bytes` bytes (units = bytes / 2),
 * under `rules`; max_units limits the length (0: no limit). *at (may be
 * NULL) receives the unit offset of the problem. A NULL s with bytes > 0 is
 * OBJNAME_EMBEDDED_NUL at 0 (nothing readable). */
objname_problem objname_check(const uint16_t *s, size_t bytes, unsigned rules, size_t max_units, size_t *at);

/* A short English phrase for a problem ("an embedded NUL"). */
const char *objname_problem_text(objname_problem problem);

/* Collapses runs of backslashes to one and drops trailing ones, in place;
 * a leading single backslash is kept. Returns the new length. */
size_t objname_collapse(uint16_t *s, size_t len);

/* Which namespace a name is read in by objname_join. */
typedef enum objname_space {
    OBJNAME_SPACE_KEY,     /* the registry: runs of separators are one, trailing ones dropped; under \REGISTRY */
    OBJNAME_SPACE_OBJECT   /* named objects: every component non-empty; links resolved */
} objname_space;

/* The full name a call designates, decided or refused in one place: root
 * (root_len units; the name of the call's RootDirectory, NULL for none)
 * joined with the program's counted name rel of rel_bytes bytes, read as
 * the namespace reads it, into out (cap units, no NUL written). On
 * OBJNAME_OK *out_len is set and the name is absolute, has no empty
 * component, no trailing separator and no NUL (and, for keys, starts with
 * "\REGISTRY\"; for objects, its links are resolved). Any other result
 * means the call must be refused. */
objname_problem objname_join(objname_space space, const uint16_t *root, size_t root_len, const uint16_t *rel,
                             size_t rel_bytes, uint16_t *out, size_t cap, size_t *out_len);

/* Resolves the Global, Local and Session links of the BaseNamedObjects
 * directories in the absolute name n (len units, room for cap), in place:
 *   \Sessions\N\BaseNamedObjects\Global\X   -> \BaseNamedObjects\X
 *   \Sessions\N\BaseNamedObjects\Local\X    -> \Sessions\N\BaseNamedObjects\X
 *   \Sessions\N\BaseNamedObjects\Session\M\X-> \Sessions\M\BaseNamedObjects\X
 *   \BaseNamedObjects\Global\X, \BaseNamedObjects\Local\X -> \BaseNamedObjects\X
 *   \BaseNamedObjects\Session\M\X           -> \Sessions\M\BaseNamedObjects\X
 * (link names case-insensitive, repeated as often as they occur). Returns 0
 * when the result would not fit in cap or the links nest too deep (16). */
int objname_resolve_links(uint16_t *n, size_t *len, size_t cap);

/* Is n (len units) one of the BaseNamedObjects directories or inside one
 * (\BaseNamedObjects..., \Sessions\N\BaseNamedObjects...)? */
int objname_in_named_objects(const uint16_t *n, size_t len);

/* The Win32 prefix of an object name as CreateMutex takes it. */
typedef enum objname_scope {
    OBJNAME_SCOPE_SESSION = 0,  /* no prefix, or "Local\": the caller's session */
    OBJNAME_SCOPE_GLOBAL,       /* "Global\": \BaseNamedObjects */
    OBJNAME_SCOPE_NUMBERED      /* "Session\N\": \Sessions\N\BaseNamedObjects */
} objname_scope;

typedef struct objname_root {
    objname_scope scope;
    uint32_t session;       /* NUMBERED: N */
    size_t rest;            /* offset of the name after the prefix (and its '\') */
} objname_root;

/* Reads the prefix of a Win32 object name. Returns 0 for "Session\" not
 * followed by a number (at most 9 digits) and a '\' or the end. */
int objname_win32_root(const uint16_t *in, size_t n, objname_root *out);

#endif
