// regress.c: `lra regress` (see regress.h) and the set snapshots it reads:
// bench sets of the database, CSV baseline files, and accuracy snapshots of
// a sweep's runs.
#include "regress.h"

#include "args.h"
#include "buildinfo.h"

#include <math.h>
#include <string.h>

void lra_regress_defaults(lra_regress_opts *o) { *o = (lra_regress_opts){ 0.05, 0.05, 2.0 }; }

// ---- the Mann-Whitney U test -------------------------------------------------------------------

// P(U <= u) under the null hypothesis without ties: the counts of U are the
// coefficients of the Gaussian binomial [na+nb choose na]_q =
// prod_{k=1..na} (1 - q^(nb+k)) / (1 - q^k) (Mann and Whitney 1947).
static double u_cdf_exact(int na, int nb, double u) {
    int top = na * nb;
    double *c = calloc((size_t)top + 1, sizeof *c), total = 0, below = 0;
    if (!c) return 1;
    c[0] = 1;
    for (int k = 1; k <= na; k++) {
        for (int i = top; i >= nb + k; i--) c[i] -= c[i - nb - k];  // times (1 - q^(nb+k))
        for (int i = k; i <= top; i++) c[i] += c[i - k];            // divided by (1 - q^k)
    }
    for (int i = 0; i <= top; i++) {
        total += c[i];
        if (i <= u + 1e-9) below += c[i];
    }
    free(c);
    return below / total;
}

typedef struct {
    double x;
    int    group;
} ranked;

static int cmp_ranked(const void *p, const void *q) {
    double a = ((const ranked *)p)->x, b = ((const ranked *)q)->x;
    return (a > b) - (a < b);
}

double lra_mann_whitney(const double *a, int na, const double *b, int nb, double *min_p) {
    int n = na + nb;
    *min_p = 1;
    if (na < 1 || nb < 1) return 1;
    ranked *r = malloc((size_t)n * sizeof *r);
    if (!r) return 1;
    for (int i = 0; i < na; i++) r[i] = (ranked){ a[i], 0 };
    for (int i = 0; i < nb; i++) r[na + i] = (ranked){ b[i], 1 };
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    double rank_a = 0, ties = 0;  // sum of a's (mid)ranks; sum of t^3 - t over tied groups
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && r[j].x == r[i].x) j++;
        double mid = (i + 1 + j) / 2.0, t = j - i;
        for (int k = i; k < j; k++)
            if (!r[k].group) rank_a += mid;
        ties += t * t * t - t;
        i = j;
    }
    free(r);
    double u = rank_a - na * (na + 1) / 2.0, mn = (double)na * nb, lo = u < mn - u ? u : mn - u, p;
    if (ties == 0 && na <= 50 && nb <= 50) {
        *min_p = fmin(1, 2 * u_cdf_exact(na, nb, 0));
        p = 2 * u_cdf_exact(na, nb, lo);
    } else {
        // normal approximation, sigma^2 = na nb / 12 ((n + 1) - sum(t^3 - t) / (n (n - 1)))
        double var = mn / 12 * ((n + 1) - ties / ((double)n * (n - 1)));
        double z = var > 0 ? (fabs(u - mn / 2) - 0.5) / sqrt(var) : 0;
        p = erfc(fmax(z, 0) / sqrt(2));
        double zmax = var > 0 ? (mn / 2 - 0.5) / sqrt(var) : 0;
        *min_p = erfc(zmax / sqrt(2));
    }
    return fmin(p, 1);
}

// ---- sets -----------------------------------------------------------------------------------------

#define MAX_SAMPLES 256

typedef struct {
    char   kind[16], mixer[32], config[256], status[16];
    int    B, L, H, n;
    double samples[MAX_SAMPLES], median, value;
} entry;

typedef struct {
    char   label[160];
    entry *e;
    int    n, cap;
} bench_set;

static entry *set_add(bench_set *s, lra_err *err) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        entry *e = realloc(s->e, (size_t)cap * sizeof *e);
        if (!e) return lra_err_set(err, LRA_ENOMEM, "out of memory"), NULL;
        s->e = e, s->cap = cap;
    }
    memset(&s->e[s->n], 0, sizeof *s->e);
    return &s->e[s->n++];
}

