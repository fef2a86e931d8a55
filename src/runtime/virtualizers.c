/* virtualizers.c - every virtualizer of fvm.dll, in start order.
 *
 * dllmain.c starts them in this order, adds their hooks to the start-up
 * batch in this order, and the handle registry asks them for the program's
 * name of an object in this order. A new virtualizer is one file with its
 * descriptor (docs/adding-a-virtualizer.md) and one line here. */
#include "runtime/runtime.h"

#define EACH_VIRTUALIZER(X)                                                          \
    X(process_virtualizer)   /* proc.c: processes are born boxed */                  \
    X(processes_virtualizer) /* process.c: other processes, only inside the box */   \
    X(key_virtualizer)       /* key.c, key_tree.c, key_read.c: the registry */       \
    X(file_virtualizer)      /* file*.c: files and folders */                        \
    X(object_virtualizer)    /* ipc.c, pipe.c: named objects, pipes and mailslots */ \
    X(window_virtualizer)    /* gui.c: window classes, windows, atoms */             \
    X(desktop_virtualizer)   /* desktop.c: other programs' windows, input, clipboard */ \
    X(service_virtualizer)   /* scm.c: services, the box's own manager */           \
    X(net_virtualizer)       /* net.c: sockets, by the [net] rules */               \
    X(memquota_virtualizer)  /* memquota.c: commits asked of the broker (memory limit) */ \
    X(ioquota_virtualizer)   /* ioquota.c: file reads and writes held to the I/O limits */ \
    X(print_virtualizer)     /* print.c: print jobs, by the [print] rules */         \
    X(screen_virtualizer)    /* screen.c: capture of pixels outside the box ([screen]) */ \
    X(clipboard_virtualizer) /* clipboard.c: the box's own clipboard ([desktop]) */ \
    X(title_virtualizer)     /* title.c: [#box] in title bars (show_box_in_title) */ \
    /* a new virtualizer: one line above this one */

#define DECLARE(v) extern const fvm_virtualizer v;
EACH_VIRTUALIZER(DECLARE)

#define ADDRESS(v) &v,
const fvm_virtualizer *const g_virtualizers[] = {EACH_VIRTUALIZER(ADDRESS)};
const size_t g_virtualizer_count = sizeof g_virtualizers / sizeof g_virtualizers[0];
