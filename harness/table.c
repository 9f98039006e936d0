// table.c: `lra table`: LRA Table 1 (accuracy) and Table 2 (speed and
// memory) from the results database, beside the published numbers of
// /work/shared/reference/lra.md §4 (LRA paper Tables 1-2, S4, S4D, S5, LRU
// and MEGA papers).
#include "table.h"

#include "args.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

// ---- the grid and its four writers --------------------------------------------------

void lra_grid_set(lra_grid *g, int r, int c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->cell[r][c], LRA_GRID_CELL, fmt, ap);
    va_end(ap);
    if (r >= g->n_rows) g->n_rows = r + 1;
    if (c >= g->n_cols) g->n_cols = c + 1;
}

void lra_grid_note(lra_grid *g, const char *line) {
    size_t n = strlen(g->notes);
    snprintf(g->notes + n, sizeof g->notes - n, "%s\n", line);
}

static void write_md(const lra_grid *g, FILE *f) {
    fprintf(f, "### %s\n\n", g->title);
    if (g->n_rows <= 1) {
        fputs(g->notes, f);
        return;
    }
    for (int r = 0; r < g->n_rows; r++) {
        for (int c = 0; c < g->n_cols; c++) fprintf(f, "| %s ", g->cell[r][c]);
        fputs("|\n", f);
        if (r == 0) {
            for (int c = 0; c < g->n_cols; c++) fputs(g->right[c] ? "| ---: " : "| --- ", f);
            fputs("|\n", f);
        }
    }
    if (g->notes[0]) fprintf(f, "\n%s", g->notes);
    fputc('\n', f);
}

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(const lra_grid *g, FILE *f) {
    for (int r = 0; r < g->n_rows; r++)
        for (int c = 0; c < g->n_cols; c++) {
            csv_field(f, g->cell[r][c]);
            fputc(c + 1 < g->n_cols ? ',' : '\n', f);
        }
}

// LaTeX: the few non-ASCII marks the tables use become math, and the
// characters TeX reserves are escaped.
static void latex_text(FILE *f, const char *s) {
    static const char *const map[][2] = { { "±", "$\\pm$" },      { "†", "$^\\dagger$" }, { "‡", "$^\\ddagger$" },
                                          { "✗", "\\ding{55}" },  { "—", "--" },         { "−", "$-$" },
                                          { "Δ", "$\\Delta$" },   { "×", "$\\times$" },  { "&", "\\&" },
                                          { "%", "\\%" },         { "_", "\\_" },        { "#", "\\#" } };
    while (*s) {
        size_t i, n = sizeof map / sizeof map[0];
        for (i = 0; i < n; i++) {
            size_t k = strlen(map[i][0]);
            if (!strncmp(s, map[i][0], k)) {
                fputs(map[i][1], f);
                s += k;
                break;
            }
        }
        if (i == n) fputc(*s++, f);
    }
}

static void write_latex(const lra_grid *g, FILE *f) {
    fputs("% ", f);
    latex_text(f, g->title);
    fputs("\n\\begin{tabular}{", f);
    for (int c = 0; c < g->n_cols; c++) fputc(g->right[c] ? 'r' : 'l', f);
    fputs("}\n\\hline\n", f);
    for (int r = 0; r < g->n_rows; r++) {
        for (int c = 0; c < g->n_cols; c++) {
            if (c) fputs(" & ", f);
            latex_text(f, g->cell[r][c]);
        }
        fputs(r == 0 ? " \\\\\n\\hline\n" : " \\\\\n", f);
    }
    fputs("\\hline\n\\end{tabular}\n", f);
    for (const char *s = g->notes; *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)n, s);
        fputs("% ", f);
        latex_text(f, line);
        fputc('\n', f);
        s += n + (e != NULL);
    }
}

