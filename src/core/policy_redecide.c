/* policy_redecide.c - see policy_redecide.h.
 *
 * The idea: parse the record's target back into the query the runtime
 * decided (net) or take the image it decided on (process), run the same
 * matcher on the broker's own view of the compiled policy, and compare the
 * decision word and rule label with the claim. Every byte of the claim is
 * outside input: parsing only checks bounds and never trusts a length. */
#include "core/policy_redecide.h"

#include <string.h>

#include "core/policy_process.h"

static int text_is(const char *t, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && !memcmp(t, word, w);
}

static int starts_with(const char *t, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && !memcmp(t, word, w);
}

static const char *action_word(policy_action a)
{
    switch (a) {
    case POLICY_ACTION_OPEN: return "open";
    case POLICY_ACTION_COW: return "cow";
    case POLICY_ACTION_READ: return "read";
    case POLICY_ACTION_ASK: return "ask";
    case POLICY_ACTION_HIDE: return "hide";
    case POLICY_ACTION_DENY: return "deny";
    default: return "none";
    }
}

static void put_text(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* The claim against the broker's decision d: the decision word and the rule
 * label must be the broker's; an "ask" rule's record carries the answer
 * (any action but ask), which stays the sender's word. A decision the
 * runtime does not audit never made a record. */
static redecide_result compare(const policy_decision *d, const redecide_claim *c, redecide_outcome *out)
{
    policy_decision_label(d, out->rule, sizeof out->rule);
    put_text(out->decision, sizeof out->decision, action_word(d->action));
    if (!d->audit && d->action != POLICY_ACTION_ASK) {
        out->why = "the policy does not audit this decision";
        return REDECIDE_FORGED;
    }
    if (!text_is(c->rule, c->rule_len, out->rule)) {
        out->why = "another rule decides";
        return REDECIDE_FORGED;
    }
    if (d->action == POLICY_ACTION_ASK) {
        if (text_is(c->decision, c->decision_len, "ask")) {
            out->why = "an ask rule's record carries the answer";
            return REDECIDE_FORGED;
        }
        return REDECIDE_CONFIRMED;
    }
    if (!text_is(c->decision, c->decision_len, out->decision)) {
        out->why = "the policy decides otherwise";
        return REDECIDE_FORGED;
    }
    return REDECIDE_CONFIRMED;
}

int policy_redecide_handles(uint32_t type)
{
    return type == POLICY_TYPE_NET || type == POLICY_TYPE_PROCESS;
}

/* ---- [net] ---- */

static int parse_port(const char *t, size_t n, uint16_t *port)
{
    if (!n || n > 5)
        return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(t[i] - '0');
    }
    if (v > 65535 || (n > 1 && t[0] == '0'))
        return 0;
    *port = (uint16_t)v;
    return 1;
}

int policy_redecide_net_target(const char *text, size_t len, net_query *q, size_t *head_len)
{
    memset(q, 0, sizeof *q);
    size_t head = 0;
    while (head < len && text[head] != '|')
        head++;
    *head_len = head;
    if (head < len) {
        q->host = text + head + 1;
        q->host_len = len - head - 1;
        if (!q->host_len || q->host_len > NET_NAME_MAX)
            return 0;
        for (size_t i = 0; i < q->host_len; i++)
            if ((unsigned char)q->host[i] <= ' ' || (unsigned char)q->host[i] >= 0x7f)
                return 0;
    }
    const char *t = text;
    size_t n = head;
    static const struct {
        const char *word;
        net_dir dir;
    } dirs[] = {{"out:", NET_DIR_OUT}, {"in:", NET_DIR_IN}, {"accept:", NET_DIR_ACCEPT}};
    size_t k = 0;
    for (; k < sizeof dirs / sizeof dirs[0]; k++)
        if (starts_with(t, n, dirs[k].word))
            break;
    if (k == sizeof dirs / sizeof dirs[0])
        return 0;
    q->dir = dirs[k].dir;
    t += strlen(dirs[k].word);
    n -= strlen(dirs[k].word);
    static const struct {
        const char *word;
        net_proto proto;
    } protos[] = {{"tcp:", NET_PROTO_TCP}, {"udp:", NET_PROTO_UDP}, {"raw:", NET_PROTO_RAW}, {"icmp:", NET_PROTO_ICMP}};
    for (k = 0; k < sizeof protos / sizeof protos[0]; k++)
        if (starts_with(t, n, protos[k].word))
            break;
    if (k == sizeof protos / sizeof protos[0])
        return 0;
    q->proto = protos[k].proto;
    t += strlen(protos[k].word);
    n -= strlen(protos[k].word);
    if (text_is(t, n, "*"))
        return 1;   /* no address (a socket being made): family 0, no port */
    size_t colon;
    if (n && t[0] == '[') {
        size_t close = 1;
        while (close < n && t[close] != ']')
            close++;
        if (close >= n || close + 1 >= n || t[close + 1] != ':')
            return 0;
        if (!net_addr_parse(t, close + 1, &q->addr) || q->addr.family != 6)
            return 0;
        colon = close + 1;
    } else {
        colon = n;
        while (colon > 0 && t[colon - 1] != ':')
            colon--;
        if (!colon)
            return 0;
        colon--;
        if (!net_addr_parse(t, colon, &q->addr) || q->addr.family != 4)
            return 0;
    }
    return parse_port(t + colon + 1, n - colon - 1, &q->port);
}

