/*
 * intent.c - rule-based intent classification of agent-run prompts.
 *
 * The rules are data: one table of word patterns (syntax in intent.h),
 * each tagged with its class, an id, a description and a weight. A prompt
 * is normalised into words once, then:
 *
 *   1. the dangerous rules are tried in order; the first match decides
 *      and the run is refused, whatever else the prompt says;
 *   2. otherwise every other rule is tried, each match adds its weight to
 *      its class, and the class with the highest score wins (ties go to
 *      security, then admin, then graph, the more careful reading);
 *   3. a prompt that matches nothing is chat.
 *
 * Dangerous patterns name a destructive verb together with its object
 * ("drop ... table", "delete all ... users") rather than a single word, so
 * "drop me a note" or "how do I detect malware" stay benign, and they
 * carry negative look-aheads where a defensive reading is common ("write a
 * virus scanner").
 */
#include "intent.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules ---------------------------------------------------------- */

typedef struct intent_rule {
    intent_class cls;
    const char *id;
    const char *description;
    const char *pattern;
    double weight;
} intent_rule;

/* Words that may stand between a destructive verb and its object:
 * "drop the production database", "drop all of the tables". */
#define DET "?the|all|every|each|any|my|our|your|their|this|that|these|those|of|a|an|" \
            "production|prod|entire|whole|live|main|primary|customer|user|users|company"
#define DISK "disk|disks|drive|drives|harddrive|harddisk|hdd|ssd|partition|partitions|" \
             "filesystem|filesystems|volume|volumes"
#define SYSPATH "/|~|/etc|/usr|/bin|/sbin|/boot|/var|/home|/root|/lib|/lib64|/opt|/srv|" \
                "/sys|/dev|/proc"
/* Words after "ddos" that make it the defender's topic, not a plan. */
#define DDOS_SHIELD "protection|protect|protected|protecting|mitigation|mitigate|mitigating|" \
                    "defense|defence|defend|defending|prevention|prevent|resilience|" \
                    "resilient|proof|proofing|detection|detect|scrubbing"
#define DDOS_DEFENSIVE "attack|attacks|risk|risks|threat|threats|" DDOS_SHIELD
#define MALWARE_DEFENSIVE "scanner|scanners|scan|scanning|detection|detector|detectors|" \
                          "detect|detecting|protection|analysis|analyzer|analyser|removal|" \
                          "remover|signature|signatures|rule|rules|defense|defence|filter|" \
                          "filters|classifier|checker|report|reports|policy|policies|" \
                          "training|awareness|simulation|test|tests|sandbox|response"
#define SECURITY_WORDS "security|audit|auditing|auditd|antivirus|firewall|firewalls|edr|" \
                       "xdr|selinux|apparmor|defender|siem"
/* Words between "delete all" and what is deleted: "delete all of the
 * customer data", "delete all inactive users". */
#define ALLDET "?the|of|my|our|your|their|its|this|that|these|those|customer|customers|" \
               "user|users|production|prod|company|existing|stored|personal|registered|" \
               "active|inactive|old|remaining|tenant|tenants|app|application|sensitive|private"
/* Words between "write" and the malware: "write a python keylogger". */
#define MALDET "?a|an|the|some|my|our|new|custom|simple|basic|working|real|functional|" \
               "python|c|powershell|javascript|js|rust|go|bash|polymorphic|undetectable|" \
               "stealthy|small|tiny|piece|of|script|program"