void lra_html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static void write_html(const lra_grid *g, FILE *f) {
    fputs("<table>\n<caption>", f);
    lra_html_escape(f, g->title);
    fputs("</caption>\n", f);
    for (int r = 0; r < g->n_rows; r++) {
        fputs("<tr>", f);
        for (int c = 0; c < g->n_cols; c++) {
            const char *tag = r == 0 ? "th" : "td";
            const char *v = g->cell[r][c], *cls = g->right[c] && r ? " class=\"num\"" : "";
            if (r && !strncmp(v, "REGRESSION", 10)) cls = " class=\"bad\"";
            else if (r && !strncmp(v, "improvement", 11)) cls = " class=\"good\"";
            fprintf(f, "<%s%s>", tag, cls);
            lra_html_escape(f, g->cell[r][c]);
            fprintf(f, "</%s>", tag);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    if (g->notes[0]) {
        fputs("<p class=\"note\">", f);
        for (const char *s = g->notes; *s; s++) {
            if (*s == '\n') fputs(s[1] ? "<br>" : "", f);
            else {
                char one[2] = { *s, 0 };
                lra_html_escape(f, one);
            }
        }
        fputs("</p>\n", f);
    }
}

void lra_grid_write(const lra_grid *g, const char *format, FILE *f) {
    if (!strcmp(format, "csv")) write_csv(g, f);
    else if (!strcmp(format, "latex")) write_latex(g, f);
    else if (!strcmp(format, "html")) write_html(g, f);
    else write_md(g, f);
}

// ---- database helpers ----------------------------------------------------------------

int lra_db_open_existing(lra_db *db, const char *path, lra_err *err) {
    FILE *probe = fopen(path, "rb");
    if (!probe) return lra_err_set(err, LRA_EIO, "%s: no such database (run 'lra sweep' first, or pass --db)", path);
    fclose(probe);
    return lra_db_open(db, path, err);
}

int lra_sweep_check(lra_db *db, const char *sweep, lra_err *err) {
    if (!sweep) return LRA_OK;
    sqlite3_stmt *st;
    if (lra_db_prepare(db, "SELECT DISTINCT name FROM sweeps ORDER BY name", &st, err)) return err->code;
    char known[384] = "";
    int found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *n = (const char *)sqlite3_column_text(st, 0);
        found |= !strcmp(n, sweep);
        size_t k = strlen(known);
        snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "", n);
    }
    sqlite3_finalize(st);
    return found ? LRA_OK
                 : lra_err_set(err, LRA_EINVAL, "no sweep named '%s' in %s (sweeps: %s)", sweep, db->path,
                               known[0] ? known : "none");
}

// ---- Table 1 -----------------------------------------------------------------------------

enum { T_LISTOPS, T_TEXT, T_RETRIEVAL, T_IMAGE, T_PATHFINDER, T_PATHX, N_TASKS };
static const char *const task_titles[N_TASKS] = { "ListOps", "Text", "Retrieval", "Image", "Pathfinder", "Path-X" };
static const char *const task_keys[N_TASKS] = { "listops", "text", "retrieval", "image", "pathfinder", "pathx" };

// Published accuracies (%), lra.md §4; NAN: the model failed the task
// (the 6-task average counts it as 50, the S4 paper's convention).
typedef struct {
    const char *name, *mixer, *source;
    double      acc[N_TASKS];
} published_row;

static const published_row published[] = {
    { "Transformer", "attention", "LRA paper Table 1", { 36.37, 64.27, 57.46, 42.44, 71.40, NAN } },
    { "S4 v1", NULL, "S4 paper (original)", { 58.35, 76.02, 87.09, 87.26, 86.05, 88.10 } },
    { "S4 v2", "s4", "S4 paper (updated)", { 59.60, 86.82, 90.90, 88.65, 94.20, 96.35 } },
    { "S4D-LegS", "s4d", "S4D paper", { 60.47, 86.18, 89.46, 88.19, 93.06, 91.95 } },
    { "S5", "s5", "S5 paper", { 62.15, 89.31, 91.40, 88.00, 95.33, 98.58 } },
    { "LRU", "lru", "LRU paper; Image is coloured sCIFAR ‡", { 60.2, 89.4, 89.9, 89.0, 95.1, 94.2 } },
    { "MEGA", "mega", "MEGA paper Table 2", { 63.14, 90.43, 91.25, 90.44, 96.01, 97.98 } },
    { "MEGA-chunk", NULL, "MEGA paper Table 2", { 58.76, 90.19, 90.97, 85.80, 94.41, 93.81 } },
};
#define N_PUBLISHED ((int)(sizeof published / sizeof published[0]))

