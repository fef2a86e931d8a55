/* floor_domain.h - a box's Landlock domain, built rule by rule.
 *
 * Two processes lay the same rules for a box: the box's first process
 * (runtime/floor.c, the floor of every boxed process) and, for a box with a
 * Wine server of its own (box.ini server=own), fvm run before it starts
 * that server (common/boxserver.c), so that the server, which opens, renames
 * and deletes files for the box's programs, is held by the same rules. Only
 * raw Linux system calls here (usable from fvm.dll, which links no C
 * runtime, and from a forked child of a Wine process); core/floor_rules.c
 * decides which directories get read rules.
 *
 * The box's rules: read everything except the FVM root (other boxes, FVM's
 * own storage), list every directory, read and write the box folder, write
 * the few devices Wine uses, execute only Wine's loader. */
#ifndef FVM_COMMON_FLOOR_DOMAIN_H
#define FVM_COMMON_FLOOR_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

/* Landlock's UAPI (linux/landlock.h), which mingw does not ship. */
#define LL_CREATE_RULESET_VERSION 1u
#define LL_RULE_PATH_BENEATH      1
#define LL_EXECUTE      (1ull << 0)
#define LL_WRITE_FILE   (1ull << 1)
#define LL_READ_FILE    (1ull << 2)
#define LL_READ_DIR     (1ull << 3)
#define LL_REMOVE_DIR   (1ull << 4)
#define LL_REMOVE_FILE  (1ull << 5)
#define LL_MAKE_CHAR    (1ull << 6)
#define LL_MAKE_DIR     (1ull << 7)
#define LL_MAKE_REG     (1ull << 8)
#define LL_MAKE_SOCK    (1ull << 9)
#define LL_MAKE_FIFO    (1ull << 10)
#define LL_MAKE_BLOCK   (1ull << 11)
#define LL_MAKE_SYM     (1ull << 12)
#define LL_REFER        (1ull << 13)   /* ABI 2 */
#define LL_TRUNCATE     (1ull << 14)   /* ABI 3 */
#define LL_IOCTL_DEV    (1ull << 15)   /* ABI 5 */
#define LL_NET_BIND_TCP    (1ull << 0)   /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0)   /* ABI 6 */
#define LL_SCOPE_SIGNAL        (1ull << 1)
/* Rights a rule on a non-directory may carry. */
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)
/* What a box may do in its own folder. */
#define LL_BOX_RIGHTS (LL_READ_FILE | LL_READ_DIR | LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_DIR | \
                       LL_MAKE_REG | LL_MAKE_SYM | LL_MAKE_FIFO | LL_MAKE_SOCK | LL_REFER | LL_TRUNCATE)

typedef struct floor_domain {
    int ruleset;        /* the ruleset's descriptor, -1 before begin and after restrict */
    int abi;            /* Landlock ABI of this kernel */
    uint64_t handled;   /* file-system rights the domain handles at this ABI */
    int rules;          /* rules added */
    char why[200];      /* what failed, when a call returns 0 */
} floor_domain;

/* The Landlock ABI, or a value < 1 when the kernel has none. */
int floor_domain_abi(void);

/* Creates the ruleset: every file-system right this ABI knows is handled;
 * net (LL_NET_*) and scoped (LL_SCOPE_*) are masked to what it knows. */
int floor_domain_begin(floor_domain *fd, uint64_t net, uint64_t scoped);

/* One path-beneath rule. A missing path is skipped (returns 1) unless it
 * is required; a non-directory keeps only the rights files can carry. */
int floor_domain_add(floor_domain *fd, const char *path, uint64_t access, int required);

/* One net-port rule (LL_NET_* rights on a TCP port, any address); the
 * domain must handle them (floor_domain_begin's net, ABI 4+). */
int floor_domain_add_port(floor_domain *fd, uint16_t port, uint64_t access);
/* The box's rules (above), box being the real Linux path of its folder. */
int floor_domain_box(floor_domain *fd, const char *box);

/* no_new_privs, then the calling thread enters the domain; the ruleset is
 * closed either way. */
int floor_domain_restrict(floor_domain *fd);

/* The floor's seccomp filter (core/floor_rules.c) on the calling process
 * (after no_new_privs): 0 or a negative errno. */
int floor_domain_seccomp(void);

/* The filter that refuses IPv4 and IPv6 datagram sockets (core/floor_rules.h,
 * floor_seccomp_no_inet_datagrams), stacked on the calling process: for a
 * box's Wine server when its policy lets no program use UDP. 0 or a
 * negative errno. */
int floor_domain_seccomp_no_datagrams(void);

/* The filter that sends the calling process's connect() calls to a
 * supervisor (floor_seccomp_notify_connect, core/floor_supervise.h), for a
 * box's Wine server whose policy denies addresses to every program. For a
 * single-threaded caller with no_new_privs set; returns the listener's
 * descriptor, or minus errno. */
int64_t floor_domain_seccomp_notify_connects(void);

/* Closes the ruleset without entering it. */
void floor_domain_drop(floor_domain *fd);

/* Resolves symbolic links in place (through /proc/self/fd): Landlock rules
 * follow the real directories. */
int floor_domain_real_path(char *path, size_t cap);

#endif
