/* objname.c - see objname.h. The checks walk the name once; the link
 * resolution rewrites the name in place, one link per round, so a link that
 * produces another link ("Session\1\Global\X") is resolved in the next one.
 *
 * Only memmove is used: this file is also compiled into the CRT-free
 * runtime DLL. */
#include "core/objname.h"

#include <string.h>

static uint16_t ascii_upper(uint16_t c)
{
    return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
}

/* Does n (len units) start with the ASCII text p, case-insensitively? */
static int starts_ascii(const uint16_t *n, size_t len, const char *p)
{
    size_t i = 0;
    for (; p[i]; i++)
        if (i >= len || ascii_upper(n[i]) != ascii_upper((uint16_t)(unsigned char)p[i]))
            return 0;
    return 1;
}

static size_t ascii_len(const char *p)
{
    size_t k = 0;
    while (p[k])
        k++;
    return k;
}

/* Is the component at n (up to '\' or len) exactly the ASCII word w? */
static int component_is(const uint16_t *n, size_t len, const char *w)
{
    size_t k = ascii_len(w);
    return starts_ascii(n, len, w) && (len == k || n[k] == '\\');
}

objname_problem objname_check(const uint16_t *s, size_t bytes, unsigned rules, size_t max_units, size_t *at)
{
    size_t where = 0;
    objname_problem problem = OBJNAME_OK;
    size_t len = bytes / 2;
    if (bytes & 1) {
        problem = OBJNAME_ODD_LENGTH;
        where = len;
    } else if (!s && bytes) {
        problem = OBJNAME_EMBEDDED_NUL;
    } else if (max_units && len > max_units) {
        problem = OBJNAME_TOO_LONG;
        where = max_units;
    } else if ((rules & OBJNAME_ABSOLUTE) && (!len || s[0] != '\\')) {
        problem = OBJNAME_NOT_ABSOLUTE;
    } else if (!len && !(rules & OBJNAME_ALLOW_EMPTY) && !(rules & OBJNAME_ABSOLUTE)) {
        problem = OBJNAME_EMPTY_COMPONENT;
    } else {
        for (size_t i = 0; i < len; i++) {
            if (s[i] == 0) {
                problem = OBJNAME_EMBEDDED_NUL;
                where = i;
                break;
            }
            if (s[i] != '\\' || (rules & OBJNAME_COLLAPSES))
                continue;
            if (i + 1 < len && s[i + 1] == '\\') {
                problem = OBJNAME_EMPTY_COMPONENT;
                where = i + 1;
                break;
            }
            if (i + 1 == len && len > 1) {
                problem = OBJNAME_TRAILING_SEPARATOR;
                where = i;
                break;
            }
        }
    }
    if (at)
        *at = where;
    return problem;
}

const char *objname_problem_text(objname_problem problem)
{
    switch (problem) {
    case OBJNAME_OK:
        return "no problem";
    case OBJNAME_ODD_LENGTH:
        return "an odd byte length";
    case OBJNAME_EMBEDDED_NUL:
        return "an embedded NUL";
    case OBJNAME_EMPTY_COMPONENT:
        return "an empty component (doubled separator)";
    case OBJNAME_TRAILING_SEPARATOR:
        return "a trailing separator";
    case OBJNAME_NOT_ABSOLUTE:
        return "a relative name";
    case OBJNAME_TOO_LONG:
        return "a name too long";
    case OBJNAME_ROOTED_RELATIVE:
        return "an absolute name with a root handle";
    case OBJNAME_OUTSIDE_NAMESPACE:
        return "a key name outside \\REGISTRY";
    }
    return "an unknown problem";
}

size_t objname_collapse(uint16_t *s, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && out > 0 && s[out - 1] == '\\')
            continue;
        s[out++] = s[i];
    }
    while (out > 1 && s[out - 1] == '\\')
        out--;
    return out;
}

/* Replaces n[at, at+old) by the ASCII text with, in place. */
static int splice(uint16_t *n, size_t *len, size_t cap, size_t at, size_t old, const char *with)
{
    size_t k = ascii_len(with);
    if (*len - old + k > cap)
        return 0;
    memmove(n + at + k, n + at + old, (*len - at - old) * 2);
    for (size_t i = 0; i < k; i++)
        n[at + i] = (uint16_t)(unsigned char)with[i];
    *len = *len - old + k;
    return 1;
}

/* Length of "\Sessions\<digits>" at the start of n when `then` follows, or 0. */
static size_t session_prefix(const uint16_t *n, size_t len, const char *then)
{
    if (!starts_ascii(n, len, "\\Sessions\\"))
        return 0;
    size_t i = 10;
    while (i < len && n[i] >= '0' && n[i] <= '9')
        i++;
    if (i == 10 || !starts_ascii(n + i, len - i, then))
        return 0;
    return i;
}

/* One link resolved, if there is one at the start of n: 1 done, 0 none,
 * -1 no room. */
