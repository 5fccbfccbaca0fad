/*
 * schema_format.c - checks for the "format" values common/schema.c
 * knows (see schema_format.h).
 *
 * Each check is a small hand-written scanner over ASCII: no locale, no
 * regular expressions, linear in the string's length. Where an RFC allows
 * more than tool arguments plausibly need, the check takes a stated
 * subset (an email's local part is a dot-atom, never a quoted string)
 * and refuses the rest: a format check may be stricter than the RFC,
 * never looser.
 */
#include <string.h>

#include "schema_format.h"
#include "uuid.h"

static const struct {
    const char *name;
    schema_format format;
    const char *phrase;
} formats[] = {
    {"date-time", SCHEMA_FORMAT_DATE_TIME, "a date-time (RFC 3339)"},
    {"date",      SCHEMA_FORMAT_DATE,      "a date (YYYY-MM-DD)"},
    {"uuid",      SCHEMA_FORMAT_UUID,      "a UUID"},
    {"email",     SCHEMA_FORMAT_EMAIL,     "an email address"},
    {"uri",       SCHEMA_FORMAT_URI,       "an absolute URI"},
    {"ipv4",      SCHEMA_FORMAT_IPV4,      "an IPv4 address"},
    {"ipv6",      SCHEMA_FORMAT_IPV6,      "an IPv6 address"},
};

#define N_FORMATS (sizeof formats / sizeof formats[0])

schema_format schema_format_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_FORMATS; i++)
        if (strcmp(formats[i].name, name) == 0)
            return formats[i].format;
    return SCHEMA_FORMAT_NONE;
}

const char *schema_format_phrase(schema_format f)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i].format == f)
            return formats[i].phrase;
    return "valid";
}