static const intent_rule rules[] = {
    /* Dangerous: checked first, in order, first match wins. */
    {INTENT_DANGEROUS, "destructive.rm_rf_root",
     "delete the whole filesystem or a system directory (rm -rf /)",
     "rm ..2 rf|fr|r|rfv|rvf|frv|fvr|vrf|vfr|recursive ..4 " SYSPATH, 0.99},
    {INTENT_DANGEROUS, "destructive.drop_database",
     "drop database tables or whole databases",
     "drop " DET " " DET " " DET
     " table|tables|database|databases|db|dbs|schema|schemas|collection|collections", 0.97},
    {INTENT_DANGEROUS, "destructive.truncate_tables",
     "erase database tables (truncate)",
     "truncate " DET " " DET " table|tables|database|databases", 0.95},
    {INTENT_DANGEROUS, "destructive.delete_all_data",
     "delete all data or all users",
     "delete|erase|remove|purge|destroy|wipe|nuke|trash all|every " ALLDET " " ALLDET " "
     ALLDET " data|user|users|account|accounts|record|records|customer|customers|backup|backups|"
     "database|databases|row|rows|table|tables", 0.95},
    {INTENT_DANGEROUS, "destructive.delete_all_files",
     "delete all files",
     "delete|erase|remove|purge|destroy|wipe|nuke all|every ?the|my|your|our|their|of "
     "?the|my|your|our|their file|files", 0.95},
    {INTENT_DANGEROUS, "destructive.delete_everything",
     "delete everything",
     "delete|erase|remove|purge|destroy|wipe|nuke everything", 0.93},
    {INTENT_DANGEROUS, "destructive.format_disk",
     "format or wipe a disk",
     "format|reformat|wipe|erase|zero " DET " " DET " ?hard|system|boot|root|external " DISK,
     0.96},
    {INTENT_DANGEROUS, "destructive.format_c",
     "format or wipe a disk",
     "format|reformat c !code|string|strings|program|programs|source|sources|file|files|"
     "style|output|printf|function|functions|library|compiler|plus|sharp|and|or|to|in|as|"
     "with|language|header|headers|struct|structs|variable|variables|number|numbers", 0.96},
    {INTENT_DANGEROUS, "destructive.mkfs",
     "format or wipe a disk",
     "mkfs ..3 /dev/*", 0.96},
    {INTENT_DANGEROUS, "destructive.dd_device",
     "overwrite a disk device (dd)",
     "dd ..6 of /dev/sd*|/dev/nvme*|/dev/hd*|/dev/xvd*|/dev/vd*|/dev/disk*|/dev/mmcblk*", 0.96},
    {INTENT_DANGEROUS, "destructive.chmod_root",
     "make system directories world-writable (chmod 777 /)",
     "chmod ..2 777|0777|666|0666|000|0000 ..1 " SYSPATH, 0.94},
    {INTENT_DANGEROUS, "destructive.wipe",
     "wipe systems or data",
     "wipe ?out " DET " " DET " " DET
     " server|servers|system|systems|database|databases|data|" DISK "|"
     "machine|machines|everything|backup|backups|cluster|clusters|computer|computers|laptop|"
     "device|devices|network|logs|records|accounts|users", 0.94},
    {INTENT_DANGEROUS, "abusive.exfiltrate",
     "exfiltrate data",
     "exfiltrate|exfil", 0.96},
    {INTENT_DANGEROUS, "abusive.steal_credentials",
     "steal credentials or passwords",
     "steal|harvest|exfiltrate|phish|pilfer ..3 credential|credentials|password|passwords|"
     "passwd|login|logins|cookie|cookies|hash|hashes|secret|secrets|key|keys|token|tokens|"
     "account|accounts|identity|identities", 0.97},
    {INTENT_DANGEROUS, "abusive.crack_passwords",
     "steal credentials or passwords",
     "dump|sniff|crack|brute|bruteforce ..3 credential|credentials|password|passwords|"
     "passwd|logins|hash|hashes", 0.95},
    {INTENT_DANGEROUS, "abusive.disable_security",
     "disable security controls or audit logging",
     "disable|deactivate|bypass|evade|circumvent|defeat|kill|sabotage ..2 "
     SECURITY_WORDS, 0.95},
    {INTENT_DANGEROUS, "abusive.tamper_security",
     "disable security controls or audit logging",
     "tamper|mess|meddle with ..3 " SECURITY_WORDS "|log|logs|logging", 0.95},
    {INTENT_DANGEROUS, "abusive.turn_off_security",
     "disable security controls or audit logging",
     "turn|switch|shut off|down ..3 " SECURITY_WORDS, 0.95},
    {INTENT_DANGEROUS, "abusive.erase_audit_logs",
     "erase or tamper with audit logs",
     "delete|clear|erase|purge|wipe|truncate|falsify|forge|alter|shred ..2 "
     "audit|security|event log|logs|trail|trails|records", 0.95},
    {INTENT_DANGEROUS, "abusive.cover_tracks",
     "erase or tamper with audit logs",
     "cover ?my|your|our|their|the tracks", 0.9},
    {INTENT_DANGEROUS, "abusive.malware",
     "write malware (ransomware, keyloggers, viruses, trojans)",
     "write|create|build|make|code|develop|generate|design|program|craft|deploy|spread|"
     "distribute|deliver|install|plant " MALDET " " MALDET " " MALDET
     " ransomware|malware|keylogger|keyloggers|virus|"
     "viruses|trojan|trojans|rootkit|rootkits|botnet|botnets|spyware|backdoor|backdoors|"
     "infostealer|infostealers|cryptolocker !" MALWARE_DEFENSIVE, 0.96},
    {INTENT_DANGEROUS, "abusive.ddos",
     "launch a denial-of-service (DDoS) attack",
     "launch|perform|run|start|conduct|execute|orchestrate|mount|carry|stage|coordinate|"
     "organize|organise ?a|an|the|this|that|massive|large|big|huge|distributed|coordinated "
     "?a|an|massive|large|big|huge|distributed|coordinated ddos|dos|denial !commands|command|"
     "prompt|shell|box|mode|games|game|program|programs|batch|window|windows|emulator|boot|"
     DDOS_SHIELD, 0.96},
    {INTENT_DANGEROUS, "abusive.ddos_target",
     "launch a denial-of-service (DDoS) attack",
     "ddos|dos ?the|a|an|this|that|their|my|our|his|her|some|your ?rival|competing|local "
     "site|sites|website|websites|server|servers|network|networks|service|services|competitor|"
     "competitors|host|hosts|ip|company|domain|game|school|api|endpoint|target|victim|them|him|"
     "her|someone|somebody|people|ex|business", 0.96},
    {INTENT_DANGEROUS, "abusive.ddos_howto",
     "launch a denial-of-service (DDoS) attack",
     "how to|do|can|could|would|should ?i|we|you|one ddos !" DDOS_DEFENSIVE, 0.93},
    {INTENT_DANGEROUS, "abusive.ddos_want",
     "launch a denial-of-service (DDoS) attack",
     "me|i|we|lets|wanna|gonna ddos !" DDOS_DEFENSIVE, 0.93},

    /* Security. */
    {INTENT_SECURITY, "security.vulnerability", "vulnerabilities and CVEs",
     "vulnerabilit*|vuln|vulns|vulnerable|cve|cves|cwe|exploit|exploits|exploitable|0day|"
     "zeroday", 0.85},
    {INTENT_SECURITY, "security.auth", "authentication and authorization",
     "auth|authn|authz|authentication|authenticate|authenticated|authorization|authorisation|"
     "authorize|authorise|oauth|oauth2|oidc|saml|sso|mfa|2fa|totp|login|logins|jwt|jwts|jwks",
     0.8},
    {INTENT_SECURITY, "security.permissions", "permissions and access control",
     "permission|permissions|rbac|abac|acl|acls|privilege|privileges|entitlement|entitlements",
     0.8},
    {INTENT_SECURITY, "security.access_control", "permissions and access control",
     "access control|controls|policy|policies", 0.8},
    {INTENT_SECURITY, "security.secrets", "tokens, secrets and credentials",
     "token|tokens|secret|secrets|credential|credentials|password|passwords|passphrase|"
     "apikey|apikeys", 0.75},
    {INTENT_SECURITY, "security.api_keys", "tokens, secrets and credentials",
     "api|ssh|private|signing key|keys", 0.8},
    {INTENT_SECURITY, "security.encryption", "encryption and certificates",
     "encrypt*|decrypt*|cipher|ciphers|tls|ssl|mtls|https|certificate|certificates|cert|certs|"
     "kms|hsm|bcrypt|argon2|aes|rsa|hmac", 0.85},
    {INTENT_SECURITY, "security.audit", "audit and compliance",
     "audit|audits|auditing|auditor|auditors|compliance|soc2|gdpr|hipaa|pci", 0.8},
    {INTENT_SECURITY, "security.threats", "threats and attacks",
     "security|secure|securing|threat|threats|attack|attacks|attacker|attackers|malware|"
     "ransomware|phishing|xss|csrf|ssrf|sqli|injection|pentest|pentesting|penetration|"
     "firewall|intrusion|breach|breaches|ddos|hardening|harden|exfiltration|spoofing", 0.85},

    /* Admin. */
    {INTENT_ADMIN, "admin.tenants", "tenants", "tenant|tenants|tenancy|multitenant", 0.85},
    {INTENT_ADMIN, "admin.user_management", "user management",
     "add|create|invite|remove|delete|disable|suspend|onboard|offboard|deactivate|provision "
     "..2 user|users|account|accounts|member|members|operator|operators", 0.85},
    {INTENT_ADMIN, "admin.users", "users and roles",
     "users|accounts|members|roles", 0.6},
    {INTENT_ADMIN, "admin.quotas", "quotas and rate limits", "quota|quotas", 0.85},
    {INTENT_ADMIN, "admin.rate_limits", "quotas and rate limits",
     "rate limit|limits|limiting|limited|limiter", 0.85},
    {INTENT_ADMIN, "admin.throttling", "quotas and rate limits",
     "ratelimit*|throttl*", 0.85},
    {INTENT_ADMIN, "admin.configuration", "configuration",
     "configur*|config|configs|setting|settings", 0.75},
    {INTENT_ADMIN, "admin.deploy", "deployment",
     "deploy*|redeploy*|rollout|rollouts|rollback|rollbacks|release|releases|upgrade|"
     "upgrades|migration|migrations", 0.8},
    {INTENT_ADMIN, "admin.restart", "restarts and capacity",
     "restart*|reboot*|shutdown|scale|scaling|autoscal*|drain|failover", 0.8},
    {INTENT_ADMIN, "admin.admin", "administration",
     "admin|admins|administrator|administrators|administration|operator|operators", 0.7},

    /* Graph. */
    {INTENT_GRAPH, "graph.graph", "graphs",
     "graph|graphs|subgraph|subgraphs|digraph|dag|dags|topology|topologies", 0.85},
    {INTENT_GRAPH, "graph.nodes", "nodes and vertices",
     "node|nodes|vertex|vertices|vertexes", 0.7},
    {INTENT_GRAPH, "graph.edges", "edges", "edge|edges", 0.75},
    {INTENT_GRAPH, "graph.relationships", "relationships",
     "relationship|relationships|relation|relations", 0.75},
    {INTENT_GRAPH, "graph.dependencies", "dependencies",
     "dependenc*|depends|dependents|dependent", 0.75},
    {INTENT_GRAPH, "graph.path_between", "paths between things",
     "path|paths|route|routes|hops|link|links ..2 between", 0.85},
    {INTENT_GRAPH, "graph.path_from_to", "paths between things",
     "path|paths|route|routes ..1 from ..4 to", 0.75},
    {INTENT_GRAPH, "graph.shortest_path", "paths between things",
     "shortest|longest path|paths|route|routes", 0.85},
    {INTENT_GRAPH, "graph.neighbours", "neighbours and adjacency",
     "neighbor|neighbors|neighbour|neighbours|neighborhood|neighbourhood|adjacent|adjacency",
     0.8},
    {INTENT_GRAPH, "graph.traversal", "graph traversal",
     "traverse|traversal|traversing|bfs|dfs|acyclic|cyclic", 0.7},
    /* A knowledge graph: entities, the relations between them, and the
     * observations recorded about each. */
    {INTENT_GRAPH, "graph.knowledge_graph", "a knowledge graph",
     "knowledge graph|graphs|base|bases", 0.9},
    {INTENT_GRAPH, "graph.entities", "entities of a knowledge graph",
     "entity|entities", 0.75},
    {INTENT_GRAPH, "graph.observations", "observations about entities",
     "observation|observations", 0.7},
    {INTENT_GRAPH, "graph.connected_to", "what something is connected to",
     "who|what|whom|which ..3 connected|linked|related|tied|attached to|with", 0.85},
    {INTENT_GRAPH, "graph.connections", "what something is connected to",
     "connection|connections ..3 between|of|to|with", 0.75},
};

