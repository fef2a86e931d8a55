/* printname.c - printer names as the spooler reads them (printname.h).
 *
 * The idea: find the suffix the spooler looks for after the first comma
 * (", Job N", ", Port", ", XcvMonitor ...", ", XcvPort ..."), strip a
 * "\\server\" prefix, trim spaces, then map the ports Wine sends to the
 * host (CUPS:, LPR:) to their queue. What the spooler would refuse is
 * INVALID here too, so it is refused before it reaches the spooler. */
#include "core/printname.h"

static uint16_t upcase(uint16_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint16_t)(c - 'a' + 'A') : c;
}

/* s[0..len) starts with the ASCII word w, case-insensitively. */
static int starts_with(const uint16_t *s, size_t len, const char *w)
{
    size_t i = 0;
    for (; w[i]; i++)
        if (i >= len || upcase(s[i]) != (uint16_t)(unsigned char)w[i])
            return 0;
    return 1;
}

static void trim(const uint16_t **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

void printname_parse(const uint16_t *name, size_t len, printname *out)
{
    out->kind = PRINTNAME_INVALID;
    out->name = name;
    out->len = 0;
    if (!name || !len) {
        out->kind = PRINTNAME_SERVER;
        return;
    }
    /* An embedded NUL ends the name, as for the spooler's string. */
    for (size_t i = 0; i < len; i++)
        if (!name[i]) {
            len = i;
            break;
        }
    if (!len) {
        out->kind = PRINTNAME_SERVER;
        return;
    }
    size_t comma = 0;
    while (comma < len && name[comma] != ',')
        comma++;
    const uint16_t *head = name, *tail = name + comma;
    size_t head_len = comma, tail_len = comma < len ? len - comma - 1 : 0;
    if (comma < len)
        tail++;
    trim(&tail, &tail_len);
    printname_kind kind = PRINTNAME_PRINTER;
    if (comma < len) {
        if (starts_with(tail, tail_len, "XCVMONITOR") || starts_with(tail, tail_len, "XCVPORT")) {
            out->kind = PRINTNAME_XCV;
            return;
        }
        if (tail_len == 4 && starts_with(tail, tail_len, "PORT"))
            kind = PRINTNAME_PORT;
        else if (starts_with(tail, tail_len, "JOB ") && tail_len > 4)
            kind = PRINTNAME_JOB;
        else
            return;   /* an unknown suffix: the spooler refuses it too */
    }
    /* "\\server\rest" or "\\server" alone. */
    if (head_len >= 2 && head[0] == '\\' && head[1] == '\\') {
        size_t i = 2;
        while (i < head_len && head[i] != '\\')
            i++;
        if (i == 2)
            return;   /* "\\\..." : no server name */
        if (i == head_len) {
            if (kind == PRINTNAME_PRINTER) {
                trim(&head, &head_len);
                out->kind = PRINTNAME_SERVER;
            }
            return;   /* a server with a job or port suffix: invalid */
        }
        head += i + 1;
        head_len -= i + 1;
    }
    trim(&head, &head_len);
    if (!head_len)
        return;
    if (kind == PRINTNAME_PORT) {
        if (starts_with(head, head_len, "CUPS:")) {
            head += 5;
            head_len -= 5;
        } else if (starts_with(head, head_len, "LPR:")) {
            head += 4;
            head_len -= 4;
        }
        trim(&head, &head_len);
        if (!head_len)
            return;
    }
    out->kind = kind;
    out->name = head;
    out->len = head_len;
}

size_t printname_audit_name(const uint16_t *printer, size_t printer_len, const uint16_t *document,
                            size_t document_len, uint16_t *out, size_t cap)
{
    static const char middle[] = ", Document: ";
    size_t n = 0;
    for (size_t i = 0; i < printer_len && n < cap; i++)
        out[n++] = printer[i] == ',' ? '_' : printer[i];
    if (!document_len || !document || !document[0])
        return n;   /* no document (yet): the printer alone */
    for (size_t i = 0; middle[i] && n < cap; i++)
        out[n++] = (uint16_t)middle[i];
    for (size_t i = 0; i < document_len && n < cap && document[i]; i++)
        out[n++] = document[i];
    return n;
}

size_t printname_audit_printer_len(const uint16_t *name, size_t len)
{
    size_t i = 0;
    while (i < len && name[i] != ',')
        i++;
    return i;
}
