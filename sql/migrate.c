/*
 * migrate.c - agentgate-migrate: brings a PostgreSQL database up to the
 * schema described by the numbered files DIR/NNN_name.sql.
 *
 * Each file is applied once, in version order, inside its own transaction
 * together with the schema_migrations row that records it, so a migration
 * is either wholly applied and recorded or not at all. The SHA-256 of every
 * applied file is kept; a file edited after it was applied stops the run
 * before anything changes, because the database no longer matches what the
 * file says. A session advisory lock serialises concurrent migrators (two
 * hosts starting at once): the second waits, then finds nothing to do.
 *
 * It connects as the schema's owner, AGENTGATE_MIGRATE_DATABASE_URL, or
 * else AGENTGATE_DATABASE_URL: since 006_security.sql the services log in
 * as a non-owner role that may not change the schema.
 *
 * PostgreSQL may still be starting when this runs (at boot, in a fresh
 * stack): while the server cannot be reached or is not yet accepting
 * connections, it tries again with a doubling pause (100 ms up to 5 s) for
 * up to --wait / AGENTGATE_MIGRATE_WAIT_S seconds, one line per try, and
 * only then gives up. A server that answers and refuses (a password, an
 * unknown database) is not waited for. A configuration error (bad option,
 * settings that do not load, a connection string that does not parse)
 * exits 2 at once, the status the systemd units do not restart on.
 *
 * This is a tool run before the services start, so plain blocking libpq
 * calls are fine here.
 */

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libpq-fe.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "cliopt.h"
#include "clock.h"
#include "config.h"
#include "version.h"

#define PROG "agentgate-migrate"

/* A fixed key for pg_advisory_lock: the ASCII bytes of "agentgat". Every
 * migrator of every version uses the same key, so they exclude each other. */
#define MIGRATE_LOCK_KEY "7018690069353947508"

#define MAX_MIGRATIONS      1000
#define MAX_MIGRATION_BYTES (16 * 1024 * 1024)
#define MAX_NAME            200
#define CHECKSUM_HEX        65   /* 64 hex digits and the NUL */

/* Waiting for PostgreSQL: the first pause, the longest, and the most
 * seconds --wait takes (the setting's own bound). */
#define WAIT_FIRST_MS       100
#define WAIT_STEP_MAX_MS    5000
#define WAIT_MAX_S          86400
/* connect_timeout of one try, in seconds (libpq's floor is 2). */
#define CONNECT_TIMEOUT_S   10
#define CONNECT_TIMEOUT_MIN_S 2

typedef struct migration {
    int    version;
    char   file[MAX_NAME + 16];        /* base name, "001_core.sql" */
    char   name[MAX_NAME + 1];         /* "core" */
    char   checksum[CHECKSUM_HEX];     /* of the file on disk */
    char  *sql;                        /* file contents, NUL-terminated */
    size_t sql_len;
    bool   applied;                    /* a schema_migrations row exists */
    char   applied_checksum[CHECKSUM_HEX];
    char   applied_at[64];
} migration;

/* A schema_migrations row whose file is no longer in the directory. */
typedef struct orphan {
    int  version;
    char name[MAX_NAME + 1];
    char applied_at[64];
} orphan;

typedef struct plan {
    migration *m;       /* files found, sorted by version */
    int        count;
    orphan    *orphans; /* applied rows with no file */
    int        orphan_count;
} plan;

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* Every failure is one line on stderr, prefixed with the program name. */
#define fail(...) cliopt_fail(PROG, __VA_ARGS__)

/* Copies a (possibly multi-line) libpq message into out as a single line:
 * newlines and tabs become single spaces, surrounding blanks go. */