/* AF_UNSPEC, AF_INET, AF_INET6: the families the rules decide. */
static int family_is_network(const char *t, size_t n, int *known)
{
    uint16_t v = 0;
    *known = parse_port(t, n, &v);
    return *known && (v == 0 || v == 2 || v == 23);
}

static redecide_result redecide_net(const policy_view *view, const redecide_claim *c, const uint16_t *program,
                                    size_t program_len, net_policy_rule *rules, size_t cap, redecide_outcome *out)
{
    size_t bad = 0;
    size_t count = net_policy_load(view, program, program_len, rules, cap, &bad);
    if (count > cap || bad) {
        out->why = "the program has more [net] rules than the broker checks";
        return REDECIDE_SENDERS_WORD;
    }
    const char *target = c->target_len ? c->target : c->name;
    size_t target_len = c->target_len ? c->target_len : c->name_len;
    policy_decision d;
    if (starts_with(c->name, c->name_len, "family:")) {
        /* FVM's own refusal of a socket family no rule can name. */
        int known;
        if (c->target_len || family_is_network(c->name + 7, c->name_len - 7, &known) || !known) {
            out->why = "not a refused family";
            return REDECIDE_REFUSED;
        }
        memset(&d, 0, sizeof d);
        d.action = POLICY_ACTION_DENY;
        d.audit = 1;
        d.is_default = 1;
        d.rule = POLICY_NO_RULE;
        d.file = "";
        return compare(&d, c, out);
    }
    if (starts_with(c->name, c->name_len, "name:")) {
        if (c->target_len && (c->target_len != c->name_len || memcmp(c->target, c->name, c->name_len))) {
            out->why = "the target is not the name";
            return REDECIDE_REFUSED;
        }
        const char *host = c->name + 5;
        size_t len = c->name_len - 5;
        if (!len || len > 200) {
            out->why = "not a host name";
            return REDECIDE_REFUSED;
        }
        net_policy_decide_name(view, rules, count, host, len, &d);
        return compare(&d, c, out);
    }
    net_query q;
    size_t head;
    /* The record's name is the target's head, then what the runtime adds
     * for the reader (" from LOCAL", " host NAME"). */
    if (!policy_redecide_net_target(target, target_len, &q, &head) || head > c->name_len ||
        memcmp(target, c->name, head) || (head < c->name_len && c->name[head] != ' ')) {
        out->why = "the target does not parse or is not the name";
        return REDECIDE_REFUSED;
    }
    net_policy_decide(view, rules, count, &q, &d);
    redecide_result r = compare(&d, c, out);
    if (!q.host)
        return r;
    /* The host name is the sender's word (only it resolved the address):
     * when it changes the decision, the broker cannot tell. */
    net_query bare = q;
    bare.host = NULL;
    bare.host_len = 0;
    policy_decision without;
    net_policy_decide(view, rules, count, &bare, &without);
    if (without.action == d.action && without.rule == d.rule && without.is_default == d.is_default)
        return r;
    if (r == REDECIDE_CONFIRMED) {
        out->why = "a rule on the host name the sender resolved decides";
        return REDECIDE_SENDERS_WORD;
    }
    return r;
}

