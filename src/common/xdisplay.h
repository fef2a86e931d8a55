/* xdisplay.h - a box's own X display: starting its Xvfb with raw Linux
 * calls.
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

/* SIGTERM, then SIGKILL after 2 s, and reaps it. */
void xdisplay_stop(int64_t pid);

#endif