#define MAX_MIXERS 32

typedef struct {
    char   mixer[32];
    double sum[N_TASKS], sumsq[N_TASKS];
    int    n[N_TASKS], failed[N_TASKS], synthetic[N_TASKS];
} mixer_acc;

// The value of `key = value` in a resolved config (key = value lines), or NULL.
static const char *config_value(const char *config, const char *key, char *buf, size_t cap) {
    size_t k = strlen(key);
    for (const char *s = config; s && *s;) {
        while (*s == ' ' || *s == '\t') s++;
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n > k && !strncmp(s, key, k) && (s[k] == ' ' || s[k] == '=')) {
            const char *v = s + k;
            while (*v == ' ' || *v == '=') v++;
            size_t m = (size_t)(s + n - v);
            while (m && (v[m - 1] == ' ' || v[m - 1] == '\r')) m--;
            snprintf(buf, cap, "%.*s", (int)m, v);
            return buf;
        }
        s += n + (e != NULL);
    }
    return NULL;
}

// Column of a run: Path-X is the pathx task or pathfinder at resolution 128
// (tasks/pathfinder.c); Pathfinder at other resolutions than 32 has no column.
static int task_column(const char *task, const char *config) {
    for (int t = 0; t < N_TASKS; t++)
        if (!strcmp(task, task_keys[t]) && t != T_PATHFINDER) return t;
    if (strcmp(task, "pathfinder")) return -1;
    char v[32];
    const char *res = config_value(config, "task.resolution", v, sizeof v);
    if (!res || !strcmp(res, "32")) return T_PATHFINDER;
    return !strcmp(res, "128") ? T_PATHX : -1;
}

static mixer_acc *mixer_slot(mixer_acc *m, int *n, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(m[i].mixer, name)) return &m[i];
    if (*n == MAX_MIXERS) return NULL;
    memset(&m[*n], 0, sizeof m[*n]);
    snprintf(m[*n].mixer, sizeof m[*n].mixer, "%s", name);
    return &m[(*n)++];
}

#define SWEEP_FILTER "(?1 IS NULL OR r.sweep_id IN (SELECT id FROM sweeps WHERE name = ?1))"