static void parse_samples(entry *e, const char *s) {
    e->n = 0;
    while (s && *s && e->n < MAX_SAMPLES) {
        char *end;
        double x = strtod(s, &end);
        if (end == s) break;
        e->samples[e->n++] = x;
        s = end;
        while (*s == ',' || *s == ' ' || *s == ';') s++;
    }
}

static const char *col_text(sqlite3_stmt *st, int c) {
    const char *s = (const char *)sqlite3_column_text(st, c);
    return s ? s : "";
}

// The newest set named name (or @ID; NULL: any name) other than set except.
static int load_db_set(lra_db *db, const char *name, int64_t except, bench_set *s, int64_t *id, lra_err *err) {
    if (!db) return lra_err_set(err, LRA_EIO, "set '%s': no results database (pass --db)", name ? name : "newest");
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT id, name, created_at, device, git_commit FROM bench_sets WHERE (?1 IS NULL OR name = ?1"
                       " OR '@' || id = ?1) AND id != ?2 ORDER BY id DESC LIMIT 1",
                       &st, err))
        return err->code;
    if (name) sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, except);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found) {
        *id = sqlite3_column_int64(st, 0);
        snprintf(s->label, sizeof s->label, "%s (set %lld, %s, %s, commit %s)", col_text(st, 1), (long long)*id,
                 col_text(st, 2), col_text(st, 3), col_text(st, 4));
    }
    sqlite3_finalize(st);
    if (!found && name && except >= 0)
        return lra_err_set(err, LRA_EINVAL, "no earlier bench set named '%s' in %s to compare with", name, db->path);
    if (!found)
        return lra_err_set(err, LRA_EINVAL, name ? "no bench set named '%s' in %s" : "%s%s has no bench set",
                           name ? name : "", db->path);
    if (lra_db_prepare(db,
                       "SELECT kind, mixer, COALESCE(B, 0), COALESCE(L, 0), COALESCE(H, 0), COALESCE(config, ''), status,"
                       " samples_ms, median_ms, value FROM bench WHERE set_id = ? ORDER BY rowid",
                       &st, err))
        return err->code;
    sqlite3_bind_int64(st, 1, *id);
    int rc = LRA_OK;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        entry *e = set_add(s, err);
        if (!e) rc = err->code;
        else {
            snprintf(e->kind, sizeof e->kind, "%s", col_text(st, 0));
            snprintf(e->mixer, sizeof e->mixer, "%s", col_text(st, 1));
            e->B = sqlite3_column_int(st, 2), e->L = sqlite3_column_int(st, 3), e->H = sqlite3_column_int(st, 4);
            snprintf(e->config, sizeof e->config, "%s", col_text(st, 5));
            snprintf(e->status, sizeof e->status, "%s", col_text(st, 6));
            parse_samples(e, (const char *)sqlite3_column_text(st, 7));
            e->median = sqlite3_column_double(st, 8), e->value = sqlite3_column_double(st, 9);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

// ---- CSV baseline files ---------------------------------------------------------------------------
// '#' lines describe the set; then a header and one row per entry:
//   kind,mixer,B,L,H,config,status,median_ms,value,samples
// samples: every measurement separated by spaces (ms for timings, accuracy
// in [0, 1] for kind accuracy).

static const char csv_header[] = "kind,mixer,B,L,H,config,status,median_ms,value,samples";

// Splits one CSV line (RFC 4180 quoting) into at most cap fields, in place.
static int csv_split(char *line, char **f, int cap) {
    int n = 0;
    char *s = line;
    while (n < cap) {
        char *out = s;
        f[n++] = s;
        if (*s == '"') {
            char *r = s + 1;
            for (; *r; r++) {
                if (*r == '"' && r[1] == '"') *out++ = '"', r++;
                else if (*r == '"') { r++; break; }
                else *out++ = *r;
            }
            s = r;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r') *out++ = *s++;
        }
        int more = *s == ',';
        *out = 0;
        if (!more) break;
        s++;
    }
    return n;
}

static int load_file_set(const char *path, bench_set *s, lra_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open the baseline file", path);
    char line[8192];
    int row = 0, rc = LRA_OK, lineno = 0;
    snprintf(s->label, sizeof s->label, "%s", path);
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#') {
            if (!strncmp(line, "# set: ", 7)) snprintf(s->label, sizeof s->label, "%s: %.*s", path, (int)strcspn(line + 7, "\n"), line + 7);
            continue;
        }
        if (line[0] == '\n' || line[0] == 0) continue;
        if (row++ == 0) {
            if (strncmp(line, csv_header, strlen(csv_header)))
                rc = lra_err_set(err, LRA_EINVAL, "%s:%d: expected the header '%s'", path, lineno, csv_header);
            continue;
        }
        char *fld[10];
        if (csv_split(line, fld, 10) != 10) {
            rc = lra_err_set(err, LRA_EINVAL, "%s:%d: expected 10 fields (%s)", path, lineno, csv_header);
            break;
        }
        entry *e = set_add(s, err);
        if (!e) {
            rc = err->code;
            break;
        }
        snprintf(e->kind, sizeof e->kind, "%s", fld[0]);
        snprintf(e->mixer, sizeof e->mixer, "%s", fld[1]);
        e->B = atoi(fld[2]), e->L = atoi(fld[3]), e->H = atoi(fld[4]);
        snprintf(e->config, sizeof e->config, "%s", fld[5]);
        snprintf(e->status, sizeof e->status, "%s", fld[6]);
        e->median = atof(fld[7]), e->value = atof(fld[8]);
        parse_samples(e, fld[9]);
    }
    fclose(f);
    if (!rc && row == 0) rc = lra_err_set(err, LRA_EINVAL, "%s: empty baseline file", path);
    return rc;
}

