/* boxserver.h - a box with a Wine server of its own (box.ini server=own).
 *
 * Wine's server opens, renames and deletes files, writes the registry and
 * reads and writes process memory for its clients, so a program that steps
 * around the hooks (its own system-call stubs) gets those done outside any
 * Landlock domain of its own process. Such a box's processes are clients of
 * a wineserver that fvm run starts inside the box's domain (cli/ownserver.c):
 * the kernel holds the server to the box's rules, and the server's process,
 * object, window and registry namespaces are the box's alone.
 *
 * The server's directory is <root>\servers\<hash> (hash: the box folder's
 * path, as for the box's named objects), bound in the box's mount namespace
 * where Wine looks for the prefix's server. While it runs, the server holds
 * a POSIX lock on <dir>/server-DEV-INO/lock (Wine's own single-instance
 * lock); that lock, read with F_GETLK (which takes nothing), is how fvm
 * outside the box's server tells that the box runs, and which process the
 * server is. Not for fvm.dll (it needs the C runtime). */
#ifndef FVM_COMMON_BOXSERVER_H
#define FVM_COMMON_BOXSERVER_H

#include <windows.h>

/* The Linux path of a Windows path, through Wine's own mapping
 * (wine_get_unix_file_name); FALSE off Wine or if it does not fit. */
BOOL boxserver_linux_path(const wchar_t *win, char *out, size_t cap);

/* The Linux pid of the box's running server, 0 when none runs (or not on
 * Linux, or when called from inside that server: FVM_OWN_SERVER=1). */
int boxserver_pid(const wchar_t *box_path);

/* A box's server may outlive the box's last process for a moment (it
 * lingers, cli/ownserver.c), so "the server runs" is not "the box runs".
 * The box runs while some process holds a shared lock on <dir>/busy: each
 * runner of the box's init while its command runs, and the box's broker
 * for its whole life (the kernel drops a dead holder's lock). */

/* Takes a shared lock on <dir>/busy (dir: the server directory's Linux
 * path) for the caller's life; its descriptor (close-on-exec), or -1. Raw
 * system calls only. The holder must not open and close that file again
 * (boxserver_busy_dir does): POSIX drops every lock a process holds on a
 * file when it closes any descriptor of it. */
int boxserver_hold_busy(const char *dir);

/* Whether anyone holds a lock on <dir>/busy. Raw system calls only. */
BOOL boxserver_busy_dir(const char *dir);

/* The init's lock on <dir>/init, for its life; whether anyone holds it.
 * Raw system calls only. */
int boxserver_hold_init(const char *dir);
BOOL boxserver_init_alive(const char *dir);

/* Whether the box with its own server runs (its server is up and busy);
 * FALSE off Linux or from inside that server (as boxserver_pid). */
BOOL boxserver_busy(const wchar_t *box_path);

/* The broker's claim, for its life, when it runs in its box's own server. */
void boxserver_broker_claim(const wchar_t *box_path);

/* The pid holding the lock of the server whose directory is dir (a Linux
 * path), 0 if none. Raw system calls only: fvm run's forked child uses it. */
int boxserver_holder(const char *dir);

/* Kills every process of the user namespace the server with this pid is
 * in (the box's init made that namespace for the box alone): the server,
 * the box's processes and Wine's own (services.exe, winedevice.exe, ...),
 * which a server's end alone leaves running (measured: they stayed, each
 * spinning on its lost connection). The caller, if in it, is spared. Raw
 * system calls only. How many it killed. */
int boxserver_end(int server_pid);

/* How many processes of the caller's user namespace (but the caller) have
 * name_part in their command line. Raw system calls only. */
int boxserver_namespace_runs(const char *name_part);

/* Ends the box's server and every process of the box (boxserver_end),
 * waiting up to wait_ms. TRUE when none runs afterwards. */
BOOL boxserver_kill(const wchar_t *box_path, DWORD wait_ms);

/* Deletes the box's server directory, log, lock and copies of the host
 * registry (the box is being removed and its server has ended); best
 * effort. */
void boxserver_remove_files(const wchar_t *box_path);

#endif