#define NRULES (sizeof(rules) / sizeof(rules[0]))

const char *intent_name(intent_class cls)
{
    switch (cls) {
    case INTENT_CHAT: return "chat";
    case INTENT_GRAPH: return "graph";
    case INTENT_SECURITY: return "security";
    case INTENT_ADMIN: return "admin";
    case INTENT_DANGEROUS: return "dangerous";
    }
    return "chat";
}

/* ---- normalisation into words ---------------------------------------- */

typedef struct word {
    size_t off;
    size_t len;
} word;

typedef struct words {
    char *buf;      /* normalised text; words point into it */
    word *w;
    size_t n, cap;
} words;

static bool is_ascii_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

enum { U_NONE, U_INVISIBLE, U_SPACE };

/* Recognises the UTF-8 sequences used to break up words invisibly (zero
 * width characters, soft hyphen: dropped so "dr\u200bop" reads "drop")
 * and the Unicode spaces (separate words like an ASCII space). Returns
 * the sequence length and sets *kind, or 0. */
static size_t utf8_special(const unsigned char *s, size_t left, int *kind)
{
    *kind = U_NONE;
    if (left >= 2 && s[0] == 0xC2) {
        if (s[1] == 0xAD) { *kind = U_INVISIBLE; return 2; }   /* soft hyphen */
        if (s[1] == 0xA0) { *kind = U_SPACE; return 2; }       /* no-break space */
    }
    if (left >= 3 && s[0] == 0xE2 && s[1] == 0x80) {
        if (s[2] >= 0x8B && s[2] <= 0x8D) { *kind = U_INVISIBLE; return 3; } /* ZWSP/ZWNJ/ZWJ */
        if (s[2] <= 0x8A || s[2] == 0xAF) { *kind = U_SPACE; return 3; }     /* en..hair, NNBSP */
        if (s[2] == 0xA8 || s[2] == 0xA9) { *kind = U_SPACE; return 3; }     /* line/para sep */
    }
    if (left >= 3 && s[0] == 0xE2 && s[1] == 0x81) {
        if (s[2] == 0xA0) { *kind = U_INVISIBLE; return 3; }  /* word joiner */
        if (s[2] == 0x9F) { *kind = U_SPACE; return 3; }      /* math space */
    }
    if (left >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        *kind = U_INVISIBLE; return 3;                        /* BOM / ZWNBSP */
    }
    if (left >= 3 && s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) {
        *kind = U_SPACE; return 3;                            /* ideographic space */
    }
    return 0;
}