static int gather_accuracy(lra_db *db, const char *sweep, mixer_acc *m, int *n_mixers, lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT r.mixer, r.task, r.config, r.status, r.test_acc, r.synthetic FROM runs r WHERE " SWEEP_FILTER
                       " ORDER BY r.mixer, r.id",
                       &st, err))
        return err->code;
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    int rc;
    *n_mixers = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 3);
        int t = task_column((const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
        int done = !strcmp(status, "done") && sqlite3_column_type(st, 4) != SQLITE_NULL;
        int failed = !strcmp(status, "failed") || !strcmp(status, "diverged");
        if (t < 0 || (!done && !failed)) continue;
        mixer_acc *a = mixer_slot(m, n_mixers, (const char *)sqlite3_column_text(st, 0));
        if (!a) break;
        if (failed) {
            a->failed[t]++;
            continue;
        }
        double x = 100.0 * sqlite3_column_double(st, 4);
        a->sum[t] += x, a->sumsq[t] += x * x, a->n[t]++;
        a->synthetic[t] |= sqlite3_column_int(st, 5) != 0;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LRA_OK : lra_db_fail(db, "reading runs", err);
}

// mean and sample standard deviation of cell t (std 0 for one seed).
static double cell_mean(const mixer_acc *a, int t) { return a->sum[t] / a->n[t]; }
static double cell_std(const mixer_acc *a, int t) {
    if (a->n[t] < 2) return 0;
    double mu = cell_mean(a, t), var = (a->sumsq[t] - a->n[t] * mu * mu) / (a->n[t] - 1);
    return var > 0 ? sqrt(var) : 0;
}

// Averages of six task values (NAN: absent). 5-task: all five present;
// 6-task: the same, Path-X counted as 50 when absent or failed.
static void averages(const double v[N_TASKS], double *avg5, double *avg6) {
    double s = 0;
    *avg5 = *avg6 = NAN;
    for (int t = 0; t < T_PATHX; t++) {
        if (isnan(v[t])) return;
        s += v[t];
    }
    *avg5 = s / 5;
    *avg6 = (s + (isnan(v[T_PATHX]) ? 50 : v[T_PATHX])) / 6;
}

static void acc_header(lra_grid *g, int numeric) {
    int c = 0;
    lra_grid_set(g, 0, c++, "model");
    lra_grid_set(g, 0, c++, "source");
    for (int t = 0; t < N_TASKS; t++) {
        lra_grid_set(g, 0, c++, "%s", numeric ? task_keys[t] : task_titles[t]);
        if (numeric) lra_grid_set(g, 0, c++, "%s_std", task_keys[t]);
    }
    lra_grid_set(g, 0, c++, numeric ? "avg5" : "Avg (5)");
    lra_grid_set(g, 0, c++, numeric ? "avg6" : "Avg (6)");
    lra_grid_set(g, 0, c++, "seeds");
    if (numeric) lra_grid_set(g, 0, c++, "synthetic");
    for (int i = 2; i < c - 1 - numeric; i++) g->right[i] = 1;
    g->right[c - 1 - numeric] = 1;
}

static void put_value(lra_grid *g, int r, int *c, int numeric, double v, const char *absent) {
    if (isnan(v)) lra_grid_set(g, r, (*c)++, "%s", numeric ? "" : absent);
    else lra_grid_set(g, r, (*c)++, "%.2f", v);
}

// One row of our runs; v receives the task means (NAN where absent).
static void row_ours(lra_grid *g, int r, const mixer_acc *a, int numeric, double v[N_TASKS]) {
    int c = 0, lo = 1 << 30, hi = 0;
    char synth[96] = "";
    lra_grid_set(g, r, c++, "%s", a->mixer);
    lra_grid_set(g, r, c++, "ours");
    for (int t = 0; t < N_TASKS; t++) {
        v[t] = a->n[t] ? cell_mean(a, t) : NAN;
        if (a->n[t]) lo = a->n[t] < lo ? a->n[t] : lo, hi = a->n[t] > hi ? a->n[t] : hi;
        const char *mark = a->synthetic[t] ? " †" : "";
        if (a->synthetic[t]) {
            size_t k = strlen(synth);
            snprintf(synth + k, sizeof synth - k, "%s%s", k ? ";" : "", task_keys[t]);
        }
        if (numeric) {
            if (a->n[t]) lra_grid_set(g, r, c++, "%.2f", v[t]), lra_grid_set(g, r, c++, "%.2f", cell_std(a, t));
            else lra_grid_set(g, r, c++, "%s", a->failed[t] ? "FAIL" : ""), lra_grid_set(g, r, c++, "%s", "");
        } else if (!a->n[t]) lra_grid_set(g, r, c++, "%s", a->failed[t] ? "✗" : "—");
        else if (a->n[t] == 1) lra_grid_set(g, r, c++, "%.2f%s", v[t], mark);
        else lra_grid_set(g, r, c++, "%.2f ± %.2f%s", v[t], cell_std(a, t), mark);
    }
    double a5, a6;
    averages(v, &a5, &a6);
    put_value(g, r, &c, numeric, a5, "—");
    put_value(g, r, &c, numeric, a6, "—");
    if (!hi) lra_grid_set(g, r, c++, "0");
    else if (lo == hi) lra_grid_set(g, r, c++, "%d", hi);
    else lra_grid_set(g, r, c++, "%d-%d", lo, hi);
    if (numeric) lra_grid_set(g, r, c++, "%s", synth);
}

static void row_published(lra_grid *g, int r, const published_row *p, int numeric) {
    int c = 0;
    lra_grid_set(g, r, c++, "%s", p->name);
    lra_grid_set(g, r, c++, "%s", p->source);
    for (int t = 0; t < N_TASKS; t++) {
        if (isnan(p->acc[t])) lra_grid_set(g, r, c++, "%s", numeric ? "FAIL" : "✗");
        else lra_grid_set(g, r, c++, "%.2f", p->acc[t]);
        if (numeric) lra_grid_set(g, r, c++, "%s", "");
    }
    double a5, a6;
    averages(p->acc, &a5, &a6);
    put_value(g, r, &c, numeric, a5, "—");
    put_value(g, r, &c, numeric, a6, "—");
    lra_grid_set(g, r, c++, "%s", "");
    if (numeric) lra_grid_set(g, r, c++, "%s", "");
}

// ours − published where both have a number (a failed published Path-X is 50).
static void row_delta(lra_grid *g, int r, const double ours[N_TASKS], const published_row *p, int numeric) {
    int c = 0;
    lra_grid_set(g, r, c++, "Δ %s", p->name);
    lra_grid_set(g, r, c++, "ours − published");
    double pub[N_TASKS], d[3][2];
    for (int t = 0; t < N_TASKS; t++) {
        pub[t] = isnan(p->acc[t]) ? 50 : p->acc[t];
        put_value(g, r, &c, numeric, ours[t] - pub[t], "");
        if (numeric) lra_grid_set(g, r, c++, "%s", "");
    }
    averages(ours, &d[0][0], &d[0][1]);
    averages(p->acc, &d[1][0], &d[1][1]);
    for (int k = 0; k < 2; k++) put_value(g, r, &c, numeric, d[0][k] - d[1][k], "");
    lra_grid_set(g, r, c++, "%s", "");
    if (numeric) lra_grid_set(g, r, c++, "%s", "");
    if (!numeric)  // signed numbers: "+1.23", "−0.50"
        for (int i = 2; i < c; i++) {
            char *s = g->cell[r][i];
            if (!s[0]) continue;
            char tmp[LRA_GRID_CELL];
            snprintf(tmp, sizeof tmp, "%s%s", s[0] == '-' ? "−" : "+", s + (s[0] == '-'));
            strcpy(s, tmp);
        }
}

int lra_table_accuracy(lra_db *db, const char *sweep, int numeric, lra_grid *g, lra_err *err) {
    memset(g, 0, sizeof *g);
    snprintf(g->title, sizeof g->title, "LRA Table 1: test accuracy (%%) at the best validation step%s%s",
             sweep ? ", sweep " : "", sweep ? sweep : "");
    mixer_acc m[MAX_MIXERS];
    int n_mixers = 0, r = 1, used[N_PUBLISHED] = { 0 };
    if (gather_accuracy(db, sweep, m, &n_mixers, err)) return err->code;
    acc_header(g, numeric);
    int any_synth = 0;
    for (int i = 0; i < n_mixers; i++) {
        double v[N_TASKS];
        row_ours(g, r++, &m[i], numeric, v);
        for (int t = 0; t < N_TASKS; t++) any_synth |= m[i].synthetic[t];
        for (int p = 0; p < N_PUBLISHED; p++)
            if (published[p].mixer && !strcmp(published[p].mixer, m[i].mixer)) {
                row_published(g, r++, &published[p], numeric);
                row_delta(g, r++, v, &published[p], numeric);
                used[p] = 1;
            }
    }
    for (int p = 0; p < N_PUBLISHED; p++)
        if (!used[p]) row_published(g, r++, &published[p], numeric);
    lra_grid_note(g, "Ours: mean ± sample standard deviation over seeds of runs with status done; seeds: runs per cell.");
    lra_grid_note(g, "Avg (5): the LRA paper's average without Path-X; Avg (6): with Path-X, counted as 50 when failed (✗) "
                 "or absent (the S4 paper's convention).");
    if (any_synth)
        lra_grid_note(g, "† at least one run of the cell trained on generated stand-in data, not the official LRA files.");
    lra_grid_note(g, "‡ LRU reports coloured sCIFAR instead of LRA's grayscale Image task.");
    return LRA_OK;
}

// ---- Table 2 -------------------------------------------------------------------------------

#define MAX_LENGTHS 12

typedef struct {
    char   mixer[32];
    double steps[MAX_LENGTHS], tokens[MAX_LENGTHS], bytes[MAX_LENGTHS];
    int    n[MAX_LENGTHS];
} mixer_speed;

static int length_slot(int *lengths, int *n, int L) {
    int i = 0;
    while (i < *n && lengths[i] < L) i++;
    if (i < *n && lengths[i] == L) return i;
    if (*n == MAX_LENGTHS) return -1;
    memmove(lengths + i + 1, lengths + i, (size_t)(*n - i) * sizeof *lengths);
    lengths[i] = L;
    (*n)++;
    return -2 - i;  // inserted at i: the caller shifts the per-mixer arrays
}

static void shift_speed(mixer_speed *s, int n_mixers, int at, int n_lengths) {
    for (int i = 0; i < n_mixers; i++) {
        size_t k = (size_t)(n_lengths - 1 - at);
        memmove(s[i].steps + at + 1, s[i].steps + at, k * sizeof(double));
        memmove(s[i].tokens + at + 1, s[i].tokens + at, k * sizeof(double));
        memmove(s[i].bytes + at + 1, s[i].bytes + at, k * sizeof(double));
        memmove(s[i].n + at + 1, s[i].n + at, k * sizeof(int));
        s[i].steps[at] = s[i].tokens[at] = s[i].bytes[at] = 0, s[i].n[at] = 0;
    }
}

static int gather_speed(lra_db *db, const char *sweep, mixer_speed *s, int *n_mixers, int *lengths, int *n_lengths,
                        lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT r.mixer, r.seq_len, p.steps_per_s, p.tokens_per_s,"
                       " COALESCE(p.peak_backend_bytes, p.peak_rss_bytes) FROM perf p JOIN runs r ON r.id = p.run_id"
                       " WHERE p.phase = 'train' AND r.task = 'text' AND p.steps_per_s IS NOT NULL AND " SWEEP_FILTER
                       " ORDER BY r.mixer, r.id",
                       &st, err))
        return err->code;
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    int rc;
    *n_mixers = *n_lengths = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mixer = (const char *)sqlite3_column_text(st, 0);
        int i = 0;
        while (i < *n_mixers && strcmp(s[i].mixer, mixer)) i++;
        if (i == *n_mixers) {
            if (i == MAX_MIXERS) continue;
            memset(&s[i], 0, sizeof s[i]);
            snprintf(s[i].mixer, sizeof s[i].mixer, "%s", mixer);
            (*n_mixers)++;
        }
        int j = length_slot(lengths, n_lengths, sqlite3_column_int(st, 1));
        if (j == -1) continue;
        if (j < -1) shift_speed(s, *n_mixers, j = -2 - j, *n_lengths);
        s[i].steps[j] += sqlite3_column_double(st, 2);
        s[i].tokens[j] += sqlite3_column_double(st, 3);
        s[i].bytes[j] += sqlite3_column_double(st, 4);
        s[i].n[j]++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LRA_OK : lra_db_fail(db, "reading perf", err);
}