static const char *one_line(const char *msg, char *out, size_t out_size) {
    size_t n = 0;
    bool space = false;
    if (out_size == 0) return out;
    for (const char *p = msg ? msg : ""; *p && n + 1 < out_size; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < out_size) out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: " PROG " [--config FILE] [--dir DIR] [--wait SECONDS] [--status]\n"
        "       " PROG " --help | --version\n"
        "\n"
        "Applies the numbered migrations DIR/NNN_name.sql that the database\n"
        "has not applied yet, each in its own transaction, and records them\n"
        "with their SHA-256 in schema_migrations. It connects as the owner\n"
        "role, AGENTGATE_MIGRATE_DATABASE_URL, or else AGENTGATE_DATABASE_URL;\n"
        "the services connect as the non-owner role agentgate_app (see\n"
        "sql/migrations/006_security.sql), which the migrations grant what they need.\n"
        "\n"
        "  -c, --config FILE  KEY=VALUE settings file (the environment overrides it)\n"
        "  -d, --dir DIR      migrations directory (default: $AGENTGATE_MIGRATIONS_DIR,\n"
        "                     else ./sql/migrations)\n"
        "  -w, --wait SECONDS how long to wait for PostgreSQL to accept connections\n"
        "                     (refused, starting up), trying again after 100 ms, then\n"
        "                     twice as long each time up to 5 s; 0: one try (default:\n"
        "                     $AGENTGATE_MIGRATE_WAIT_S, else 60)\n"
        "  -s, --status       list every migration as applied or pending; change nothing\n"
        "  -h, --help         this text\n"
        "  -V, --version      show the version\n"
        "\n"
        "Exit status: 0 done, 1 failed (nothing of the failing migration kept, or\n"
        "PostgreSQL still not accepting connections after the wait), 2 a\n"
        "configuration error (bad arguments, settings, or connection string).\n");
}

/* ------------------------------------------------------------------------ */
/* Migration files                                                           */
/* ------------------------------------------------------------------------ */

/* Parses "NNN_name.sql" (digits, '_', [A-Za-z0-9_-]+, ".sql") into m.
 * Returns false for any other name. */
static bool parse_file_name(const char *file, migration *m) {
    const char *p = file;
    long version = 0;
    int digits = 0;

    while (*p >= '0' && *p <= '9') {
        version = version * 10 + (*p - '0');
        if (++digits > 9) return false;
        p++;
    }
    if (digits == 0 || version <= 0 || *p != '_') return false;
    p++;

    size_t len = strlen(p);
    if (len <= 4 || strcmp(p + len - 4, ".sql") != 0) return false;
    len -= 4;
    if (len > MAX_NAME) return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }

    m->version = (int)version;
    memcpy(m->name, p, len);
    m->name[len] = '\0';
    snprintf(m->file, sizeof m->file, "%s", file);
    return true;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[CHECKSUM_HEX]) {
    unsigned char digest[32];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha256(data, len, digest, 0);
#else
    mbedtls_sha256_ret(data, len, digest, 0);
#endif
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", digest[i]);
    out[64] = '\0';
}

/* Reads dir/m->file into m->sql and computes its checksum. Returns 0, or -1
 * after printing why. */