static int words_push(words *ws, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 64;
        word *w = realloc(ws->w, cap * sizeof(*w));
        if (!w)
            return -1;
        ws->w = w;
        ws->cap = cap;
    }
    ws->w[ws->n].off = off;
    ws->w[ws->n].len = len;
    ws->n++;
    return 0;
}

/* Characters that end a path word besides spaces: quotes and closers. */
static bool ends_path(unsigned char c)
{
    return c == '"' || c == '\'' || c == '`' || c == ')' || c == ']' || c == '}' ||
           c == '>' || c == ',' || c == ';' || c < 0x20 || c == 0x7F;
}

/* Copies the path starting at s[i] into buf at *o, normalised: lowercase,
 * trailing sentence punctuation dropped, then trailing "/" and slash-star
 * dropped so "/", slash-star and "//" all read "/" and "~/" reads "~". */
static size_t copy_path(const unsigned char *s, size_t len, size_t i, char *buf, size_t *o)
{
    size_t start = *o, j = i;

    while (j < len && !is_ascii_space(s[j]) && !ends_path(s[j])) {
        int kind;
        size_t k = (s[j] >= 0x80) ? utf8_special(s + j, len - j, &kind) : 0;
        if (k && kind == U_SPACE)
            break;
        if (k) {                /* invisible: skip it */
            j += k;
            continue;
        }
        buf[(*o)++] = (char)ascii_lower(s[j]);
        j++;
    }
    size_t plen = *o - start;
    char *p = buf + start;
    while (plen > 1 && strchr(".!?:", p[plen - 1]))
        plen--;
    for (;;) {
        if (plen >= 2 && p[plen - 2] == '/' && p[plen - 1] == '*')
            plen -= 2;
        else if (plen >= 2 && p[plen - 1] == '/')
            plen--;
        else
            break;
    }
    if (plen == 0) {            /* it was slash-star */
        p[0] = '/';
        plen = 1;
    }
    *o = start + plen;
    return j;
}

