/* floor_namespace.h - a box's user and mount namespace: what the floor
 * hides from a box by mounting (Landlock ABI 7 has no rule for connect()
 * to a pathname unix socket, so the host's Wine servers and X displays are
 * taken out of sight instead).
 *
 * Used by the box's first process (runtime/floor_ns.c) and, for a box with
 * a Wine server of its own, by fvm run's Linux child before it starts that
 * server (cli/ownserver.c), which also binds the box's server directory
 * where Wine looks for the prefix's server. Raw Linux calls only: both
 * callers may be a fork of a multi-threaded Wine process. Mounting must
 * come before Landlock (a Landlock domain may not mount). */
#ifndef FVM_COMMON_FLOOR_NAMESPACE_H
#define FVM_COMMON_FLOOR_NAMESPACE_H

enum {
    FLOOR_NS_NONE = 0,          /* not tried (inherited, or no floor) */
    FLOOR_NS_APPLIED = 1,       /* entered; servers hidden */
    FLOOR_NS_UNAVAILABLE = 2,   /* the kernel refused a user namespace: the rest of the floor stands */
    FLOOR_NS_UNMAPPED = 3,      /* entered, but our uid/gid could not be mapped: the process must not run */
    FLOOR_NS_SERVER = 4,        /* a box with its own Wine server: fvm run made the namespace, before the
                                   server's domain (in which a process may no longer map ids or mount) */
};

/* Enters a new user and mount namespace, the caller's uid and gid mapped to
 * themselves, mounts made private; with new_network, a network namespace of
 * its own too, with no network (*network_cut, may be NULL, says whether it
 * was made; a kernel that refuses it leaves the caller in its network).
 * FLOOR_NS_APPLIED, _UNAVAILABLE or _UNMAPPED. */
int floor_namespace_enter(int new_network, int *network_cut);

/* Every Wine server directory in /tmp (`wine-XXXXXX` in Debian's build,
 * `.wine-UID` upstream) under an empty, inaccessible tmpfs. */
void floor_namespace_hide_servers(void);

/* /tmp/.X11-unix with only display N's socket (a tmpfs, the socket bound
 * back through an O_PATH descriptor). 0 or a negative errno. */
int floor_namespace_keep_display(int number);

/* An empty /tmp/.X11-unix of the namespace's own (a tmpfs): the displays
 * of the host are out of sight, and a display started in the namespace
 * (a box's own, cli/ownserver.c) is seen by nobody outside. 0 or a
 * negative errno. */
int floor_namespace_private_displays(void);

/* The FVM root (every box, fvm's own storage) under an empty tmpfs, but the
 * paths in keep (beneath root: the box's folder; for a box with its own
 * server, its server directory and lock file), each bound back in its
 * place. Landlock lets every directory be listed (Wine's case-insensitive
 * lookups read directories), so without this another box's names and
 * file names could be listed by raw calls. At most 8 paths. 0 or a
 * negative errno (a failure may leave the root hidden). */
int floor_namespace_hide_root(const char *root, const char *const *keep, const int *keep_is_dir, int count);

/* An empty, inaccessible tmpfs over a folder the box's policy hides or
 * denies whole to every program (core policy_hidden_folders): raw calls
 * cannot reach what is in it, and neither can Wine's server on a program's
 * behalf, since a program's ntdll resolves a name in its own namespace
 * before the server is asked. 0 or a negative errno. */
int floor_namespace_hide_folder(const char *path);

/* Binds directory source over target (created 0700 if missing). 0 or a
 * negative errno. */
int floor_namespace_bind_dir(const char *source, const char *target);

/* Binds file source over file target. 0 or a negative errno. */
int floor_namespace_bind_file(const char *source, const char *target);

#endif
