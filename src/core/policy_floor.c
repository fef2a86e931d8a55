/* policy_floor.c - the part of a box's [file] rules the kernel's floor can
 * hold below the hooks (policy.h: policy_hidden_folders).
 *
 * The hooks decide every name a program opens; a program that steps around
 * them (raw Linux calls, its own system call stubs) meets only the floor.
 * A folder whose every name the policy hides or denies to every program can
 * be taken out of the box's sight whole: the box's mount namespace lays an
 * empty, inaccessible tmpfs over it. That is sound only when no rule that
 * allows (open, cow, read, ask) could win for any name beneath the folder
 * for any program: such a rule is one whose literal part is beneath the
 * folder or leads to it (so its wildcards may reach into it), and that
 * outranks the hiding rule by the policy's own precedence.
 *
 * CRT-free, no allocation: fvm.dll links it. */
#include "core/policy.h"

static int allows(policy_action action)
{
    return action == POLICY_ACTION_OPEN || action == POLICY_ACTION_COW || action == POLICY_ACTION_READ ||
           action == POLICY_ACTION_ASK;
}

static int is_wildcard(uint16_t c)
{
    return c == '*' || c == '?';
}

/* The length of the pattern's literal part (up to its first wildcard). The
 * question marks of a leading "\??\" (the NT namespace of drive paths,
 * which canonical file patterns start with) are part of the name. */
static size_t literal_length(const uint16_t *pattern, size_t len)
{
    size_t n = len >= 4 && pattern[0] == '\\' && pattern[1] == '?' && pattern[2] == '?' && pattern[3] == '\\' ? 4 : 0;
    while (n < len && !is_wildcard(pattern[n]))
        n++;
    return n;
}

/* The folder a "FOLDER\**" pattern names, as its length; 0 when the
 * pattern is not of that form (or names no folder). */
static size_t whole_folder(const uint16_t *pattern, size_t len)
{
    if (len < 4 || pattern[len - 1] != '*' || pattern[len - 2] != '*' || pattern[len - 3] != '\\')
        return 0;
    size_t folder = len - 3;
    return literal_length(pattern, folder) == folder ? folder : 0;
}

/* Does the name a (n units) start with b (m units), case-insensitively? */
static int starts_with(const uint16_t *a, size_t n, const uint16_t *b, size_t m)
{
    if (m > n)
        return 0;
    for (size_t i = 0; i < m; i++)
        if (ntpath_upcase(0, a[i]) != ntpath_upcase(0, b[i]))
            return 0;
    return 1;
}

/* Could a rule whose literal part is lit[0..n) match a name beneath the
 * folder (or the folder itself)? Yes when that part lies beneath it, or
 * leads to it (its wildcards may then reach into it). */
static int may_reach(const uint16_t *lit, size_t n, const uint16_t *folder, size_t f)
{
    if (starts_with(lit, n, folder, f))
        return n == f || lit[f] == '\\';
    return starts_with(folder, f, lit, n);
}

size_t policy_hidden_folders(const policy_view *view, uint32_t *out, size_t cap)
{
    size_t count = 0, rules = view ? policy_view_rule_count(view) : 0;
    for (size_t d = 0; d < rules; d++) {
        policy_rule_info hide;
        if (policy_view_rule(view, (uint32_t)d, &hide) != FVM_OK || hide.type != POLICY_TYPE_FILE ||
            (hide.action != POLICY_ACTION_HIDE && hide.action != POLICY_ACTION_DENY) ||
            hide.rank.scope != POLICY_SCOPE_ALL)
            continue;
        size_t folder = whole_folder(hide.pattern, hide.pattern_len);
        if (!folder)
            continue;
        int hideable = 1;
        for (size_t r = 0; hideable && r < rules; r++) {
            policy_rule_info other;
            if (r == d || policy_view_rule(view, (uint32_t)r, &other) != FVM_OK || other.type != POLICY_TYPE_FILE ||
                !allows(other.action))
                continue;
            size_t lit = literal_length(other.pattern, other.pattern_len);
            if (may_reach(other.pattern, lit, hide.pattern, folder) &&
                policy_rank_compare(&other.rank, &hide.rank, 0) > 0)
                hideable = 0;
        }
        if (!hideable)
            continue;
        if (count < cap)
            out[count] = (uint32_t)d;
        count++;
    }
    return count;
}

size_t policy_hidden_folder_length(const uint16_t *pattern, size_t len)
{
    return whole_folder(pattern, len);
}

size_t policy_hidden_folder_win32(const uint16_t *pattern, size_t len, uint16_t *out, size_t cap)
{
    size_t folder = whole_folder(pattern, len);
    /* "\??\X:\...": the drive path after the NT namespace prefix. */
    if (folder < 7 || pattern[0] != '\\' || pattern[1] != '?' || pattern[2] != '?' || pattern[3] != '\\' ||
        pattern[5] != ':' || folder - 4 >= cap)
        return 0;
    for (size_t k = 4; k < folder; k++)
        out[k - 4] = pattern[k];
    out[folder - 4] = 0;
    return folder - 4;
}