static void csv_quoted(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
    fputc('"', f);
}

static int write_file_set(const bench_set *s, const char *path, lra_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open for writing", path);
    fprintf(f, "# lra regress baseline (lra regress --baseline %s)\n# set: %s\n%s\n", path, s->label, csv_header);
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        fprintf(f, "%s,%s,%d,%d,%d,", e->kind, e->mixer, e->B, e->L, e->H);
        csv_quoted(f, e->config);
        fprintf(f, ",%s,%.4f,%.6g,", e->status, e->median, e->value);
        for (int k = 0; k < e->n; k++) fprintf(f, "%s%.6g", k ? " " : "", e->samples[k]);
        fputc('\n', f);
    }
    return fclose(f) ? lra_err_set(err, LRA_EIO, "%s: write failed", path) : LRA_OK;
}

// ---- accuracy snapshots of a sweep ----------------------------------------------------------------

// One accuracy entry per (task, mixer, seq_len) over the done runs of the
// sweep: samples = each seed's test accuracy, value = their mean.
static int load_sweep_accuracy(lra_db *db, const char *sweep, bench_set *s, lra_err *err) {
    if (!db) return lra_err_set(err, LRA_EIO, "sweep '%s': no results database (pass --db)", sweep);
    if (lra_sweep_check(db, sweep, err)) return err->code;
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT r.task, r.mixer, r.seq_len, r.test_acc FROM runs r WHERE r.status = 'done' AND"
                       " r.test_acc IS NOT NULL AND r.sweep_id IN (SELECT id FROM sweeps WHERE name = ?)"
                       " ORDER BY r.task, r.mixer, r.seq_len, r.seed, r.id",
                       &st, err))
        return err->code;
    sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    snprintf(s->label, sizeof s->label, "accuracy of sweep %s", sweep);
    int rc = LRA_OK;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        char config[256];
        snprintf(config, sizeof config, "task=%s", col_text(st, 0));
        entry *e = s->n ? &s->e[s->n - 1] : NULL;
        if (!e || strcmp(e->config, config) || strcmp(e->mixer, col_text(st, 1)) || e->L != sqlite3_column_int(st, 2)) {
            if (!(e = set_add(s, err))) {
                rc = err->code;
                break;
            }
            strcpy(e->kind, "accuracy");
            snprintf(e->mixer, sizeof e->mixer, "%s", col_text(st, 1));
            snprintf(e->config, sizeof e->config, "%s", config);
            strcpy(e->status, "ok");
            e->L = sqlite3_column_int(st, 2);
        }
        if (e->n < MAX_SAMPLES) e->samples[e->n++] = sqlite3_column_double(st, 3);
        double sum = 0;
        for (int k = 0; k < e->n; k++) sum += e->samples[k];
        e->value = sum / e->n;
    }
    sqlite3_finalize(st);
    if (!rc && !s->n) rc = lra_err_set(err, LRA_EINVAL, "sweep '%s' has no done runs with a test accuracy", sweep);
    return rc;
}

