/* ownserver.h - what cli/ownserver.c (a box's own Wine server: its init
 * and runners) shares with cli/ownserver_display.c (the display the init
 * gives the box). Private to those two files. */
#ifndef FVM_CLI_OWNSERVER_H
#define FVM_CLI_OWNSERVER_H

#include "cli/cli.h"
#include "common/floor_domain.h"
#include "common/xdisplay.h"
#include "core/policy.h"
#include "core/policy_net.h"

typedef struct server_plan {
    char dir[FVM_PATH_MAX * 3];          /* <root>/servers/<hash>, real Linux path */
    char lock_path[FVM_PATH_MAX * 3];    /* <dir>.lock */
    char mount_point[FVM_PATH_MAX * 3];  /* where Wine looks for the prefix's server */
    char wineserver[FVM_PATH_MAX * 3];
    int display;                         /* the box's own display (Xvfb or nested), -1 for none */
    /* A nested display (box.ini display=nested, ownserver_display.c): the
     * caller's DISPLAY it is shown on ("" for none: the box then sees no
     * display at all), what Xephyr needs to open it, its window's title. */
    BOOL nested;
    int nested_from;                     /* the number to look for a free one from */
    int64_t nested_pid, nested_life;     /* its Xephyr's guard, a child of the init (0: none), and the
                                          * pipe whose end ends it (xdisplay.h) */
    char host_display[256], xauthority[FVM_PATH_MAX * 3], home[FVM_PATH_MAX * 3], title[160];
    BOOL offline;                        /* a network namespace of its own, empty (box_offline) */
    BOOL no_datagrams;                   /* the server refused UDP sockets (box_udp_closed) */
    /* The server's connect() calls decided one by one, by address, by its
     * parent (supervise_connects): the policy's [net] rules for every
     * program, and an isolated box's ephemeral ports, which stay open. */
    BOOL check_connects;
    const net_policy_rule *connect_rules;
    size_t connect_count;
    uint32_t open_lo, open_hi;
    char root[FVM_PATH_MAX * 3];         /* the FVM root, hidden but for the box's own paths; "" not */
    char box_unix[FVM_PATH_MAX * 3];     /* the box folder, real Linux path */
    char hidden[16][FVM_PATH_MAX];       /* folders the policy hides whole (policy_hidden_folders) */
    int hidden_count;
    BOOL floor;                          /* enter the box's domain (not with --no-floor) */
    floor_domain domain;
    int64_t log_fd;
    int32_t ready[2];                    /* init -> caller: listening (or, closed without a byte, failed) */
    int64_t linger_ms;                   /* an idle server's time to live */
    /* The host registry as the host's server has it now, saved for the
     * box's server to load in place of the prefix's files, and those files. */
    char hive_copy[3][FVM_PATH_MAX * 3], hive_file[3][FVM_PATH_MAX * 3];
    int hives;
} server_plan;

/* The nested display's screen (xdisplay.c passes the same to Xephyr), and
 * the box's virtual desktop on it (ownserver.c). */
#define NESTED_SCREEN XDISPLAY_NESTED_SCREEN
/* What a nested box's copy of HKCU gets appended (ownserver_registry.c,
 * nest_desktop): Wine's virtual desktop of the nested screen. Never the
 * host's: a copy given to the prefix (ownserver.c) is cut before it. */
#define OWN_NESTED_DESKTOP_SECTIONS                                                                                   \
    "\n[Software\\\\Wine\\\\Explorer]\n\"Desktop\"=\"Default\"\n"                                                   \
    "\n[Software\\\\Wine\\\\Explorer\\\\Desktops]\n\"Default\"=\"" NESTED_SCREEN "\"\n"

/* The host registry the box's server loads (ownserver_registry.c): the
 * three hives, each saved as <dir>.<stage><file> (i == OWN_HIVES: the
 * stamp); own_save_host_registry saves them as "next."; own_read_whole reads
 * a small file (up to 64 MiB) onto the heap (NULL if absent; HeapFree it);
 * own_same_file: the same bytes, or both absent. */
#define OWN_HIVES 3
const char *own_hive_file(int i);
BOOL own_hive_copy_path(const box *b, const char *stage, int i, wchar_t *out);
void own_save_host_registry(const box *b);
char *own_read_whole(const wchar_t *path, DWORD *len);
BOOL own_same_file(const wchar_t *a, const wchar_t *b);

/* Writes "fvm: the box's own Wine server: " a b to fd, with raw calls. */
void own_server_say(int fd, const char *a, const char *b);

/* The caller's part: what display the box gets (box.ini, the caller's
 * DISPLAY), into p. */
void own_display_plan(const box *b, server_plan *p);

/* The init's part, before it enters the box's namespace: a nested
 * display's Xephyr, on the user's display. 0, or an exit code after saying
 * why. */
int own_display_start_outside(server_plan *p);

/* The init's part, in the box's namespace and before its domain: the box's
 * /tmp/.X11-unix holds its own display's socket only (an Xvfb started
 * there, or the nested display's), or nothing. 0, or an exit code. */
int own_display_start_inside(server_plan *p);

/* The init's end when it ends itself: a nested display's Xephyr, which is
 * outside the namespace that ends with the init, ends now (its guard would
 * end it anyway once the init is gone, by any end: xdisplay.h). */
void own_display_end(server_plan *p);

/* The runner's part: DISPLAY in a run's environment (envp, room for max
 * entries and the NULL) names the box's display, or is taken out when the
 * box has none. */
void own_display_set_env(const server_plan *p, char **envp, size_t max);

/* The box's policy, loaded once per fvm process: the stamp (twice), the
 * init's domain and the relay's start all ask it. NULL when it does not
 * load (the run's own load says what is wrong with it); the hash of its
 * compiled form (includes too) is 0 then, and so is has_view. */
typedef struct {
    BOOL loaded;
    wchar_t owner[FVM_PATH_MAX];   /* the box's path */
    policy *pol;
    void *blob;                    /* compiled */
    size_t blob_len;
    policy_view view;
    BOOL has_view;
    uint64_t hash;
    net_policy_rule *net_rules;    /* every [net] rule, whatever its scope */
    size_t net_count;
    BOOL isolated, published;      /* box.ini: net = isolated; publish = something */
} loaded_policy;
const loaded_policy *own_box_policy(const box *b);

/* ---- ownserver_net.c: the server's network below the hooks ---------------- */

/* The TCP ports the kernel refuses the box's server to connect to (the
 * policy's denies for every program and host; Landlock's rules name ports
 * only), an isolated box's ephemeral range left open: bit p of denied;
 * returns how many. */
size_t own_tcp_connect_denied(const box *b, uint8_t denied[8192]);
/* Whether the box's server runs in an empty network namespace of its own
 * (the policy lets nothing leave and nothing in). */
BOOL own_box_offline(const box *b);
/* Whether the box's server is refused IPv4 and IPv6 datagram sockets (no
 * program may use UDP). */
BOOL own_box_udp_closed(const box *b);
/* Whether the box's server's connect() calls are decided by address. */
BOOL own_box_connects_checked(const box *b);
/* The caller's part: the network fields of the plan (no_datagrams,
 * check_connects and what the supervisor decides from). */
void own_plan_network(const box *b, server_plan *p);
/* In the server's child before its exec, when p->check_connects: the
 * filter that hands its connect() calls to this process, which forks the
 * server, answers its calls until it ends, and exits with its status; the
 * child returns. */
void own_supervise_connects(server_plan *p);

#endif