static void length_label(int L, char *out, size_t cap) {
    if (L >= 1024 && L % 1024 == 0) snprintf(out, cap, "%dK", L / 1024);
    else snprintf(out, cap, "%d", L);
}

static void bytes_label(double b, char *out, size_t cap) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(out, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else snprintf(out, cap, "%.1f MiB", b / (1024.0 * 1024));
}

static void speed_long(lra_grid *g, const mixer_speed *s, int n_mixers, const int *lengths, int n_lengths,
                       const mixer_speed *att) {
    const char *head[] = { "mixer", "L", "steps_per_s", "tokens_per_s", "peak_mib", "speed_vs_attention",
                           "memory_vs_attention" };
    for (int c = 0; c < 7; c++) lra_grid_set(g, 0, c, "%s", head[c]), g->right[c] = c > 0;
    int r = 1;
    for (int i = 0; i < n_mixers; i++)
        for (int j = 0; j < n_lengths && r < LRA_GRID_ROWS; j++, r++) {
            if (!s[i].n[j]) {
                r--;
                continue;
            }
            double k = s[i].n[j], sp = s[i].steps[j] / k, mem = s[i].bytes[j] / k;
            lra_grid_set(g, r, 0, "%s", s[i].mixer);
            lra_grid_set(g, r, 1, "%d", lengths[j]);
            lra_grid_set(g, r, 2, "%.4g", sp);
            lra_grid_set(g, r, 3, "%.6g", s[i].tokens[j] / k);
            lra_grid_set(g, r, 4, "%.1f", mem / 1048576.0);
            if (att && att->n[j]) {
                lra_grid_set(g, r, 5, "%.3f", sp / (att->steps[j] / att->n[j]));
                lra_grid_set(g, r, 6, "%.3f", mem / (att->bytes[j] / att->n[j]));
            } else {
                lra_grid_set(g, r, 5, "%s", "");
                lra_grid_set(g, r, 6, "%s", "");
            }
        }
}

