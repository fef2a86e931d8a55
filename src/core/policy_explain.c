/* policy_explain.c - why the policy decided what it did, for
 * `fvm policy explain BOX PATH [--program X]`.
 *
 * It asks the matcher for every rule whose pattern matches the name
 * (policy_match_each), keeps those whose scope includes the program, sorts
 * them with the same precedence the matcher uses, and writes: the decision,
 * the winning rule with its precedence counts, every rule it beat with the
 * step that decided (and the numbers compared), and the matching rules that
 * are scoped to other programs. The decision itself comes from policy_match,
 * so the explanation can never disagree with what the runtime does.
 *
 * Not part of the runtime (FVM_RUNTIME): it formats with stdio. */
#include "core/policy.h"

#ifndef FVM_RUNTIME

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* At most this many matching rules are listed; the rest are counted. */
#define EXPLAIN_MAX_RULES 64u

typedef struct out_buf {
    char *text;
    size_t cap, len;
    int truncated;
} out_buf;

static void put(out_buf *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(out_buf *o, const char *fmt, ...)
{
    if (o->truncated)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->truncated = 1;
        o->len = o->cap - 1;
        if (o->cap >= 5)
            memcpy(o->text + o->cap - 5, "...\n", 5);
        return;
    }
    o->len += (size_t)n;
}