// Records s as a new bench set named name (kind accuracy rows keep value and samples).
static int save_db_set(lra_db *db, const bench_set *s, const char *name, lra_err *err) {
    char now[32];
    lra_db_now(now);
    sqlite3_stmt *st;
    if (lra_db_begin(db, err)) return err->code;
    int rc = lra_db_prepare(db,
                            "INSERT INTO bench_sets (name, command, backend, git_commit, build_flags, created_at)"
                            " VALUES (?, ?, 'cpu', ?, ?, ?)",
                            &st, err);
    if (!rc) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, lra_git_commit(), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, lra_build_flags(), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
        rc = lra_db_done(db, st, err);
        sqlite3_finalize(st);
        st = NULL;
    }
    int64_t id = sqlite3_last_insert_rowid(db->db);
    if (!rc)
        rc = lra_db_prepare(db,
                            "INSERT INTO bench (set_id, kind, mixer, L, config, status, repeats, samples_ms, value)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            &st, err);
    for (int i = 0; !rc && i < s->n; i++) {
        const entry *e = &s->e[i];
        char samples[4096] = "";
        for (int k = 0; k < e->n; k++) {
            size_t m = strlen(samples);
            snprintf(samples + m, sizeof samples - m, "%s%.6g", k ? "," : "", e->samples[k]);
        }
        sqlite3_bind_int64(st, 1, id);
        const char *text[] = { e->kind, e->mixer };
        for (int k = 0; k < 2; k++) sqlite3_bind_text(st, k + 2, text[k], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, e->L);
        sqlite3_bind_text(st, 5, e->config, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, e->status, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 7, e->n);
        sqlite3_bind_text(st, 8, samples, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 9, e->value);
        rc = lra_db_done(db, st, err);
    }
    if (st) sqlite3_finalize(st);
    if (!rc) rc = lra_db_commit(db, err);
    if (rc) lra_db_rollback(db);
    else printf("set '%s' (id %lld): %d entries recorded in %s\n", name, (long long)id, s->n, db->path);
    return rc;
}

// ---- comparison -------------------------------------------------------------------------------------

static int is_file_arg(const char *s) {
    size_t n = strlen(s);
    return n > 4 && !strcmp(s + n - 4, ".csv");
}

// arg: a .csv file, "@ID" (a set id), a set name, or NULL (the newest set but except).
static int load_set(lra_db *db, const char *arg, int64_t except, bench_set *s, int64_t *id, lra_err *err) {
    *id = -1;
    if (arg && is_file_arg(arg)) return load_file_set(arg, s, err);
    return load_db_set(db, arg, except, s, id, err);
}

static const entry *find_entry(const bench_set *s, const entry *k) {
    for (int i = 0; i < s->n; i++) {
        const entry *e = &s->e[i];
        if (!strcmp(e->kind, k->kind) && !strcmp(e->mixer, k->mixer) && e->B == k->B && e->L == k->L && e->H == k->H &&
            !strcmp(e->config, k->config))
            return e;
    }
    return NULL;
}

static double median_of(const entry *e) {
    if (!e->n) return e->median;
    double v[MAX_SAMPLES];
    memcpy(v, e->samples, (size_t)e->n * sizeof *v);
    for (int i = 1; i < e->n; i++)  // insertion sort: a few samples
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return e->n % 2 ? v[e->n / 2] : (v[e->n / 2 - 1] + v[e->n / 2]) / 2;
}