static void words_free(words *ws)
{
    free(ws->buf);
    free(ws->w);
    memset(ws, 0, sizeof(*ws));
}

/* Splits text into normalised words (see intent.h). Returns 0 or -1. */
static int words_split(const char *text, size_t len, words *ws)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, o = 0, wstart = 0;
    bool in_word = false, path_ok = true;

    memset(ws, 0, sizeof(*ws));
    ws->buf = malloc(len + 1);
    if (!ws->buf)
        return -1;

    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            int kind;
            size_t k = utf8_special(s + i, len - i, &kind);
            if (k && kind == U_INVISIBLE) {
                i += k;
                continue;
            }
            if (k && kind == U_SPACE) {
                if (in_word && words_push(ws, wstart, o - wstart) < 0)
                    goto oom;
                in_word = false;
                path_ok = true;
                i += k;
                continue;
            }
        }
        if (c >= 0x80 || is_ascii_alnum(c)) {
            if (!in_word) {
                in_word = true;
                wstart = o;
            }
            ws->buf[o++] = (char)ascii_lower(c);
            path_ok = false;
            i++;
            continue;
        }
        if (in_word && words_push(ws, wstart, o - wstart) < 0)
            goto oom;
        in_word = false;
        if ((c == '/' || c == '~') && path_ok) {
            size_t pstart = o;
            i = copy_path(s, len, i, ws->buf, &o);
            if (words_push(ws, pstart, o - pstart) < 0)
                goto oom;
            path_ok = false;
            continue;
        }
        /* A path may follow a space, an opening quote or bracket, or '='
         * (dd's of=/dev/sda); after other punctuation '/' only separates
         * ("and/or", "data/users"). */
        path_ok = is_ascii_space(c) || c == '"' || c == '\'' || c == '`' || c == '(' ||
                  c == '[' || c == '{' || c == '<' || c == '=';
        i++;
    }
    if (in_word && words_push(ws, wstart, o - wstart) < 0)
        goto oom;
    ws->buf[o] = '\0';
    return 0;
