/* cmdline.c - see cmdline.h. The rules are those of the Microsoft C runtime
 * (and CommandLineToArgvW) for arguments after the first:
 *   - whitespace (space, tab) separates arguments outside quotes;
 *   - 2n backslashes before a quote give n backslashes and the quote toggles
 *     quoting; 2n+1 give n backslashes and a literal quote;
 *   - backslashes not before a quote are literal;
 *   - inside quotes, "" gives a literal quote (post-2008 CRT behaviour).
 * The program name (argv[0]) is simpler: every quote toggles quoting and is
 * dropped, backslashes are literal. */
#include "core/cmdline.h"

static int is_space(uint16_t c)
{
    return c == ' ' || c == '\t';
}

static void put(uint16_t *value, size_t cap, size_t *n, uint16_t c)
{
    if (value && *n + 1 < cap)
        value[*n] = c;
    (*n)++;
}

static void finish(uint16_t *value, size_t cap, size_t n)
{
    if (value && cap)
        value[n < cap ? n : cap - 1] = 0;
}

int cmdline_next(const uint16_t *line, size_t *pos, cmdline_token *tok,
                 uint16_t *value, size_t value_cap)
{
    size_t i = *pos, n = 0;
    int quoted = 0;
    while (line[i] && is_space(line[i]))
        i++;
    if (!line[i])
        return 0;
    tok->start = i;
    while (line[i] && (quoted || !is_space(line[i]))) {
        if (line[i] == '\\') {
            size_t slashes = 0;
            while (line[i] == '\\') {
                slashes++;
                i++;
            }
            if (line[i] == '"') {
                for (size_t k = 0; k < slashes / 2; k++)
                    put(value, value_cap, &n, '\\');
                if (slashes % 2) {
                    put(value, value_cap, &n, '"');
                    i++;
                }
            } else {
                for (size_t k = 0; k < slashes; k++)
                    put(value, value_cap, &n, '\\');
            }
        } else if (line[i] == '"') {
            if (quoted && line[i + 1] == '"') {
                put(value, value_cap, &n, '"');
                i += 2;
            } else {
                quoted = !quoted;
                i++;
            }
        } else {
            put(value, value_cap, &n, line[i++]);
        }
    }
    tok->end = i;
    *pos = i;
    finish(value, value_cap, n);
    return 1;
}

int cmdline_next_program(const uint16_t *line, size_t *pos, cmdline_token *tok,
                         uint16_t *value, size_t value_cap)
{
    size_t i = *pos, n = 0;
    while (line[i] && is_space(line[i]))
        i++;
    if (!line[i])
        return 0;
    tok->start = i;
    int quoted = 0;
    for (; line[i] && (quoted || !is_space(line[i])); i++) {
        if (line[i] == '"')
            quoted = !quoted;
        else
            put(value, value_cap, &n, line[i]);
    }
    tok->end = i;
    *pos = i;
    finish(value, value_cap, n);
    return 1;
}