// The verdict of a timing pair; returns 1 for a regression.
static int judge_time(const entry *b, const entry *n, const lra_regress_opts *o, lra_grid *g, int r) {
    double mb = median_of(b), mn = median_of(n), change = mb > 0 ? mn / mb - 1 : 0, min_p = 1;
    double p = lra_mann_whitney(b->samples, b->n, n->samples, n->n, &min_p);
    int testable = min_p <= o->alpha, beyond = fabs(change) > o->threshold;
    lra_grid_set(g, r, 6, "%.4g ms", mb);
    lra_grid_set(g, r, 7, "%.4g ms", mn);
    lra_grid_set(g, r, 8, "%+.1f%%", 100 * change);
    if (testable) lra_grid_set(g, r, 9, "%.3g", p);
    else lra_grid_set(g, r, 9, "— (n=%d,%d)", b->n, n->n);
    const char *v = "same";
    if (beyond && (!testable || p < o->alpha)) v = change > 0 ? "REGRESSION" : "improvement";
    else if (beyond) v = "noise (not significant)";
    lra_grid_set(g, r, 10, "%s%s", v, beyond && !testable ? " (few samples: median only)" : "");
    return change > 0 && beyond && (!testable || p < o->alpha);
}

static int judge_accuracy(const entry *b, const entry *n, const lra_regress_opts *o, lra_grid *g, int r) {
    double d = 100 * (n->value - b->value);
    lra_grid_set(g, r, 6, "%.2f%%", 100 * b->value);
    lra_grid_set(g, r, 7, "%.2f%%", 100 * n->value);
    lra_grid_set(g, r, 8, "%+.2f pts", d);
    lra_grid_set(g, r, 9, "—");
    int drop = d < -o->tolerance;
    lra_grid_set(g, r, 10, "%s", drop ? "REGRESSION" : d > o->tolerance ? "improvement" : "same");
    return drop;
}

static int compare(const bench_set *base, const bench_set *fresh, const lra_regress_opts *o, lra_grid *g) {
    const char *head[] = { "kind", "mixer", "B", "L", "H", "config", "baseline", "new", "change", "p (U test)", "verdict" };
    for (int c = 0; c < 11; c++) lra_grid_set(g, 0, c, "%s", head[c]), g->right[c] = (c >= 2 && c <= 4) || (c >= 6 && c <= 9);
    int r = 1, regressions = 0;
    for (int i = 0; i < fresh->n && r < LRA_GRID_ROWS; i++, r++) {
        const entry *n = &fresh->e[i], *b = find_entry(base, n);
        lra_grid_set(g, r, 0, "%s", n->kind);
        lra_grid_set(g, r, 1, "%s", n->mixer);
        lra_grid_set(g, r, 2, "%d", n->B), lra_grid_set(g, r, 3, "%d", n->L), lra_grid_set(g, r, 4, "%d", n->H);
        lra_grid_set(g, r, 5, "%s", n->config[0] ? n->config : "—");
        for (int c = 6; c < 11; c++) lra_grid_set(g, r, c, "%s", "");
        if (!b) lra_grid_set(g, r, 10, "new (not in the baseline)");
        else if (strcmp(b->status, "ok") && strcmp(n->status, "ok")) lra_grid_set(g, r, 10, "%s in both", n->status);
        else if (strcmp(n->status, "ok")) {
            lra_grid_set(g, r, 10, "REGRESSION (now %s)", n->status);
            regressions++;
        } else if (strcmp(b->status, "ok")) lra_grid_set(g, r, 10, "improvement (was %s)", b->status);
        else if (!strcmp(n->kind, "accuracy")) regressions += judge_accuracy(b, n, o, g, r);
        else regressions += judge_time(b, n, o, g, r);
    }
    for (int i = 0; i < base->n && r < LRA_GRID_ROWS; i++)
        if (!find_entry(fresh, &base->e[i])) {
            const entry *b = &base->e[i];
            lra_grid_set(g, r, 0, "%s", b->kind), lra_grid_set(g, r, 1, "%s", b->mixer);
            lra_grid_set(g, r, 2, "%d", b->B), lra_grid_set(g, r, 3, "%d", b->L), lra_grid_set(g, r, 4, "%d", b->H);
            lra_grid_set(g, r, 5, "%s", b->config[0] ? b->config : "—");
            for (int c = 6; c < 10; c++) lra_grid_set(g, r, c, "%s", "");
            lra_grid_set(g, r++, 10, "missing from the new set");
        }
    return regressions;
}