oom:
    words_free(ws);
    return -1;
}

/* ---- patterns --------------------------------------------------------- */

#define PAT_MAX_ELEMS 16

typedef enum { EL_WORD, EL_OPT, EL_NOT, EL_GAP } el_kind;

typedef struct elem {
    el_kind kind;
    const char *alts;   /* "a|b|c*" */
    size_t len;
    int gap;            /* EL_GAP: up to this many words */
} elem;

static bool alts_valid(const char *a, size_t len)
{
    if (len == 0 || a[0] == '|' || a[len - 1] == '|')
        return false;
    for (size_t i = 1; i < len; i++)
        if (a[i] == '|' && a[i - 1] == '|')
            return false;
    return true;
}

/* Parses pattern into e[]. Returns the element count, or -1 if malformed. */
static int pattern_parse(const char *pattern, elem e[PAT_MAX_ELEMS])
{
    int n = 0;
    const char *p = pattern;

    if (!pattern || !*pattern)
        return -1;
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || n == PAT_MAX_ELEMS)
            return -1;
        elem *el = &e[n];
        memset(el, 0, sizeof(*el));
        if (len >= 2 && p[0] == '.' && p[1] == '.') {
            if (len != 3 || p[2] < '1' || p[2] > '9')
                return -1;
            el->kind = EL_GAP;
            el->gap = p[2] - '0';
        } else {
            el->kind = p[0] == '?' ? EL_OPT : p[0] == '!' ? EL_NOT : EL_WORD;
            el->alts = el->kind == EL_WORD ? p : p + 1;
            el->len = el->kind == EL_WORD ? len : len - 1;
            if (!alts_valid(el->alts, el->len))
                return -1;
        }
        n++;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return -1;      /* trailing space */
    }
    if (e[0].kind != EL_WORD || e[n - 1].kind == EL_GAP)
        return -1;
    return n;
}

