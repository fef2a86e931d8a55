/* xdisplay.h - a box's own X display: starting its Xvfb, or its nested
 * Xephyr, with raw Linux calls.
 *
 * Two places start one: the broker of a box on the host's Wine server
 * (broker/display.c), and the init of a box with a Wine server of its own
 * (cli/ownserver.c), which starts it inside the box's mount namespace,
 * before it enters the box's Landlock domain (Xvfb must be executed, and
 * its keymap compiler writes to /tmp). Both may be a fork of a
 * multi-threaded Wine process, so the child runs raw calls only. */
#ifndef FVM_COMMON_XDISPLAY_H
#define FVM_COMMON_XDISPLAY_H

#include <stddef.h>
#include <stdint.h>

/* "/tmp/.X11-unix/XN". */
void xdisplay_socket_path(int number, char *out, size_t cap);

/* Forks Xvfb :N listening on its pathname socket only (no abstract socket,
 * no TCP), in its own session, standard streams on /dev/null, SIGTERM when
 * the calling thread dies. Its pid, or a negative errno. */
int64_t xdisplay_spawn(int number);

/* Waits up to timeout_ms for display N's socket to appear: 1 when it is
 * there, 0 when Xvfb exited first (not installed, the number taken) or the
 * time ran out. */
int xdisplay_wait_ready(int64_t pid, int number, int timeout_ms);

/* A box's nested display: Xephyr, an X server for the box shown as one
 * window on the user's display. It is a client of the user's display (the
 * only one of the box's, and not in the box's domain or namespace: started
 * before the init enters them), and the server of the box's programs,
 * which see no other display. host_display, xauthority and home are the
 * caller's DISPLAY, XAUTHORITY and HOME (XAUTHORITY and HOME may be NULL),
 * what Xephyr needs to open the user's display; title names its window.
 * Xephyr takes display `number` (failing when another server holds it)
 * and listens on its pathname socket only. Its guard (a process between the caller and
 * Xephyr) ends it when *life_fd, the caller's end of a pipe, closes: at
 * xdisplay_end_nested, or with the caller. The guard's pid, or a negative
 * errno; *ready_fd is the pipe that says the number when it is ready. */
int64_t xdisplay_spawn_nested(int number, const char *host_display, const char *xauthority, const char *home,
                              const char *title, int64_t *ready_fd, int64_t *life_fd);

/* The numbers a box's display takes (own or nested), and the first free
 * one from `from` on (wrapping): no socket and no lock file. -1: none. */
#define XDISPLAY_NESTED_SCREEN "1280x800"
#define XDISPLAY_FIRST 100
#define XDISPLAY_LAST 999
int xdisplay_free_number(int from);

/* Ends a nested display (closes life_fd) and waits up to 3 s for it. */
void xdisplay_end_nested(int64_t guard, int64_t life_fd);

/* Reads the nested display's number from ready_fd (closed after), waiting
 * up to timeout_ms: the number, -1 when Xephyr ended first (not installed,
 * the user's display refused it, the number taken) or said nonsense, -2
 * when the time ran out. */
int xdisplay_wait_nested(int64_t pid, int64_t ready_fd, int timeout_ms);

/* SIGTERM, then SIGKILL after 2 s, and reaps it. */
void xdisplay_stop(int64_t pid);

#endif