static void speed_wide(lra_grid *g, const mixer_speed *s, int n_mixers, const int *lengths, int n_lengths,
                       const mixer_speed *att) {
    lra_grid_set(g, 0, 0, "model");
    for (int j = 0; j < n_lengths; j++) {
        char l[16];
        length_label(lengths[j], l, sizeof l);
        lra_grid_set(g, 0, 1 + j, "steps/s %s", l);
        lra_grid_set(g, 0, 1 + n_lengths + j, "memory %s", l);
        g->right[1 + j] = g->right[1 + n_lengths + j] = 1;
    }
    for (int i = 0; i < n_mixers; i++) {
        lra_grid_set(g, 1 + i, 0, "%s", s[i].mixer);
        for (int j = 0; j < n_lengths; j++) {
            if (!s[i].n[j]) {
                lra_grid_set(g, 1 + i, 1 + j, "—");
                lra_grid_set(g, 1 + i, 1 + n_lengths + j, "—");
                continue;
            }
            double k = s[i].n[j], sp = s[i].steps[j] / k, mem = s[i].bytes[j] / k;
            char b[24];
            bytes_label(mem, b, sizeof b);
            if (att && att->n[j] && att != &s[i]) {
                lra_grid_set(g, 1 + i, 1 + j, "%#.3g (%.2f×)", sp, sp / (att->steps[j] / att->n[j]));
                lra_grid_set(g, 1 + i, 1 + n_lengths + j, "%s (%.2f×)", b, mem / (att->bytes[j] / att->n[j]));
            } else {
                lra_grid_set(g, 1 + i, 1 + j, "%#.3g", sp);
                lra_grid_set(g, 1 + i, 1 + n_lengths + j, "%s", b);
            }
        }
    }
}