static bool alts_match(const elem *el, const char *w, size_t wlen)
{
    const char *a = el->alts, *end = el->alts + el->len;

    while (a < end) {
        const char *bar = memchr(a, '|', (size_t)(end - a));
        size_t alen = bar ? (size_t)(bar - a) : (size_t)(end - a);
        if (alen >= 2 && a[alen - 1] == '*') {
            if (wlen >= alen - 1 && memcmp(w, a, alen - 1) == 0)
                return true;
        } else if (wlen == alen && memcmp(w, a, alen) == 0) {
            return true;
        }
        if (!bar)
            break;
        a = bar + 1;
    }
    return false;
}

static bool word_matches(const words *ws, size_t wi, const elem *el)
{
    return alts_match(el, ws->buf + ws->w[wi].off, ws->w[wi].len);
}

/* Backtracking over the few choice points optional words and gaps leave;
 * gaps are at most 9 words and patterns short, so this stays cheap. */
static bool match_here(const words *ws, size_t wi, const elem *e, int ne)
{
    if (ne == 0)
        return true;
    switch (e->kind) {
    case EL_WORD:
        return wi < ws->n && word_matches(ws, wi, e) && match_here(ws, wi + 1, e + 1, ne - 1);
    case EL_OPT:
        if (wi < ws->n && word_matches(ws, wi, e) && match_here(ws, wi + 1, e + 1, ne - 1))
            return true;
        return match_here(ws, wi, e + 1, ne - 1);
    case EL_NOT:
        if (wi < ws->n && word_matches(ws, wi, e))
            return false;
        return match_here(ws, wi, e + 1, ne - 1);
    case EL_GAP:
        for (int k = 0; k <= e->gap && wi + (size_t)k <= ws->n; k++)
            if (match_here(ws, wi + (size_t)k, e + 1, ne - 1))
                return true;
        return false;
    }
    return false;
}

static bool match_words(const words *ws, const elem *e, int ne)
{
    for (size_t wi = 0; wi < ws->n; wi++)
        if (word_matches(ws, wi, e) && match_here(ws, wi, e, ne))
            return true;
    return false;
}

/* 1 match, 0 none, -1 malformed pattern. */
static int rule_matches(const words *ws, const char *pattern)
{
    elem e[PAT_MAX_ELEMS];
    int ne = pattern_parse(pattern, e);
    if (ne < 0)
        return -1;
    return match_words(ws, e, ne) ? 1 : 0;
}

int intent_match(const char *text, size_t len, const char *pattern)
{
    words ws;
    elem e[PAT_MAX_ELEMS];
    int ne = pattern_parse(pattern, e);

    if (ne < 0 || (!text && len))
        return -1;
    if (words_split(text ? text : "", len, &ws) < 0)
        return -1;
    int r = match_words(&ws, e, ne) ? 1 : 0;
    words_free(&ws);
    return r;
}

int intent_rules_check(char *err, size_t err_size)
{
    elem e[PAT_MAX_ELEMS];

    for (size_t i = 0; i < NRULES; i++) {
        if (pattern_parse(rules[i].pattern, e) < 0 || rules[i].weight <= 0 ||
            rules[i].weight >= 1) {
            if (err && err_size)
                snprintf(err, err_size, "rule %s is malformed", rules[i].id);
            return -1;
        }
    }
    return 0;
}

/* ---- classification --------------------------------------------------- */