/* ---- character classes (ASCII, whatever the locale) ------------------------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(char c)   { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

/* RFC 3986 unreserved and sub-delims. */
static bool is_unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(char c)
{
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* Reads exactly n digits at *p into *out. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* ---- date and date-time (RFC 3339 section 5.6) ----------------------------- */

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* full-date: YYYY-MM-DD with a day that exists. */
static bool read_date(const char **p)
{
    int y, m, d;
    if (!digits(p, 4, &y) || **p != '-')
        return false;
    (*p)++;
    if (!digits(p, 2, &m) || m < 1 || m > 12 || **p != '-')
        return false;
    (*p)++;
    return digits(p, 2, &d) && d >= 1 && d <= days_in_month(y, m);
}

/*
 * full-time: HH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). A leap second (:60)
 * is only valid when it falls at 23:59 UTC, so the offset is applied to
 * check that.
 */
static bool read_time(const char **p)
{
    int h, m, s, oh = 0, om = 0, sign = 0;
    if (!digits(p, 2, &h) || h > 23 || **p != ':')
        return false;
    (*p)++;
    if (!digits(p, 2, &m) || m > 59 || **p != ':')
        return false;
    (*p)++;
    if (!digits(p, 2, &s) || s > 60)
        return false;
    if (**p == '.') {
        (*p)++;
        if (!is_digit(**p))
            return false;
        while (is_digit(**p))
            (*p)++;
    }
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
    } else if (**p == '+' || **p == '-') {
        sign = **p == '+' ? 1 : -1;
        (*p)++;
        if (!digits(p, 2, &oh) || oh > 23 || **p != ':')
            return false;
        (*p)++;
        if (!digits(p, 2, &om) || om > 59)
            return false;
    } else {
        return false;
    }
    if (s == 60) {
        int utc = ((h * 60 + m - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool is_date(const char *s)
{
    return read_date(&s) && *s == '\0';
}

static bool is_date_time(const char *s)
{
    if (!read_date(&s) || (*s != 'T' && *s != 't'))
        return false;
    s++;
    return read_time(&s) && *s == '\0';
}

/* ---- IP addresses ---------------------------------------------------------- */

/* Dotted quad from *p, each part 0-255 without leading zeros; stops at
 * the first character after it. */
static bool read_ipv4(const char **p)
{
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (**p != '.')
                return false;
            (*p)++;
        }
        int n = 0, v = 0;
        while (is_digit((*p)[n]) && n < 4) {
            v = v * 10 + ((*p)[n] - '0');
            n++;
        }
        if (n == 0 || n > 3 || v > 255 || (n > 1 && **p == '0'))
            return false;
        *p += n;
    }
    return true;
}

static bool is_ipv4(const char *s)
{
    return read_ipv4(&s) && *s == '\0';
}

/*
 * RFC 4291 section 2.2: eight groups of 1-4 hex digits, at most one "::"
 * standing for one or more zero groups, the last 32 bits optionally as a
 * dotted quad. Reads up to end (a NUL or, inside a URI, the ']').
 */
static bool is_ipv6_until(const char *s, char end)
{
    int groups = 0;
    bool compressed = false;
    const char *p = s;

    if (p[0] == ':') {
        if (p[1] != ':')
            return false;
        compressed = true;
        p += 2;
        if (*p == end)
            return true;
    }
    for (;;) {
        int n = 0;
        while (is_hex(p[n]) && n < 5)
            n++;
        if (p[n] == '.') {          /* the dotted-quad tail */
            if (!read_ipv4(&p) || *p != end)
                return false;
            groups += 2;
            break;
        }
        if (n == 0 || n > 4)
            return false;
        groups++;
        p += n;
        if (*p == end)
            break;
        if (*p != ':' || groups >= 8)
            return false;
        p++;
        if (*p == ':') {
            if (compressed)
                return false;
            compressed = true;
            p++;
            if (*p == end)
                break;
        } else if (*p == end) {
            return false;           /* a single trailing colon */
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

static bool is_ipv6(const char *s)
{
    return is_ipv6_until(s, '\0');
}

/* ---- host names and email -------------------------------------------------- */

/* RFC 1123 host name from s to end: dot-separated labels of 1-63 letters,
 * digits and hyphens, not starting or ending with a hyphen, 253 at most. */
static bool is_hostname(const char *s, const char *end)
{
    if (end - s < 1 || end - s > 253)
        return false;
    const char *label = s;
    for (const char *p = s; p <= end; p++) {
        if (p < end && *p != '.') {
            if (!is_alpha(*p) && !is_digit(*p) && *p != '-')
                return false;
            continue;
        }
        long n = p - label;
        if (n < 1 || n > 63 || label[0] == '-' || p[-1] == '-')
            return false;
        label = p + 1;
    }
    return true;
}

/* RFC 5322 atext: what a dot-atom's parts are made of. */
static bool is_atext(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* An IP literal of an email domain: [1.2.3.4] or [IPv6:...]. */
static bool is_address_literal(const char *s, const char *end)
{
    if (end - s < 3 || s[0] != '[' || end[-1] != ']')
        return false;
    s++;
    if (strncmp(s, "IPv6:", 5) == 0)
        return is_ipv6_until(s + 5, ']') && strchr(s + 5, ']') == end - 1;
    return read_ipv4(&s) && s == end - 1;
}

/*
 * local@domain where local is a dot-atom of 1-64 characters (no quoted
 * strings, no comments) and domain a host name or an address literal.
 */
static bool is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at - s > 64)
        return false;
    for (const char *p = s; p < at; p++) {
        if (*p == '.') {
            if (p == s || p + 1 == at || p[1] == '.')
                return false;
        } else if (!is_atext(*p)) {
            return false;
        }
    }
    const char *domain = at + 1, *end = domain + strlen(domain);
    if (*domain == '[')
        return is_address_literal(domain, end);
    return is_hostname(domain, end);
}

/* ---- URI (RFC 3986 section 3) --------------------------------------------- */

/* A percent escape at p: '%' and two hex digits. */
static bool is_pct(const char *p)
{
    return p[0] == '%' && is_hex(p[1]) && is_hex(p[2]);
}

/* Characters of userinfo, reg-name, path, query or fragment: unreserved,
 * sub-delims, percent escapes and the extra ones given. Returns the end. */
static const char *scan_chars(const char *p, const char *extra)
{
    for (;;) {
        if (is_pct(p))
            p += 3;
        else if (is_unreserved(*p) || is_sub_delim(*p) || (*p != '\0' && strchr(extra, *p)))
            p++;
        else
            return p;
    }
}

/* IP-literal = "[" ( IPv6address / IPvFuture ) "]", from just after "[". */
static bool read_ip_literal(const char **p)
{
    const char *close = strchr(*p, ']');
    if (close == NULL)
        return false;
    if (**p == 'v' || **p == 'V') {
        const char *q = *p + 1;
        if (!is_hex(*q))
            return false;
        while (is_hex(*q))
            q++;
        if (*q++ != '.')
            return false;
        const char *r = q;
        while (is_unreserved(*r) || is_sub_delim(*r) || *r == ':')
            r++;
        if (r == q || r != close)
            return false;
    } else if (!is_ipv6_until(*p, ']')) {
        return false;
    }
    *p = close + 1;
    return true;
}

/* authority = [ userinfo "@" ] host [ ":" port ], from just after "//". */
static const char *read_authority(const char *p)
{
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        if (scan_chars(p, ":") != at)
            return NULL;
        p = at + 1;
    }
    if (*p == '[') {
        p++;
        if (!read_ip_literal(&p))
            return NULL;
    } else {
        p = scan_chars(p, "");
    }
    if (*p == ':') {
        p++;
        while (is_digit(*p))
            p++;
    }
    return p == end ? p : NULL;
}

/* scheme ":" hier-part [ "?" query ] [ "#" fragment ], ASCII only. */
static bool is_uri(const char *s)
{
    const char *p = s;
    if (!is_alpha(*p))
        return false;
    while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (*p++ != ':')
        return false;
    if (p[0] == '/' && p[1] == '/') {
        p = read_authority(p + 2);
        if (p == NULL)
            return false;
    }
    p = scan_chars(p, ":@/");
    if (*p == '?')
        p = scan_chars(p + 1, ":@/?");
    if (*p == '#')
        p = scan_chars(p + 1, ":@/?");
    return *p == '\0';
}

bool schema_format_check(schema_format f, const char *s)
{
    switch (f) {
    case SCHEMA_FORMAT_DATE_TIME: return is_date_time(s);
    case SCHEMA_FORMAT_DATE:      return is_date(s);
    case SCHEMA_FORMAT_UUID:      return uuid_parse(s, NULL);
    case SCHEMA_FORMAT_EMAIL:     return is_email(s);
    case SCHEMA_FORMAT_URI:       return is_uri(s);
    case SCHEMA_FORMAT_IPV4:      return is_ipv4(s);
    case SCHEMA_FORMAT_IPV6:      return is_ipv6(s);
    case SCHEMA_FORMAT_NONE:      break;
    }
    return true;
}
