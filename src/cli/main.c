/* main.c - fvm.exe: parses the verb and hands over to its file, through
 * one table of verbs (name, function, help text).
 *
 * Arguments are taken from the raw UTF-16 command line (core/cmdline.c) so
 * that `fvm run` can pass the program's part of the line through untouched. */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

#include "core/cmdline.h"

static int verb_run(int argc, char **argv)
{
    return cmd_run(argc, argv, GetCommandLineW());
}

/* The verbs: what `fvm help` shows (help NULL: hidden, for tests and
 * doctor) and the function that does it. */
typedef struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} verb;

static const verb g_verbs[] = {
    {"create", cmd_create,
     "  create NAME [--policy FILE] [--quota SIZE] [--procs N] [--confidential]\n"
     "                                create a box (quota: bytes its changes may take, e.g. 500M;\n"
     "                                procs: processes at once; confidential: programs outside\n"
     "                                the box cannot read its processes)\n"
     "         [--cpu 25%] [--memory 512M] [--process-memory 256M] [--io-bandwidth 20MB/s] [--io-ops 500]\n"
     "                                resource limits the broker enforces (fvm set changes them)\n"
     "         [--net isolated|shared] [--publish HOSTPORT:BOXPORT[/udp]]\n"
     "                                loopback ports of its own (isolated, the default) or the host's;\n"
     "                                a box port host clients reach on HOSTPORT (repeatable)\n"
     "         [--own-display]        a headless X display of its own (an Xvfb): its windows are seen\n"
     "                                by nobody, and it reaches no other display\n"
     "         [--host-display]       the user's X display, shared: weaker (a program that speaks X11\n"
     "                                itself reads the user's screen, clipboard and keys there); by\n"
     "                                default a box on its own server sees a nested display of its own,\n"
     "                                shown as one window on the user's (Xephyr), and no other\n"
     "         [--own-server]         a Wine server of its own (the default under Wine), inside the box's\n"
     "                                kernel floor: what the server does for a program (files, registry,\n"
     "                                processes) is held too; host programs and objects are out of reach\n"
     "         [--host-server]        the host's Wine server: weaker (what its server does for a program\n"
     "                                that steps around the hooks is not held), for what needs it:\n"
     "                                open rules for keys, objects, windows, clipboard (docs/design.md)\n"},
    {"set", cmd_set,
     "  set NAME [KEY=VALUE...]       change a box's limits (cpu, memory, process-memory, io-bandwidth,\n"
     "                                io-ops, procs; none clears one), running or not; alone: show them\n"},
    {"stats", cmd_stats,
     "  stats [NAME] [--json] [--follow]\n"
     "                                live use of running boxes: CPU %, memory, processes, delta size,\n"
     "                                I/O rate (boxes with an I/O limit), each against its limit\n"
     "                                (--follow: refresh every second)\n"},
    {"net", cmd_net,
     "  net NAME [--net isolated|shared] [--publish HOSTPORT:BOXPORT[/udp],...|none]\n"
     "                                the box's network: mode, published ports, bound ports (box port\n"
     "                                -> real port) and [net] rules; the options change the settings\n"},
    {"list", cmd_list, "  list                          list boxes with state and delta size\n"},
    {"rm", cmd_rm,
     "  rm NAME [--force]             remove a box and its delta, registry included (--force stops it first)\n"},
    {"run", verb_run,
     "  run [--box NAME] [--no-floor] [--] PROGRAM [ARGS...]\n"
     "                                run a program in a box (default box: default,\n"
     "                                created on first use); exits with its exit code\n"},
    {"ps", cmd_ps, "  ps [NAME]                     processes of one box or of all boxes, as a tree\n"},
    {"stop", cmd_stop, "  stop NAME                     end every process of a box\n"},
    {"diff", cmd_diff,
     "  diff NAME [--base]            the box's changes: A added, C changed, D deleted;\n"
     "                                files, then registry keys (KEY\\) and values (KEY\\ value \"N\")\n"
     "                                (--base: the host version each file change started from)\n"},
    {"discard", cmd_discard,
     "  discard NAME [--force]        throw the box's changes (files, registry) away (the box stays)\n"},
    {"commit", cmd_commit,
     "  commit NAME [PATHS...] [--dry-run] [--ours|--theirs|--keep-both]\n"
     "                                apply the box's changes that its [sync] rules allow to the host\n"},
    {"rebase", cmd_rebase,
     "  rebase NAME [--dry-run]       host updates into the box's copies: unchanged copies follow the\n"
     "                                host again, changed text files and registry values are merged\n"
     "                                three-way\n"},
    {"export", cmd_export,
     "  export NAME FILE [--since PACKAGE]\n"
     "                                the box's changes as one package (changed large files as deltas)\n"},
    {"import", cmd_import, "  import FILE [NAME]            recreate a box from a package (needs the same host base)\n"},
    {"check", cmd_check, "  check NAME                    verify the box index's integrity\n"},
    {"policy", cmd_policy,
     "  policy check FILE             check a policy: every problem as file:line:column\n"
     "  policy explain NAME PATH [--program X] [--type file|key|object]\n"
     "                                which rule of the box's policy decides for PATH, and why\n"},
    {"logs", cmd_logs,
     "  logs NAME [--follow] [--type TYPE] [--verify]\n"
     "                                the box's audit log; --verify checks its hash chain\n"},
    {"doctor", cmd_doctor, "  doctor                        what this platform enforces, probed now\n"},
    {"__audit-append", cmd_audit_append, NULL},
    {"__stats-json", cmd_stats_json, NULL},   /* the broker's stats, asked from outside its own server */
    {"__box-relay", cmd_box_relay, NULL},   /* a box's own server's way to the provider and to names (relay.c) */
};

static void usage(FILE *to)
{
    fputs("usage: fvm <command> [options]\n\n", to);
    for (size_t i = 0; i < sizeof g_verbs / sizeof g_verbs[0]; i++)
        if (g_verbs[i].help)
            fputs(g_verbs[i].help, to);
    fputs("\nBoxes live in %FVM_ROOT%\\boxes (default C:\\FVM\\boxes).\n", to);
}

int wmain(void)
{
    const uint16_t *line = (const uint16_t *)GetCommandLineW();
    size_t pos = 0;
    cmdline_token tok;
    static char storage[64][1024];
    char *argv[65];
    int argc = 0;

    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    if (cmdline_next_program(line, &pos, &tok, NULL, 0)) {
        uint16_t value[1024];
        while (argc < 64 && cmdline_next(line, &pos, &tok, value, 1024)) {
            cli_utf8((const wchar_t *)value, storage[argc], sizeof storage[argc]);
            argv[argc] = storage[argc];
            argc++;
        }
    }
    argv[argc] = NULL;
    if (argc == 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *verb = argv[0];
    if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(verb, "__start"))
        return cmd_start_in_box(GetCommandLineW());
    if (!strcmp(verb, "__reap"))
        return cmd_reap(argc, argv);   /* frees what a commit set aside (cli/reap.c) */
    for (size_t i = 0; i < sizeof g_verbs / sizeof g_verbs[0]; i++)
        if (!strcmp(verb, g_verbs[i].name))
            return g_verbs[i].run(argc, argv);
    if (!strncmp(verb, "__", 2))
        return cmd_internal(argc, argv);
    fprintf(stderr, "fvm: unknown command '%s'\n", verb);
    usage(stderr);
    return EXIT_USAGE;
}