/* ---- [process] ---- */

static size_t utf8_to_units(const char *in, size_t n, uint16_t *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)in[i];
        uint32_t cp;
        size_t need;
        if (b < 0x80) {
            cp = b;
            need = 1;
        } else if ((b & 0xE0) == 0xC0) {
            cp = b & 0x1F;
            need = 2;
        } else if ((b & 0xF0) == 0xE0) {
            cp = b & 0x0F;
            need = 3;
        } else if ((b & 0xF8) == 0xF0) {
            cp = b & 0x07;
            need = 4;
        } else {
            return 0;
        }
        if (i + need > n)
            return 0;
        for (size_t k = 1; k < need; k++) {
            if (((unsigned char)in[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | ((unsigned char)in[i + k] & 0x3F);
        }
        i += need;
        if (cp >= 0x10000) {
            if (w + 2 > cap)
                return 0;
            cp -= 0x10000;
            out[w++] = (uint16_t)(0xD800 | cp >> 10);
            out[w++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            if (w + 1 > cap)
                return 0;
            out[w++] = (uint16_t)cp;
        }
    }
    return w;
}

static redecide_result redecide_process(const policy_view *view, const redecide_claim *c, const uint16_t *program,
                                        size_t program_len, redecide_outcome *out)
{
    int deny = text_is(c->decision, c->decision_len, "deny");
    int start = text_is(c->op, c->op_len, "start");
    int open = text_is(c->op, c->op_len, "open");
    const char *image = start ? c->target : open ? c->name : NULL;
    size_t image_len = start ? c->target_len : open ? c->name_len : 0;
    if (open && c->target_len) {
        out->why = "an open's target is its name";
        return REDECIDE_REFUSED;
    }
    if (!image_len) {
        /* FVM's own refusals (another box's or the host's process, a
         * non-PE image, the process quota): always a deny, on facts about
         * a process or a file the broker does not look at again. Only a
         * refusal is ever recorded this way. */
        if (deny) {
            out->why = "FVM's own refusal, not a rule's";
            return REDECIDE_SENDERS_WORD;
        }
        /* `fvm run --no-floor`: the process says it runs without the
         * floor (runtime/floor.c), a fact about itself, not a rule's allow. */
        if (text_is(c->op, c->op_len, "no-floor") && text_is(c->decision, c->decision_len, "open") &&
            text_is(c->rule, c->rule_len, "default")) {
            out->why = "the process's own word about its floor";
            return REDECIDE_SENDERS_WORD;
        }
        out->why = "only refusals are recorded for this operation";
        return REDECIDE_REFUSED;
    }
    uint16_t units[4096];
    uint16_t *u = units;
    size_t n = utf8_to_units(image, image_len, u, sizeof units / sizeof units[0]);
    if (!n) {
        out->why = "the image is not a file name";
        return REDECIDE_REFUSED;
    }
    if (start && policy_process_has_hash_rules(view)) {
        out->why = "the policy names programs by hash: the broker does not hash the image";
        return REDECIDE_SENDERS_WORD;
    }
    policy_decision d;
    if (start)
        policy_process_decide(view, u, n, NULL, program, program_len, &d);
    else
        policy_match(view, POLICY_TYPE_PROCESS, u, n, program, program_len, &d);
    return compare(&d, c, out);
}

redecide_result policy_redecide(const policy_view *view, const redecide_claim *claim, const uint16_t *program,
                                size_t program_len, net_policy_rule *net_scratch, size_t net_cap,
                                redecide_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->why = "";
    if (claim->type == POLICY_TYPE_NET)
        return redecide_net(view, claim, program, program_len, net_scratch, net_cap, out);
    if (claim->type == POLICY_TYPE_PROCESS)
        return redecide_process(view, claim, program, program_len, out);
    out->why = "not a [net] or [process] record";
    return REDECIDE_REFUSED;
}