static void set_default(intent_result *out)
{
    out->cls = INTENT_CHAT;
    out->rule_id = "default";
    out->description = "no specific rule matched: general conversation";
    out->confidence = 0.6;
    out->hits = 0;
}

/* Scores the non-dangerous classes and fills *out with the winner. */
static void classify_benign(const words *ws, intent_result *out)
{
    /* The order ties are broken in: the more careful reading first. */
    static const intent_class order[] = {INTENT_SECURITY, INTENT_ADMIN, INTENT_GRAPH};
    double score[INTENT_DANGEROUS + 1] = {0};
    int hits[INTENT_DANGEROUS + 1] = {0};
    const intent_rule *best[INTENT_DANGEROUS + 1] = {0};

    for (size_t i = 0; i < NRULES; i++) {
        const intent_rule *r = &rules[i];
        if (r->cls == INTENT_DANGEROUS || rule_matches(ws, r->pattern) != 1)
            continue;
        score[r->cls] += r->weight;
        hits[r->cls]++;
        if (!best[r->cls] || r->weight > best[r->cls]->weight)
            best[r->cls] = r;
    }
    intent_class win = INTENT_CHAT;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        intent_class c = order[k];
        if (hits[c] && (win == INTENT_CHAT || score[c] > score[win]))
            win = c;
    }
    if (win == INTENT_CHAT)
        return;
    double conf = best[win]->weight + 0.04 * (hits[win] - 1);
    out->cls = win;
    out->rule_id = best[win]->id;
    out->description = best[win]->description;
    out->confidence = conf > 0.97 ? 0.97 : conf;
    out->hits = hits[win];
}

int intent_classify(const char *text, size_t len, intent_result *out)
{
    words ws;

    if (!out)
        return -1;
    set_default(out);
    if (!text)
        return -1;
    if (words_split(text, len, &ws) < 0)
        return -1;
    for (size_t i = 0; i < NRULES; i++) {
        const intent_rule *r = &rules[i];
        if (r->cls == INTENT_DANGEROUS && rule_matches(&ws, r->pattern) == 1) {
            out->cls = INTENT_DANGEROUS;
            out->rule_id = r->id;
            out->description = r->description;
            out->confidence = r->weight;
            out->hits = 1;
            words_free(&ws);
            return 0;
        }
    }
    classify_benign(&ws, out);
    words_free(&ws);
    return 0;
}

/* ---- the model's opinion ---------------------------------------------- */

int intent_is_confident(const intent_result *r)
{
    return r && (r->cls == INTENT_DANGEROUS || r->confidence >= INTENT_CONFIDENT);
}

int intent_parse_label(const char *text, size_t len, intent_class *cls)
{
    static const intent_class all[] = {INTENT_CHAT, INTENT_GRAPH, INTENT_SECURITY,
                                       INTENT_ADMIN, INTENT_DANGEROUS};
    if (!text || !cls)
        return -1;
    while (len > 0 && is_ascii_space((unsigned char)text[0])) {
        text++;
        len--;
    }
    while (len > 0 && is_ascii_space((unsigned char)text[len - 1]))
        len--;
    if (len > 0 && text[len - 1] == '.')
        len--;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *name = intent_name(all[i]);
        size_t n = strlen(name);
        if (len != n)
            continue;
        size_t k = 0;
        while (k < n && ascii_lower((unsigned char)text[k]) == (unsigned char)name[k])
            k++;
        if (k == n) {
            *cls = all[i];
            return 0;
        }
    }
    return -1;
}

void intent_set_from_llm(intent_result *out, intent_class cls)
{
    static const char *const desc[] = {
        [INTENT_CHAT] = "the language model read it as general conversation",
        [INTENT_GRAPH] = "the language model read it as a graph question",
        [INTENT_SECURITY] = "the language model read it as a security question",
        [INTENT_ADMIN] = "the language model read it as an administrative request",
        [INTENT_DANGEROUS] = "pursue a goal the language model judged destructive or abusive",
    };
    out->cls = cls;
    out->rule_id = "llm";
    out->description = desc[cls];
    out->confidence = 0.8;
    out->hits = 0;
}