int lra_regress(lra_db *db, const char *baseline, const char *fresh, int fresh_sweep, const lra_regress_opts *o,
                lra_grid *g, int *n_regressions, lra_err *err) {
    bench_set b = { 0 }, n = { 0 };
    int64_t bid = -1, nid = -1;
    int rc, same = !fresh_sweep && fresh && !is_file_arg(fresh) && !strcmp(fresh, baseline);
    if (same) {  // one name for both: its newest set against the one before
        rc = load_set(db, fresh, -1, &n, &nid, err);
        if (!rc) rc = load_set(db, baseline, nid, &b, &bid, err);
    } else {
        rc = load_set(db, baseline, -1, &b, &bid, err);
        if (!rc) rc = fresh_sweep ? load_sweep_accuracy(db, fresh, &n, err) : load_set(db, fresh, -1, &n, &nid, err);
        if (!rc && !fresh_sweep && bid >= 0 && nid == bid)
            rc = lra_err_set(err, LRA_EINVAL, "the new set is the baseline itself (set %lld); pass --new%s",
                             (long long)bid, fresh ? " with another set" : "");
    }
    memset(g, 0, sizeof *g);
    if (!rc) {
        *n_regressions = compare(&b, &n, o, g);
        snprintf(g->title, sizeof g->title, "Benchmark and accuracy changes against the baseline");
        snprintf(g->notes, sizeof g->notes,
                 "New: %s.\nBaseline: %s.\n"
                 "Timings (fwd+bwd ms, medians): a change beyond %.3g%% with Mann-Whitney U p < %.3g; when the samples "
                 "are too few for the test to reach %.3g, the median change alone.\n"
                 "Accuracies (mean test accuracy over seeds): a drop beyond %.3g points.\n"
                 "%d regression(s).\n",
                 n.label, b.label, 100 * o->threshold, o->alpha, o->alpha, o->tolerance, *n_regressions);
    }
    free(b.e);
    free(n.e);
    return rc;
}

// ---- the command ---------------------------------------------------------------------------------

static const char regress_usage[] =
    "usage: lra regress --baseline NAME|FILE.csv [--new NAME|FILE.csv] [options]\n"
    "       lra regress --export NAME --out FILE.csv       write a set as a baseline file\n"
    "       lra regress --snapshot SWEEP --name NAME        record a sweep's test accuracies as a set\n"
    "  --db FILE          results database (default " LRA_DB_DEFAULT ")\n"
    "  --baseline X       a set name in the database (its newest set of that name), @ID (a set id)\n"
    "                     or a .csv file\n"
    "  --new X            the same; default: the newest set of the database (when X names the\n"
    "                     baseline's set too: its newest set against the one before)\n"
    "  --new-sweep SWEEP  compare the test accuracies of a sweep's done runs instead\n"
    "  --threshold PCT    median time change that counts (default 5)\n"
    "  --alpha A          significance level of the Mann-Whitney U test (default 0.05)\n"
    "  --tolerance PTS    accuracy drop in points that counts (default 2)\n"
    "  --format F         md (default), csv or html\n"
    "exit status 1 when a regression is found\n";

static const char *const regress_options[] = { "--db", "--baseline", "--new", "--new-sweep", "--threshold", "--alpha",
                                               "--tolerance", "--format", "--export", "--out", "--snapshot",
                                               "--name", NULL };

static int arg_double(const char *opt, const char *v, double lo, double hi, double *out, lra_err *err) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return lra_err_set(err, LRA_EUSAGE, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, v);
    *out = x;
    return LRA_OK;
}

typedef struct {
    const char *db, *baseline, *fresh, *sweep, *format, *export_set, *out, *snapshot, *name;
    lra_regress_opts o;
} regress_args;