int lra_table_speed(lra_db *db, const char *sweep, int numeric, lra_grid *g, lra_err *err) {
    memset(g, 0, sizeof *g);
    snprintf(g->title, sizeof g->title, "LRA Table 2: training steps/s and peak memory on Text%s%s",
             sweep ? ", sweep " : "", sweep ? sweep : "");
    mixer_speed *s = calloc(MAX_MIXERS, sizeof *s);
    int n_mixers = 0, lengths[MAX_LENGTHS], n_lengths = 0;
    if (!s) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (gather_speed(db, sweep, s, &n_mixers, lengths, &n_lengths, err)) {
        free(s);
        return err->code;
    }
    const mixer_speed *att = NULL;
    for (int i = 0; i < n_mixers; i++)
        if (!strcmp(s[i].mixer, "attention")) att = &s[i];
    if (numeric) speed_long(g, s, n_mixers, lengths, n_lengths, att);
    else speed_wide(g, s, n_mixers, lengths, n_lengths, att);
    if (!n_mixers) {
        g->n_rows = 0;
        lra_grid_note(g, "No training perf rows of Text-task runs in the database.");
    } else {
        lra_grid_note(g, "Mean over the runs of each point (train phase of the perf table); memory: peak backend bytes "
                     "(process RSS when the backend did not report).");
        lra_grid_note(g, att ? "(×): relative to attention at the same length."
                         : "No attention runs on Text: no ratios (the LRA paper's Table 2 divides by the Transformer).");
    }
    free(s);
    return LRA_OK;
}

