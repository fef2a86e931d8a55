/* limits.c - the box resource limits on the command line (issue 12):
 * `fvm create NAME --cpu 25% --memory 512M --process-memory 256M
 * --io-bandwidth 20MB/s --io-ops 500` and `fvm set NAME key=value...`.
 *
 * Every value goes through the core's strict parser (core/limits.c) before
 * anything is written, so a bad value changes nothing. box.ini is the one
 * place the limits live; a running box's broker notices box.ini change and
 * applies the new limits within about a second (broker/limits.c). */
#include "cli/cli.h"

#include <string.h>

#include "common/boxlife.h"
#include "common/boxlimits.h"
#include "common/brokerproto.h"

/* The create option for a limit ("--cpu"), or NULL. */
static BOOL option_key(const char *opt, limit_key *key)
{
    if (strncmp(opt, "--", 2) != 0)
        return FALSE;
    if (!strcmp(opt + 2, "procs"))
        return FALSE;   /* fvm create's own --procs (cli/ps.c) */
    return limit_key_parse(opt + 2, strlen(opt + 2), key, NULL) == FVM_OK && strchr(opt + 2, '_') == NULL;
}

int limits_create_option(int argc, char **argv, int *i, box_limits *limits)
{
    limit_key key;
    if (!option_key(argv[*i], &key))
        return -1;
    if (*i + 1 >= argc)
        return cli_error("create: %s needs a value", argv[*i]), EXIT_USAGE;
    fvm_error err;
    const char *value = argv[++*i];
    if (!strcmp(value, "none") ||
        limit_value_parse(key, value, &limits->value[key], &err) != FVM_OK)
        return cli_error("create: %s", !strcmp(value, "none") ? "a new box has no limit to clear" : err.message),
               EXIT_USAGE;
    return 0;
}

static void print_limits(const box *b, const wchar_t *ini)
{
    box_limits limits;
    char problem[256] = "";
    if (!box_limits_read(ini, &limits, problem, sizeof problem))
        fprintf(stderr, "fvm: box '%s': box.ini: %s (ignored)\n", b->name, problem);
    for (int k = 0; k < LIMIT_KEY_COUNT; k++) {
        char text[32];
        limit_format((limit_key)k, limits.value[k], text, sizeof text);
        printf("%s=%s\n", limit_name((limit_key)k), text);
    }
}

int cmd_set(int argc, char **argv)
{
    static const char usage[] =
        "usage: fvm set NAME [cpu=25%] [memory=512M] [process-memory=256M] [io-bandwidth=20MB/s] [io-ops=500]\n"
        "                    [procs=20] [net=isolated|shared]\n"
        "                    (a value of none clears a limit; no assignment: show the settings;\n"
        "                    --io-bandwidth 20MB/s, as fvm create spells them, works too;\n"
        "                    net= only while the box is stopped: its port space is made when it starts)";
    if (argc < 2 || argv[1][0] == '-')
        return cli_error("%s", usage), EXIT_USAGE;
    box b;
    if (!box_init(&b, argv[1]))
        return EXIT_FAIL;
    if (!box_exists(&b))
        return cli_error("no box '%s'", b.name);
    wchar_t ini[FVM_PATH_MAX];
    _snwprintf(ini, FVM_PATH_MAX, L"%ls\\box.ini", b.path);
    if (argc == 2) {
        print_limits(&b, ini);
        wchar_t mode[32];
        GetPrivateProfileStringW(L"box", L"net", L"", mode, 32, ini);
        printf("net=%ls\n", mode[0] ? mode : L"shared");
        return 0;
    }
    /* All or nothing: every assignment is checked before one is written. */
    limit_key keys[64];
    uint64_t values[64];
    int n = 0;
    const char *net_mode = NULL;
    for (int i = 2; i < argc && n < 64; i++, n++) {
        fvm_error err;
        const char *arg = argv[i];
        const char *bare = arg[0] == '-' && arg[1] == '-' ? arg + 2 : arg;
        if (!strncmp(bare, "net", 3) && (bare[3] == '=' || (!bare[3] && arg != bare))) {
            /* net=MODE, --net=MODE, --net MODE */
            const char *v = bare[3] == '=' ? bare + 4 : i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "isolated") && strcmp(v, "shared"))
                return cli_error("set: net is isolated or shared, not '%s'", v), EXIT_USAGE;
            net_mode = v;
            n--;
            continue;
        }
        if (arg[0] == '-' && arg[1] == '-' && !strchr(arg, '=')) {
            /* the create spelling: --io-bandwidth 20MB/s */
            if (i + 1 >= argc)
                return cli_error("set: %s needs a value", arg), EXIT_USAGE;
            if (limit_key_parse(arg + 2, strlen(arg + 2), &keys[n], &err) != FVM_OK ||
                limit_value_parse(keys[n], argv[++i], &values[n], &err) != FVM_OK)
                return cli_error("set: %s", err.message), EXIT_USAGE;
            continue;
        }
        if (arg[0] == '-' && arg[1] == '-')
            arg += 2;   /* --cpu=25% */
        if (limit_assignment_parse(arg, &keys[n], &values[n], &err) != FVM_OK)
            return cli_error("set: %s", err.message), EXIT_USAGE;
    }
    DWORD running = box_process_count(&b);
    if (net_mode && running)
        return cli_error("set: box '%s' is running (%lu processes): net= takes effect when the box starts, so it "
                         "is changed only while the box is stopped (fvm stop %s); nothing was changed",
                         b.name, (unsigned long)running, b.name);
    if (net_mode) {
        boxlife_error berr;
        if (boxlife_set_setting(b.path, b.name, "net", net_mode, &berr) != FVM_OK)
            return cli_error("set: %s", berr.message);
        printf("%s: net=%s\n", b.name, net_mode);
    }
    for (int i = 0; i < n; i++)
        if (!box_limits_write(ini, keys[i], values[i]))
            return cli_win_error(GetLastError(), "cannot write %s to box.ini", limit_name(keys[i]));
    for (int i = 0; i < n; i++) {
        char text[32];
        limit_format(keys[i], values[i], text, sizeof text);
        printf("%s: %s=%s%s\n", b.name, limit_name(keys[i]), text,
               running ? " (the running box follows within a second)" : "");
    }
    /* A memory limit lowered below what the running box holds: nothing is
     * taken away, new commits are refused until it frees (audited too). */
    char stats[FVM_BROKER_STATS_MAX];
    for (int i = 0; running && i < n; i++) {
        if (keys[i] != LIMIT_MEMORY || !values[i] || !stats_query(&b, stats, sizeof stats))
            continue;
        double held = stats_field(stats, "memory_bytes");
        if (held > (double)values[i])
            printf("%s: the box holds %.0f bytes, more than the new memory limit: its processes keep what they "
                   "have, new commits are refused until they free\n", b.name, held);
    }
    return 0;
}