static int regress_parse(int argc, char **argv, regress_args *a, lra_err *err) {
    memset(a, 0, sizeof *a);
    a->db = LRA_DB_DEFAULT, a->format = "md";
    lra_regress_defaults(&a->o);
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(regress_usage, stdout);
            return -1;
        }
        int rc = lra_arg_option(o, v, regress_options, "lra regress", err);
        double pct;
        if (rc) return rc;
        if (!strcmp(o, "--db")) a->db = v;
        else if (!strcmp(o, "--baseline")) a->baseline = v;
        else if (!strcmp(o, "--new")) a->fresh = v;
        else if (!strcmp(o, "--new-sweep")) a->sweep = v;
        else if (!strcmp(o, "--format")) a->format = v;
        else if (!strcmp(o, "--export")) a->export_set = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--snapshot")) a->snapshot = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--alpha")) rc = arg_double(o, v, 1e-6, 0.5, &a->o.alpha, err);
        else if (!strcmp(o, "--tolerance")) rc = arg_double(o, v, 0, 100, &a->o.tolerance, err);
        else if (!strcmp(o, "--threshold") && !(rc = arg_double(o, v, 0, 1000, &pct, err))) a->o.threshold = pct / 100;
        if (rc) return rc;
    }
    if (strcmp(a->format, "md") && strcmp(a->format, "csv") && strcmp(a->format, "html"))
        return lra_err_set(err, LRA_EUSAGE, "--format: expected md, csv or html, got '%s'", a->format);
    if (a->export_set && !a->out) return lra_err_set(err, LRA_EUSAGE, "--export needs --out FILE.csv");
    if (a->snapshot && !a->name) return lra_err_set(err, LRA_EUSAGE, "--snapshot needs --name NAME");
    if (!a->export_set && !a->snapshot && !a->baseline)
        return lra_err_set(err, LRA_EUSAGE, "--baseline: missing (a set name or a .csv file; see lra regress --help)");
    if (a->fresh && a->sweep) return lra_err_set(err, LRA_EUSAGE, "--new and --new-sweep exclude each other");
    return LRA_OK;
}

// The database is opened when it exists; a comparison of two files needs none.
static int regress_open(const regress_args *a, lra_db *db, int *opened, lra_err *err) {
    *opened = 0;
    FILE *probe = fopen(a->db, "rb");
    if (!probe) {
        int needs = a->export_set || a->snapshot || a->sweep || !is_file_arg(a->baseline) || !a->fresh ||
                    !is_file_arg(a->fresh);
        return needs ? lra_err_set(err, LRA_EIO, "%s: no such database (pass --db)", a->db) : LRA_OK;
    }
    fclose(probe);
    if (lra_db_open(db, a->db, err)) return err->code;
    *opened = 1;
    return LRA_OK;
}

int lra_cmd_regress(int argc, char **argv, lra_err *err) {
    regress_args a;
    int rc = regress_parse(argc, argv, &a, err), opened;
    if (rc) return rc < 0 ? LRA_OK : rc;
    lra_db db = { 0 };
    if (regress_open(&a, &db, &opened, err)) return err->code;
    lra_db *dbp = opened ? &db : NULL;
    bench_set s = { 0 };
    int64_t id;
    lra_grid *g = NULL;
    int n_reg = 0;
    if (a.export_set) {
        if (!(rc = load_set(dbp, a.export_set, -1, &s, &id, err)) && !(rc = write_file_set(&s, a.out, err)))
            printf("%s: %d entries of %s\n", a.out, s.n, s.label);
    } else if (a.snapshot) {
        if (!(rc = load_sweep_accuracy(dbp, a.snapshot, &s, err))) rc = save_db_set(dbp, &s, a.name, err);
    } else if (!(g = malloc(sizeof *g))) {
        rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    } else if (!(rc = lra_regress(dbp, a.baseline, a.sweep ? a.sweep : a.fresh, a.sweep != NULL, &a.o, g, &n_reg, err))) {
        lra_grid_write(g, a.format, stdout);
        if (n_reg) rc = lra_err_set(err, LRA_EINVAL, "%d regression(s) against the baseline", n_reg);
    }
    free(s.e);
    free(g);
    if (opened) lra_db_close(&db);
    return rc;
}