static int resolve_one(uint16_t *n, size_t *len, size_t cap)
{
    size_t at;
    if ((at = session_prefix(n, *len, "\\BaseNamedObjects\\")) != 0) {
        const uint16_t *c = n + at + 18;
        size_t left = *len - at - 18;
        if (component_is(c, left, "Global"))
            return splice(n, len, cap, 0, at + 18 + 6, "\\BaseNamedObjects") ? 1 : -1;
        if (component_is(c, left, "Local"))
            return splice(n, len, cap, at + 17, 6, "") ? 1 : -1;
        if (component_is(c, left, "Session"))
            return splice(n, len, cap, 0, at + 18 + 7, "\\Sessions\\BNOLINKS") ? 1 : -1;
    }
    if (starts_ascii(n, *len, "\\BaseNamedObjects\\")) {
        const uint16_t *c = n + 18;
        size_t left = *len - 18;
        if (component_is(c, left, "Global"))
            return splice(n, len, cap, 17, 7, "") ? 1 : -1;
        if (component_is(c, left, "Local"))
            return splice(n, len, cap, 17, 6, "") ? 1 : -1;
        if (component_is(c, left, "Session"))
            return splice(n, len, cap, 0, 18 + 7, "\\Sessions\\BNOLINKS") ? 1 : -1;
    }
    if (starts_ascii(n, *len, "\\Sessions\\BNOLINKS\\")) {
        size_t i = 19;
        while (i < *len && n[i] >= '0' && n[i] <= '9')
            i++;
        if (i > 19 && (i == *len || n[i] == '\\')) {
            /* \Sessions\BNOLINKS\N -> \Sessions\N\BaseNamedObjects */
            if (!splice(n, len, cap, i, 0, "\\BaseNamedObjects") || !splice(n, len, cap, 0, 19, "\\Sessions\\"))
                return -1;
            return 1;
        }
    }
    return 0;
}

int objname_resolve_links(uint16_t *n, size_t *len, size_t cap)
{
    for (int round = 0; round < 16; round++) {
        int r = resolve_one(n, len, cap);
        if (r <= 0)
            return r == 0;
    }
    return 0;
}

int objname_in_named_objects(const uint16_t *n, size_t len)
{
    if (len > 1 && component_is(n + 1, len - 1, "BaseNamedObjects"))
        return n[0] == '\\';
    size_t at = session_prefix(n, len, "\\BaseNamedObjects");
    return at && (len == at + 17 || n[at + 17] == '\\');
}

int objname_win32_root(const uint16_t *in, size_t n, objname_root *out)
{
    out->scope = OBJNAME_SCOPE_SESSION;
    out->session = 0;
    out->rest = 0;
    if (starts_ascii(in, n, "Global\\")) {
        out->scope = OBJNAME_SCOPE_GLOBAL;
        out->rest = 7;
    } else if (starts_ascii(in, n, "Local\\")) {
        out->rest = 6;
    } else if (starts_ascii(in, n, "Session\\")) {
        size_t d = 8;
        uint32_t value = 0;
        while (d < n && d < 8 + 9 && in[d] >= '0' && in[d] <= '9')
            value = value * 10 + (uint32_t)(in[d++] - '0');
        if (d == 8 || (d < n && in[d] != '\\'))
            return 0;
        out->scope = OBJNAME_SCOPE_NUMBERED;
        out->session = value;
        out->rest = d < n ? d + 1 : d;
    }
    return 1;
}

objname_problem objname_join(objname_space space, const uint16_t *root, size_t root_len, const uint16_t *rel,
                             size_t rel_bytes, uint16_t *out, size_t cap, size_t *out_len)
{
    int key = space == OBJNAME_SPACE_KEY;
    unsigned rules = OBJNAME_ALLOW_EMPTY | (key ? OBJNAME_COLLAPSES : 0) | (root ? 0 : OBJNAME_ABSOLUTE);
    objname_problem problem = objname_check(rel, rel_bytes, rules, 0, NULL);
    if (problem != OBJNAME_OK)
        return problem;
    size_t rel_len = rel_bytes / 2, len = 0;
    if (root) {
        if (key && rel_len && rel[0] == '\\')
            return OBJNAME_ROOTED_RELATIVE;   /* the registry refuses it (the object manager reads it on) */
        if (root_len + 1 + rel_len > cap)
            return OBJNAME_TOO_LONG;
        memmove(out, root, root_len * 2);
        len = root_len;
        /* The root directory "\" takes the name without a separator. */
        if (rel_len && !(len == 1 && out[0] == '\\'))
            out[len++] = '\\';
    } else {
        if (key && rel_len >= 2 && rel[1] == '\\')
            return OBJNAME_EMPTY_COMPONENT;   /* "\\\\REGISTRY": the registry refuses an empty first name */
        if (rel_len > cap)
            return OBJNAME_TOO_LONG;
    }
    memmove(out + len, rel, rel_len * 2);
    len += rel_len;
    if (key) {
        len = objname_collapse(out, len);
        if (!starts_ascii(out, len, "\\REGISTRY\\") || len <= 10)
            return OBJNAME_OUTSIDE_NAMESPACE;
    } else {
        problem = objname_check(out, len * 2, OBJNAME_ABSOLUTE, 0, NULL);
        if (problem != OBJNAME_OK)
            return problem;   /* the root's name and ours joined badly */
        if (!objname_resolve_links(out, &len, cap))
            return OBJNAME_TOO_LONG;
    }
    *out_len = len;
    return OBJNAME_OK;
}