static int read_migration(const char *dir, migration *m) {
    char path[PATH_MAX];
    struct stat st;
    FILE *f;

    if (snprintf(path, sizeof path, "%s/%s", dir, m->file) >= (int)sizeof path) {
        fail("%s/%s: path too long", dir, m->file);
        return -1;
    }
    f = fopen(path, "rb");
    if (!f) {
        fail("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fail("%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    if (st.st_size > MAX_MIGRATION_BYTES) {
        fail("%s: larger than %d bytes", path, MAX_MIGRATION_BYTES);
        fclose(f);
        return -1;
    }
    m->sql = malloc((size_t)st.st_size + 1);
    if (!m->sql) {
        fail("%s: out of memory", path);
        fclose(f);
        return -1;
    }
    m->sql_len = fread(m->sql, 1, (size_t)st.st_size, f);
    bool short_read = m->sql_len != (size_t)st.st_size || ferror(f);
    fclose(f);
    if (short_read) {
        fail("cannot read %s: short read", path);
        return -1;
    }
    m->sql[m->sql_len] = '\0';
    if (strlen(m->sql) != m->sql_len) {
        /* libpq takes the query as a C string: a NUL would cut it silently. */
        fail("%s: contains a NUL byte", path);
        return -1;
    }
    sha256_hex((const unsigned char *)m->sql, m->sql_len, m->checksum);
    return 0;
}

static int by_version(const void *a, const void *b) {
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* Lists dir's migration files into p->m, sorted, with their contents.
 * Other .sql files are reported and skipped; non-.sql files are ignored.
 * Returns 0, or -1 after printing why. */
static int load_migrations(const char *dir, plan *p) {
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        fail("cannot open migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    p->m = calloc(MAX_MIGRATIONS, sizeof *p->m);
    if (!p->m) {
        closedir(d);
        fail("out of memory");
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0) continue;
        if (p->count == MAX_MIGRATIONS) {
            closedir(d);
            fail("%s: more than %d migrations", dir, MAX_MIGRATIONS);
            return -1;
        }
        migration *m = &p->m[p->count];
        if (!parse_file_name(e->d_name, m)) {
            fprintf(stderr, PROG ": warning: skipping %s/%s: not named NNN_name.sql\n",
                    dir, e->d_name);
            continue;
        }
        p->count++;
    }
    closedir(d);

    if (p->count == 0) {
        fail("no NNN_name.sql migrations in %s", dir);
        return -1;
    }
    qsort(p->m, (size_t)p->count, sizeof *p->m, by_version);
    for (int i = 1; i < p->count; i++) {
        if (p->m[i].version == p->m[i - 1].version) {
            fail("%s and %s have the same version %d", p->m[i - 1].file,
                 p->m[i].file, p->m[i].version);
            return -1;
        }
    }
    for (int i = 0; i < p->count; i++)
        if (read_migration(dir, &p->m[i]) != 0) return -1;
    return 0;
}

static migration *find_version(plan *p, int version) {
    for (int i = 0; i < p->count; i++)
        if (p->m[i].version == version) return &p->m[i];
    return NULL;
}

static void free_plan(plan *p) {
    for (int i = 0; i < p->count; i++) free(p->m[i].sql);
    free(p->m);
    free(p->orphans);
}

/* ------------------------------------------------------------------------ */
/* Database                                                                  */
/* ------------------------------------------------------------------------ */

/* Runs a command that returns no rows. Returns 0, or -1 after printing
 * what failed (what names the step for the message). */
static int exec_command(PGconn *conn, const char *sql, const char *what) {
    char msg[1024];
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail("%s: %s", what, one_line(PQresultErrorMessage(r), msg, sizeof msg));
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* The keyword/value arrays of a connection to url with a connect timeout
 * of timeout_s seconds, unless the URL sets its own: connect_timeout comes
 * before dbname so that a value inside the expanded URL overrides it.
 * timeout holds the number's text and must outlive the arrays' use. */
static void conn_params(const char *url, int timeout_s, char timeout[16],
                        const char *keys[4], const char *vals[4]) {
    snprintf(timeout, 16, "%d", timeout_s);
    keys[0] = "connect_timeout";           vals[0] = timeout;
    keys[1] = "fallback_application_name"; vals[1] = PROG;
    keys[2] = "dbname";                    vals[2] = url;
    keys[3] = NULL;                        vals[3] = NULL;
}

/* One try at connecting. Returns the connection, or NULL with the reason
 * in why. */
static PGconn *try_connect(const char *url, int timeout_s, char *why, size_t why_size) {
    const char *keys[4], *vals[4];
    char timeout[16];
    conn_params(url, timeout_s, timeout, keys, vals);
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        one_line(PQerrorMessage(conn), why, why_size);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Whether a failed try is worth another: the server could not be reached,
 * or it answered that it does not accept connections yet (starting up,
 * shutting down, recovering). Not when it answered and refused this
 * client (password, role, database): waiting does not change that. */
static bool server_not_ready(const char *url, int timeout_s) {
    const char *keys[4], *vals[4];
    char timeout[16];
    conn_params(url, timeout_s, timeout, keys, vals);
    PGPing ping = PQpingParams(keys, vals, 1);
    return ping == PQPING_NO_RESPONSE || ping == PQPING_REJECT;
}

/*
 * Connects to url, waiting up to wait_s seconds for PostgreSQL to accept
 * connections: each failed try that server_not_ready calls worth another
 * is logged in one line and followed by a pause, WAIT_FIRST_MS doubling up
 * to WAIT_STEP_MAX_MS, never past the deadline. Returns the connection,
 * or NULL after printing why it gave up.
 */
static PGconn *connect_db(const char *url, int wait_s) {
    long long deadline = clock_mono_ms() + (long long)wait_s * 1000;
    long long pause = WAIT_FIRST_MS;
    char why[1024];
    PGconn *conn;

    for (int attempt = 1;; attempt++) {
        /* A try never runs far past the deadline, within libpq's floor. */
        long long left_s = (deadline - clock_mono_ms() + 999) / 1000;
        int timeout_s = left_s < CONNECT_TIMEOUT_MIN_S ? CONNECT_TIMEOUT_MIN_S
                      : left_s > CONNECT_TIMEOUT_S ? CONNECT_TIMEOUT_S : (int)left_s;
        conn = try_connect(url, timeout_s, why, sizeof why);
        if (conn) break;
        if (!server_not_ready(url, timeout_s)) {
            fail("cannot connect to PostgreSQL: %s", why);
            return NULL;
        }
        long long left = deadline - clock_mono_ms();
        if (left <= 0) {
            fail("PostgreSQL is not accepting connections after %d s and %d tr%s; "
                 "giving up: %s", wait_s, attempt, attempt == 1 ? "y" : "ies", why);
            return NULL;
        }
        long long sleep_ms = pause < left ? pause : left;
        fprintf(stderr, PROG ": PostgreSQL is not accepting connections yet (try %d: %s); "
                "trying again in %lld ms\n", attempt, why, sleep_ms);
        fflush(stderr);
        clock_sleep_ms(sleep_ms);
        pause = pause * 2 < WAIT_STEP_MAX_MS ? pause * 2 : WAIT_STEP_MAX_MS;
    }
    /* Files are UTF-8, and error positions are counted in characters. */
    if (PQsetClientEncoding(conn, "UTF8") != 0 ||
        exec_command(conn, "SET client_min_messages = warning", "session setup") != 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Takes the migrators' session lock, saying so if another one holds it. */
static int take_lock(PGconn *conn) {
    PGresult *r = PQexec(conn, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_KEY ")");
    char msg[1024];
    bool got;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail("cannot take the migration lock: %s",
             one_line(PQresultErrorMessage(r), msg, sizeof msg));
        PQclear(r);
        return -1;
    }
    got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (got) return 0;
    fprintf(stderr, PROG ": another migrator holds the lock; waiting\n");
    return exec_command(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                        "cannot take the migration lock");
}

static int ensure_table(PGconn *conn) {
    return exec_command(conn,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())",
        "cannot create schema_migrations");
}

/* 1 when schema_migrations exists, 0 when not, -1 on error. */
static int table_exists(PGconn *conn) {
    char msg[1024];
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail("cannot read schema_migrations: %s",
             one_line(PQresultErrorMessage(r), msg, sizeof msg));
        rc = -1;
    } else {
        rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    }
    PQclear(r);
    return rc;
}

/* Marks the applied migrations in p from schema_migrations and collects the
 * rows whose file is gone. Returns 0, or -1 after printing why. */
static int read_applied(PGconn *conn, plan *p) {
    char msg[1024];
    PGresult *r = PQexec(conn,
        "SELECT version, name, checksum,"
        " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"')"
        " FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail("cannot read schema_migrations: %s",
             one_line(PQresultErrorMessage(r), msg, sizeof msg));
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    p->orphans = calloc(rows > 0 ? (size_t)rows : 1, sizeof *p->orphans);
    if (!p->orphans) {
        PQclear(r);
        fail("out of memory");
        return -1;
    }
    for (int i = 0; i < rows; i++) {
        int version = atoi(PQgetvalue(r, i, 0));
        migration *m = find_version(p, version);
        if (m) {
            m->applied = true;
            snprintf(m->applied_checksum, sizeof m->applied_checksum, "%s", PQgetvalue(r, i, 2));
            snprintf(m->applied_at, sizeof m->applied_at, "%s", PQgetvalue(r, i, 3));
        } else {
            orphan *o = &p->orphans[p->orphan_count++];
            o->version = version;
            snprintf(o->name, sizeof o->name, "%s", PQgetvalue(r, i, 1));
            snprintf(o->applied_at, sizeof o->applied_at, "%s", PQgetvalue(r, i, 3));
        }
    }
    PQclear(r);
    return 0;
}

/* The line in sql of the 1-based character position pos (PostgreSQL counts
 * characters of the client encoding, UTF-8 here), or 0 if out of range. */
static int line_of_position(const char *sql, long pos) {
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        if ((*p & 0xC0) == 0x80) continue; /* UTF-8 continuation byte */
        if (++chars == pos) return line;
        if (*p == '\n') line++;
    }
    return 0;
}

/* Reports a failed statement of m as "FILE:LINE: message" when PostgreSQL
 * says where in the file it failed. */
static void report_sql_error(const char *dir, const migration *m, const PGresult *r) {
    char msg[1024];
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *position = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
    int line = position ? line_of_position(m->sql, atol(position)) : 0;

    one_line(primary ? primary : PQresultErrorMessage(r), msg, sizeof msg);
    if (line > 0)
        fail("%s/%s:%d: %s; rolled back", dir, m->file, line, msg);
    else
        fail("%s/%s: %s; rolled back", dir, m->file, msg);
}

/* Applies m and records it in one transaction. Returns 0, or -1 after
 * printing why, with the transaction rolled back. */
static int apply_migration(PGconn *conn, const char *dir, const migration *m) {
    char version[16], what[MAX_NAME + 64];
    const char *params[3];
    PGresult *r;

    snprintf(what, sizeof what, "%s/%s", dir, m->file);
    if (exec_command(conn, "BEGIN", what) != 0) return -1;

    r = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        report_sql_error(dir, m, r);
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(r);

    /* A COMMIT or ROLLBACK inside the file would have ended our transaction
     * and left its first part applied without a record: say so loudly. */
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        fail("%s: the file ends the transaction itself (COMMIT/ROLLBACK); "
             "migrations must not manage transactions; not recorded", what);
        return -1;
    }

    snprintf(version, sizeof version, "%d", m->version);
    params[0] = version;
    params[1] = m->name;
    params[2] = m->checksum;
    r = PQexecParams(conn,
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[1024];
        fail("%s: cannot record it: %s; rolled back", what,
             one_line(PQresultErrorMessage(r), msg, sizeof msg));
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(r);

    r = PQexec(conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char msg[1024];
        fail("%s: commit failed: %s", what,
             one_line(PQresultErrorMessage(r), msg, sizeof msg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */
/* ------------------------------------------------------------------------ */

static int highest_applied(const plan *p) {
    int v = 0;
    for (int i = 0; i < p->count; i++)
        if (p->m[i].applied && p->m[i].version > v) v = p->m[i].version;
    for (int i = 0; i < p->orphan_count; i++)
        if (p->orphans[i].version > v) v = p->orphans[i].version;
    return v;
}

/* Checks that every applied migration still has its file, unchanged.
 * Returns 0, or -1 after printing the first mismatch. */
static int verify_applied(const char *dir, const plan *p) {
    for (int i = 0; i < p->count; i++) {
        const migration *m = &p->m[i];
        if (m->applied && strcmp(m->checksum, m->applied_checksum) != 0) {
            fail("%s/%s was changed after it was applied (checksum %.12s, recorded %.12s); "
                 "add a new migration instead; nothing applied",
                 dir, m->file, m->checksum, m->applied_checksum);
            return -1;
        }
    }
    if (p->orphan_count > 0) {
        fail("migration %03d_%s is applied but missing from %s; nothing applied",
             p->orphans[0].version, p->orphans[0].name, dir);
        return -1;
    }
    return 0;
}

static int cmd_status(PGconn *conn, const char *dir, plan *p) {
    int exists = table_exists(conn);
    int pending = 0;

    if (exists < 0) return 1;
    if (exists && read_applied(conn, p) != 0) return 1;

    printf("%-8s %-32s %-8s %s\n", "version", "name", "state", "applied_at");
    for (int i = 0; i < p->count; i++) {
        const migration *m = &p->m[i];
        const char *state = "pending";
        if (m->applied)
            state = strcmp(m->checksum, m->applied_checksum) == 0 ? "applied" : "changed";
        else
            pending++;
        printf("%03d      %-32s %-8s %s\n", m->version, m->name, state,
               m->applied ? m->applied_at : "-");
    }
    for (int i = 0; i < p->orphan_count; i++)
        printf("%03d      %-32s %-8s %s\n", p->orphans[i].version, p->orphans[i].name,
               "missing", p->orphans[i].applied_at);
    printf("schema at version %d, %d pending (%s)\n", highest_applied(p), pending, dir);
    return 0;
}

static int cmd_migrate(PGconn *conn, const char *dir, plan *p) {
    int applied = 0;

    if (take_lock(conn) != 0 || ensure_table(conn) != 0 || read_applied(conn, p) != 0)
        return 1;
    if (verify_applied(dir, p) != 0) return 1;

    for (int i = 0; i < p->count; i++) {
        migration *m = &p->m[i];
        if (m->applied) continue;
        if (apply_migration(conn, dir, m) != 0) return 1;
        m->applied = true;
        applied++;
        printf("applied %s\n", m->file);
        fflush(stdout);
    }
    if (applied == 0)
        printf("nothing to apply, schema at version %d\n", highest_applied(p));
    else
        printf("applied %d migration%s, schema at version %d\n", applied,
               applied == 1 ? "" : "s", highest_applied(p));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct options {
    const char *config;
    const char *dir;
    int wait_s;         /* -1: the setting's */
    bool status;
} options;

/* Parses --wait's value, whole seconds 0..WAIT_MAX_S. Returns 0 or -1. */
static int parse_wait(const char *v, int *out) {
    long long n = 0;
    if (*v == '\0') return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        n = n * 10 + (*p - '0');
        if (n > WAIT_MAX_S) return -1;
    }
    *out = (int)n;
    return 0;
}

/* Returns 0 to go on, or the exit status (help, version: 0 via *done;
 * bad: 2, reported). */
static int parse_args(int argc, char **argv, options *o, bool *done) {
    static const struct option longopts[] = {
        { "config",  required_argument, NULL, 'c' },
        { "dir",     required_argument, NULL, 'd' },
        { "wait",    required_argument, NULL, 'w' },
        { "status",  no_argument,       NULL, 's' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    opterr = 0;
    for (;;) {
        const char *arg = optind < argc ? argv[optind] : NULL;
        int c = getopt_long(argc, argv, "+:c:d:w:shV", longopts, NULL);
        if (c == -1) break;
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'd': o->dir = optarg; break;
        case 'w':
            if (parse_wait(optarg, &o->wait_s) != 0) {
                fail("option '--wait' needs whole seconds, 0 to %d (see --help)", WAIT_MAX_S);
                return 2;
            }
            break;
        case 's': o->status = true; break;
        case 'h':
            usage(stdout);
            *done = true;
            return 0;
        case 'V':
            printf("%s %s\n", PROG, AGENTGATE_VERSION);
            *done = true;
            return 0;
        default:
            cliopt_bad_option(PROG, c, optopt, arg);
            return 2;
        }
        if ((c == 'c' || c == 'd') && *optarg == '\0') {
            fail("option '%s' needs a non-empty value (see --help)",
                 c == 'c' ? "--config" : "--dir");
            return 2;
        }
    }
    if (optind < argc) {
        fail("unexpected argument '%s' (see --help)", argv[optind]);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    options o = { .wait_s = -1 };
    bool done = false;
    ag_config cfg;
    char err[512];
    plan p = { 0 };
    PGconn *conn;
    int rc;

    rc = parse_args(argc, argv, &o, &done);
    if (rc != 0 || done) return rc;

    if (!o.dir) {
        const char *env = getenv("AGENTGATE_MIGRATIONS_DIR");
        o.dir = env && *env ? env : "sql/migrations";
    }
    /* Settings that do not load (a connection string libpq cannot parse
     * among them) never will: exit 2 at once, no waiting. */
    if (config_load(&cfg, o.config, err, sizeof err) != 0) {
        fail("%s", err);
        return 2;
    }
    /* The owner's URL when there is one: the services' own role may not
     * change the schema (and is refused by 006_security.sql). */
    const char *url = cfg.migrate_database_url[0] ? cfg.migrate_database_url
                                                  : cfg.database_url;
    if (url[0] == '\0') {
        fail("neither AGENTGATE_MIGRATE_DATABASE_URL nor AGENTGATE_DATABASE_URL is set");
        return 2;
    }
    if (load_migrations(o.dir, &p) != 0) {
        free_plan(&p);
        return 1;
    }
    conn = connect_db(url, o.wait_s >= 0 ? o.wait_s : cfg.migrate_wait_s);
    if (!conn) {
        free_plan(&p);
        return 1;
    }
    rc = o.status ? cmd_status(conn, o.dir, &p) : cmd_migrate(conn, o.dir, &p);
    PQfinish(conn); /* also releases the session advisory lock */
    free_plan(&p);
    return rc;
}
