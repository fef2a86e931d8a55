/* main.c - fvm.exe: parses the verb and hands over to its file.
 *
 * Arguments are taken from the raw UTF-16 command line (core/cmdline.c) so
 * that `fvm run` can pass the program's part of the line through untouched. */
#include "cli/cli.h"

#include <stdarg.h>
#include <string.h>

#include "core/cmdline.h"

static void usage(FILE *to)
{
    fputs("usage: fvm <command> [options]\n"
          "\n"
          "  create NAME [--policy FILE] [--quota SIZE]\n"
          "                                create a box (quota: bytes its changes may take, e.g. 500M)\n"
          "  list                          list boxes with state and delta size\n"
          "  rm NAME [--force]             remove a box and its delta, registry included (--force stops it first)\n"
          "  run [--box NAME] [--] PROGRAM [ARGS...]\n"
          "                                run a program in a box (default box: default,\n"
          "                                created on first use); exits with its exit code\n"
          "  ps [NAME]                     list processes of one box or of all boxes\n"
          "  stop NAME                     end every process of a box\n"
          "  diff NAME [--base]            the box's changes: A added, C changed, D deleted;\n"
          "                                files, then registry keys (KEY\\) and values (KEY\\ value \"N\")\n"
          "                                (--base: the host version each file change started from)\n"
          "  discard NAME [--force]        throw the box's changes (files, registry) away (the box stays)\n"
          "  check NAME                    verify the box index's integrity\n"
          "  policy check FILE             check a policy: every problem as file:line:column\n"
          "  policy explain NAME PATH [--program X] [--type file|key|object]\n"
          "                                which rule of the box's policy decides for PATH, and why\n"
          "  logs NAME [--follow] [--type TYPE] [--verify]\n"
          "                                the box's audit log; --verify checks its hash chain\n"
          "  doctor                        what this platform enforces, probed now\n"
          "\n"
          "Boxes live in %FVM_ROOT%\\boxes (default C:\\FVM\\boxes).\n", to);
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
    if (!strcmp(verb, "create"))
        return cmd_create(argc, argv);
    if (!strcmp(verb, "list"))
        return cmd_list(argc, argv);
    if (!strcmp(verb, "rm"))
        return cmd_rm(argc, argv);
    if (!strcmp(verb, "run"))
        return cmd_run(argc, argv, GetCommandLineW());
    if (!strcmp(verb, "ps"))
        return cmd_ps(argc, argv);
    if (!strcmp(verb, "stop"))
        return cmd_stop(argc, argv);
    if (!strcmp(verb, "diff"))
        return cmd_diff(argc, argv);
    if (!strcmp(verb, "discard"))
        return cmd_discard(argc, argv);
    if (!strcmp(verb, "check"))
        return cmd_check(argc, argv);
    if (!strcmp(verb, "doctor"))
        return cmd_doctor(argc, argv);
    if (!strcmp(verb, "policy"))
        return cmd_policy(argc, argv);
    if (!strcmp(verb, "logs"))
        return cmd_logs(argc, argv);
    if (!strcmp(verb, "__start"))
        return cmd_start_in_box(GetCommandLineW());
    if (!strcmp(verb, "__audit-append"))
        return cmd_audit_append(argc, argv);
    if (!strncmp(verb, "__", 2))
        return cmd_internal(argc, argv);
    fprintf(stderr, "fvm: unknown command '%s'\n", verb);
    usage(stderr);
    return EXIT_USAGE;
}