// ---- the command ---------------------------------------------------------------------------

static const char table_usage[] =
    "usage: lra table [options]\n"
    "  --db FILE           results database (default " LRA_DB_DEFAULT ")\n"
    "  --sweep NAME        only the runs of this sweep (default: all)\n"
    "  --kind K            accuracy (Table 1), speed (Table 2) or all (default)\n"
    "  --format F          md (default), csv, latex or html\n"
    "  --out FILE          write there instead of standard output\n";

static const char *const table_options[] = { "--db", "--sweep", "--kind", "--format", "--out", NULL };

int lra_cmd_table(int argc, char **argv, lra_err *err) {
    const char *path = LRA_DB_DEFAULT, *sweep = NULL, *kind = "all", *format = "md", *out = NULL;
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(table_usage, stdout);
            return LRA_OK;
        }
        if (lra_arg_option(o, v, table_options, "lra table", err)) return err->code;
        if (!strcmp(o, "--db")) path = v;
        else if (!strcmp(o, "--sweep")) sweep = v;
        else if (!strcmp(o, "--kind")) kind = v;
        else if (!strcmp(o, "--format")) format = v;
        else if (!strcmp(o, "--out")) out = v;
    }
    if (strcmp(kind, "all") && strcmp(kind, "accuracy") && strcmp(kind, "speed"))
        return lra_err_set(err, LRA_EUSAGE, "--kind: expected accuracy, speed or all, got '%s'", kind);
    if (strcmp(format, "md") && strcmp(format, "csv") && strcmp(format, "latex") && strcmp(format, "html"))
        return lra_err_set(err, LRA_EUSAGE, "--format: expected md, csv, latex or html, got '%s'", format);
    lra_db db;
    if (lra_db_open_existing(&db, path, err)) return err->code;
    lra_grid *g = malloc(sizeof *g);
    FILE *f = NULL;
    int rc = g ? lra_sweep_check(&db, sweep, err) : lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!rc && !(f = out ? fopen(out, "w") : stdout)) rc = lra_err_set(err, LRA_EIO, "%s: cannot open for writing", out);
    int numeric = !strcmp(format, "csv");
    if (!rc && strcmp(kind, "speed") && !(rc = lra_table_accuracy(&db, sweep, numeric, g, err)))
        lra_grid_write(g, format, f);
    if (!rc && strcmp(kind, "accuracy") && !(rc = lra_table_speed(&db, sweep, numeric, g, err))) {
        if (!strcmp(kind, "all")) fputc('\n', f);
        lra_grid_write(g, format, f);
    }
    if (f && f != stdout && fclose(f) && !rc) rc = lra_err_set(err, LRA_EIO, "%s: write failed", out);
    free(g);
    lra_db_close(&db);
    return rc;
}