/* UTF-16 as UTF-8 (an unpaired surrogate shows as U+FFFD). */
static void put_utf16(out_buf *o, const uint16_t *u, size_t n)
{
    char buf[4 * 64 + 1];
    size_t b = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = u[i];
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 && u[i + 1] <= 0xDFFF)
            cp = 0x10000 + ((cp - 0xD800) << 10) + (u[++i] - 0xDC00);
        else if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xFFFD;
        if (cp < 0x80) {
            buf[b++] = (char)cp;
        } else if (cp < 0x800) {
            buf[b++] = (char)(0xC0 | (cp >> 6));
            buf[b++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            buf[b++] = (char)(0xE0 | (cp >> 12));
            buf[b++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[b++] = (char)(0x80 | (cp & 0x3F));
        } else {
            buf[b++] = (char)(0xF0 | (cp >> 18));
            buf[b++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            buf[b++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            buf[b++] = (char)(0x80 | (cp & 0x3F));
        }
        if (b > sizeof buf - 5 || i + 1 == n) {
            buf[b] = 0;
            put(o, "%s", buf);
            b = 0;
        }
    }
}

typedef struct collected {
    uint32_t rules[EXPLAIN_MAX_RULES];
    size_t count, dropped;
} collected;

static void collect(void *ctx, uint32_t rule)
{
    collected *c = ctx;
    for (size_t i = 0; i < c->count; i++)
        if (c->rules[i] == rule)
            return;
    if (c->count == EXPLAIN_MAX_RULES)
        c->dropped++;
    else
        c->rules[c->count++] = rule;
}

static void put_rule_line(out_buf *o, const policy_rule_info *r)
{
    put(o, "%.*s:%lu:%lu  %s%s ", (int)r->file_len, r->file, (unsigned long)r->line, (unsigned long)r->column,
        policy_action_name(r->action), r->audit ? " audit" : "");
    if (r->rank.scope == POLICY_SCOPE_GROUP)
        put(o, "@%.*s: ", (int)r->scope_name_len, r->scope_name);
    else if (r->rank.scope == POLICY_SCOPE_PROGRAM)
        put(o, "%.*s: ", (int)r->scope_name_len, r->scope_name);
    put(o, "%.*s\n", (int)r->text_len, r->text);
}

static const char *scope_text(policy_scope_kind scope)
{
    return scope == POLICY_SCOPE_PROGRAM ? "one program" : scope == POLICY_SCOPE_GROUP ? "a group" : "every program";
}

/* Why the winner w beat the loser l, with the numbers compared. */
static void put_reason(out_buf *o, const policy_rank *w, const policy_rank *l)
{
    policy_tiebreak tie;
    policy_rank_compare(w, l, &tie);
    put(o, "      lost at step %d, %s: ", (int)tie, policy_tiebreak_text(tie));
    switch (tie) {
    case POLICY_TIE_SCOPE:
        put(o, "the winner is for %s, this rule for %s\n", scope_text(w->scope), scope_text(l->scope));
        break;
    case POLICY_TIE_LITERALS:
        put(o, "%lu literal characters against the winner's %lu\n", (unsigned long)l->literal_chars,
            (unsigned long)w->literal_chars);
        break;
    case POLICY_TIE_GLOBSTARS:
        put(o, "%lu '**' against the winner's %lu\n", (unsigned long)l->globstars, (unsigned long)w->globstars);
        break;
    case POLICY_TIE_STARS:
        put(o, "%lu '*' against the winner's %lu\n", (unsigned long)l->stars, (unsigned long)w->stars);
        break;
    case POLICY_TIE_QMARKS:
        put(o, "%lu '?' against the winner's %lu\n", (unsigned long)l->qmarks, (unsigned long)w->qmarks);
        break;
    case POLICY_TIE_ACTION:
        put(o, "%s is less strict than %s\n", policy_action_name(l->action), policy_action_name(w->action));
        break;
    case POLICY_TIE_ORDER:
        put(o, "equal in everything else, and it comes earlier in the policy\n");
        break;
    default:
        put(o, "\n");
        break;
    }
}

fvm_status policy_explain(const policy_view *view, policy_type type, const uint16_t *name, size_t len,
                          const uint16_t *program, size_t program_len, char *out, size_t cap, fvm_error *err)
{
    if (!out || cap == 0)
        return fvm_error_set(err, FVM_E_RANGE, "no room for the explanation");
    out_buf o = {out, cap, 0, 0};
    out[0] = 0;
    policy_decision decision;
    fvm_status st = policy_match(view, type, name, len, program, program_len, &decision);
    if (st != FVM_OK)
        return fvm_error_set(err, st, "the matcher failed (%s): the decision is deny", fvm_status_name(st));
    collected all = {{0}, 0, 0};
    policy_match_each(view, type, name, len, collect, &all);

    /* Split into rules for this program (sorted, winner first) and others. */
    uint32_t applies[EXPLAIN_MAX_RULES], others[EXPLAIN_MAX_RULES];
    policy_rank ranks[EXPLAIN_MAX_RULES];
    size_t n_applies = 0, n_others = 0;
    for (size_t i = 0; i < all.count; i++) {
        policy_rule_info info;
        policy_view_rule(view, all.rules[i], &info);
        if (!policy_rule_applies(view, all.rules[i], program, program_len)) {
            others[n_others++] = all.rules[i];
            continue;
        }
        size_t k = n_applies++;
        while (k > 0 && policy_rank_compare(&info.rank, &ranks[k - 1], NULL) > 0) {
            applies[k] = applies[k - 1];
            ranks[k] = ranks[k - 1];
            k--;
        }
        applies[k] = all.rules[i];
        ranks[k] = info.rank;
    }

    put(&o, "%s ", policy_type_name(type));
    put_utf16(&o, name, len);
    put(&o, "\nprogram: ");
    if (program && program_len)
        put_utf16(&o, program, program_len);
    else
        put(&o, "(any)");
    put(&o, "\ndecision: %s", policy_action_name(decision.action));
    if (decision.action == POLICY_ACTION_ASK)
        put(&o, " (timeout %lu ms, then %s)", (unsigned long)decision.ask_timeout_ms,
            policy_action_name(decision.ask_default));
    put(&o, "%s\n", decision.audit ? ", audited" : ", not audited");
    if (decision.is_default) {
        put(&o, "  no rule matches: %s is the default for %s\n", policy_action_name(decision.action),
            policy_type_name(type));
    } else {
        policy_rule_info w;
        policy_view_rule(view, decision.rule, &w);
        put(&o, "  by ");
        put_rule_line(&o, &w);
        put(&o, "      pattern ");
        put_utf16(&o, w.pattern, w.pattern_len);
        put(&o, "\n      for %s; %lu literal characters, %lu '**', %lu '*', %lu '?'\n", scope_text(w.rank.scope),
            (unsigned long)w.rank.literal_chars, (unsigned long)w.rank.globstars, (unsigned long)w.rank.stars,
            (unsigned long)w.rank.qmarks);
        if (n_applies > 1)
            put(&o, "it beat:\n");
        for (size_t i = 0; i < n_applies; i++) {
            if (applies[i] == decision.rule)
                continue;
            policy_rule_info l;
            policy_view_rule(view, applies[i], &l);
            put(&o, "  ");
            put_rule_line(&o, &l);
            put_reason(&o, &w.rank, &l.rank);
        }
    }
    if (n_others) {
        put(&o, "also matching, but scoped to other programs:\n");
        for (size_t i = 0; i < n_others; i++) {
            policy_rule_info r;
            policy_view_rule(view, others[i], &r);
            put(&o, "  ");
            put_rule_line(&o, &r);
        }
    }
    if (all.dropped)
        put(&o, "(and %lu more matching rules not listed)\n", (unsigned long)all.dropped);
    return FVM_OK;
}

#else
typedef int policy_explain_not_in_runtime;
#endif
