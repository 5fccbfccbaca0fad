/*
 * intent.h - rule-based classification of an agent run's prompt.
 *
 * A prompt falls into one of five classes: chat, graph, security, admin or
 * dangerous. Dangerous prompts (destructive or abusive goals) are refused
 * by the orchestrator before any plan runs, so their rules are checked
 * first and the first one that matches decides.
 *
 * Matching works on whole words of a normalised copy of the prompt:
 * ASCII case is folded, zero-width characters are dropped, Unicode spaces
 * and punctuation separate words, and "-rf" reads as "rf". So "DROP
 * TABLE", "drop\u00a0 table" and "drop_table" are all the words "drop
 * table", while "dropped" or "backdrop" never match "drop". A word that
 * starts with '/' or '~' after a space is kept whole as a path ("/", "~",
 * "/etc"), a trailing "/" or "/ *" (slash star) removed.
 *
 * The functions here are pure: no I/O, no global state; safe from any
 * thread.
 */
#ifndef AG_INTENT_H
#define AG_INTENT_H

#include <stddef.h>

typedef enum intent_class {
    INTENT_CHAT = 0,
    INTENT_GRAPH,
    INTENT_SECURITY,
    INTENT_ADMIN,
    INTENT_DANGEROUS,
} intent_class;

typedef struct intent_result {
    intent_class cls;
    const char *rule_id;     /* static; "default" when no rule matched */
    const char *description; /* static; for dangerous rules it completes
                                "This request was refused: it asks to ..." */
    double confidence;       /* 0 < confidence < 1 */
    int hits;                /* rules of the winning class that matched */
} intent_result;

/*
 * Classifies len bytes of text (UTF-8, need not be NUL-terminated) into
 * *out. Returns 0, or -1 when text or out is NULL or memory runs out (out
 * is then the chat default, which the caller must not rely on).
 */
int intent_classify(const char *text, size_t len, intent_result *out);

/* The lowercase name of cls: "chat", "graph", "security", "admin",
 * "dangerous". */
const char *intent_name(intent_class cls);

/*
 * Tests text (len bytes) against one word pattern in the rule syntax:
 * elements separated by single spaces, each one of
 *   a|b|c*   exactly one word equal to an alternative; a trailing '*' on an
 *            alternative of two or more characters matches by prefix
 *            ("vulnerabilit*", "/dev/sd*")
 *   ?a|b     optionally one such word
 *   !a|b     the text ends here or the next word is none of these
 *            (consumes nothing)
 *   ..N      up to N (1-9) words of anything
 * The first element must be a plain word element. Returns 1 on a match
 * anywhere in the text, 0 on none, -1 on a malformed pattern or no memory.
 */
int intent_match(const char *text, size_t len, const char *pattern);

/* ---- asking a language model when the rules are unsure ------------------- */

/* A rule result below this confidence (a prompt no rule matched is chat at
 * 0.6) is not final: when a real language model serves the run, the
 * orchestrator asks it, with INTENT_LLM_TASK as the task. Dangerous rule
 * matches are always final. */
#define INTENT_CONFIDENT 0.75

#define INTENT_LLM_TASK \
    "Classify the user's request into exactly one of these labels: chat, graph, " \
    "security, admin, dangerous. graph: nodes, edges, paths, dependencies, a knowledge " \
    "graph's entities, relations and observations, what is connected to what. security: " \
    "threats, vulnerabilities, authentication, secrets, compliance. admin: tenants, " \
    "users, roles, quotas, operating the platform. dangerous: a destructive or abusive " \
    "goal (deleting data, disabling security, malware, attacks). chat: anything else. " \
    "Reply with the label alone, one lowercase word, nothing else."

/* True when r needs no second opinion. */
int intent_is_confident(const intent_result *r);

/*
 * Parses a model's answer to INTENT_LLM_TASK strictly: after trimming
 * whitespace (and one trailing '.'), the whole answer must be one of the
 * five names, in any ASCII case. Returns 0 with *cls set, or -1 for
 * anything else (a sentence, two labels, an unknown word, NULL).
 */
int intent_parse_label(const char *text, size_t len, intent_class *cls);

/* Fills *out for a class the model chose: rule_id "llm", a description of
 * the class, confidence 0.8, hits 0. */
void intent_set_from_llm(intent_result *out, intent_class cls);

/*
 * Checks every built-in rule pattern parses. Returns 0, or -1 with the
 * offending rule id in err (err_size bytes). A build defect if it fails.
 */
int intent_rules_check(char *err, size_t err_size);

#endif
