// plot.c: `lra plot`: writes a gnuplot script (data inline as datablocks)
// to a temporary file and runs gnuplot on it; gnuplot draws the PNG or SVG.
#include "plot.h"

#include "args.h"
#include "table.h"

#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void lra_plot_defaults(lra_plot_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = "scaling", o->task = "text", o->metric = "tokens";
    o->width = 960, o->height = 400;
}

// gnuplot's single-quoted string: '' stands for one quote.
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

// The terminal and output; the palette is one of gnuplot's defaults.
static int gp_header(FILE *f, const lra_plot_opts *o, const char *out, lra_err *err) {
    if (ends_with(out, ".png")) fprintf(f, "set terminal pngcairo size %d,%d font 'sans,10'\n", o->width, o->height);
    else if (ends_with(out, ".svg"))
        fprintf(f, "set terminal svg size %d,%d font 'sans,11' background '#ffffff'\n", o->width, o->height);
    else return lra_err_set(err, LRA_EUSAGE, "--out: expected a .png or .svg file name, got '%s'", out);
    fputs("set output ", f);
    gp_string(f, out);
    fputs("\nset termoption noenhanced\nset grid\nset key top left box opaque\n", f);
    return LRA_OK;
}

#define SWEEP_FILTER "(?1 IS NULL OR r.sweep_id IN (SELECT id FROM sweeps WHERE name = ?1))"

// ---- speed and memory against L ----------------------------------------------------------------

// x tics at the measured lengths ("1K", "4K"), the range a little wider.
static void gp_length_tics(FILE *f, const int *lengths, int n) {
    int lo = lengths[0], hi = lengths[0];
    fputs("set xtics (", f);
    for (int i = 0; i < n; i++) {
        if (lengths[i] % 1024 == 0) fprintf(f, "%s'%dK' %d", i ? ", " : "", lengths[i] / 1024, lengths[i]);
        else fprintf(f, "%s'%d' %d", i ? ", " : "", lengths[i], lengths[i]);
        lo = lengths[i] < lo ? lengths[i] : lo, hi = lengths[i] > hi ? lengths[i] : hi;
    }
    fprintf(f, ")\nset xrange [%g:%g]\n", lo / 1.3, hi * 1.3);
}

// Rows (series, L, tokens/s, steps/s, peak bytes) from the runs' perf rows,
// or from a bench set's layer rows (steps: fwd+bwd iterations per second;
// the series names B and H when the set has several).
static int scaling_query(lra_db *db, const lra_plot_opts *o, sqlite3_stmt **st, lra_err *err) {
    if (o->bench) {
        if (lra_db_prepare(db,
                           "WITH s AS (SELECT id FROM bench_sets WHERE name = ?1 OR '@' || id = ?1 ORDER BY id DESC LIMIT 1),"
                           " b AS (SELECT * FROM bench WHERE set_id = (SELECT id FROM s) AND kind = 'layer' AND status = 'ok')"
                           " SELECT CASE WHEN (SELECT count(DISTINCT B || 'x' || H) FROM b) > 1"
                           " THEN mixer || ' B=' || B || ' H=' || H ELSE mixer END AS series, L, AVG(tokens_per_s),"
                           " AVG(1000.0 / median_ms), AVG(peak_bytes) FROM b GROUP BY series, L ORDER BY series, L",
                           st, err))
            return err->code;
        sqlite3_bind_text(*st, 1, o->bench, -1, SQLITE_STATIC);
        return LRA_OK;
    }
    if (lra_db_prepare(db,
                       "SELECT r.mixer, r.seq_len, AVG(p.tokens_per_s), AVG(p.steps_per_s),"
                       " AVG(COALESCE(p.peak_backend_bytes, p.peak_rss_bytes)) FROM perf p JOIN runs r ON r.id = p.run_id"
                       " WHERE p.phase = 'train' AND r.task = ?2 AND " SWEEP_FILTER
                       " GROUP BY r.mixer, r.seq_len ORDER BY r.mixer, r.seq_len",
                       st, err))
        return err->code;
    if (o->sweep) sqlite3_bind_text(*st, 1, o->sweep, -1, SQLITE_STATIC);
    sqlite3_bind_text(*st, 2, o->task, -1, SQLITE_STATIC);
    return LRA_OK;
}

static int gp_scaling(FILE *f, lra_db *db, const lra_plot_opts *o, lra_err *err) {
    sqlite3_stmt *st;
    if (scaling_query(db, o, &st, err)) return err->code;
    char mixers[32][64];
    int n = 0, rc, tokens = strcmp(o->metric, "steps") != 0, lengths[16], n_len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        if (!n || strcmp(mixers[n - 1], m)) {
            if (n == 32) break;
            if (n) fputs("EOD\n", f);
            snprintf(mixers[n], sizeof mixers[n], "%s", m);
            fprintf(f, "$m%d << EOD\n", n++);
        }
        int L = sqlite3_column_int(st, 1), k = 0;
        while (k < n_len && lengths[k] != L) k++;
        if (k == n_len && n_len < 16) lengths[n_len++] = L;
        fprintf(f, "%d %.6g %.6g\n", L, sqlite3_column_double(st, tokens ? 2 : 3),
                sqlite3_column_double(st, 4) / 1048576.0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return lra_db_fail(db, "reading perf", err);
    if (!n && o->bench) return lra_err_set(err, LRA_EINVAL, "no measured layer rows in bench set '%s' of %s", o->bench, db->path);
    if (!n)
        return lra_err_set(err, LRA_EINVAL, "no training perf rows of task '%s'%s%s in %s (run a scaling sweep)", o->task,
                           o->sweep ? " in sweep " : "", o->sweep ? o->sweep : "", db->path);
    fputs("EOD\nset multiplot layout 1,2\nset logscale x 2\nset logscale y 10\nset xlabel 'sequence length L'\n", f);
    gp_length_tics(f, lengths, n_len);
    fputs("set format y '%.0s%c'\n", f);
    char what[96];
    snprintf(what, sizeof what, o->bench ? "bench set %s" : "%s", o->bench ? o->bench : o->task);
    fputs("set ylabel ", f);
    gp_string(f, o->bench ? (tokens ? "fwd+bwd tokens/s" : "fwd+bwd iterations/s") : (tokens ? "training tokens/s" : "training steps/s"));
    fputs("\nset title ", f);
    gp_string(f, "Speed, ");
    fputs(" . ", f);
    gp_string(f, what);
    fputs("\nplot ", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s$m%d using 1:2 with linespoints lw 2 pt 7 title ", i ? ", " : "", i);
        gp_string(f, mixers[i]);
    }
    fputs("\nset format y '%g'\nset ylabel 'peak memory (MiB)'\nset title ", f);
    gp_string(f, "Peak memory, ");
    fputs(" . ", f);
    gp_string(f, what);
    fputs("\nplot ", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s$m%d using 1:3 with linespoints lw 2 pt 7 title ", i ? ", " : "", i);
        gp_string(f, mixers[i]);
    }
    fputs("\nunset multiplot\n", f);
    return LRA_OK;
}

// ---- training curves ----------------------------------------------------------------------------

static int curve_runs(lra_db *db, const lra_plot_opts *o, int64_t *ids, int *n, lra_err *err) {
    *n = o->n_runs;
    memcpy(ids, o->runs, sizeof(int64_t) * (size_t)o->n_runs);
    if (*n) return LRA_OK;
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id) AND "
                       SWEEP_FILTER " ORDER BY r.id LIMIT 8",
                       &st, err))
        return err->code;
    if (o->sweep) sqlite3_bind_text(st, 1, o->sweep, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) ids[(*n)++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return *n ? LRA_OK : lra_err_set(err, LRA_EINVAL, "no runs with metrics rows in %s", db->path);
}

// Datablocks $t<i> (train) and $v<i> (validation): step loss acc; label
// receives "id: mixer task seed N".
static int curve_data(FILE *f, lra_db *db, int i, int64_t id, char *label, size_t cap, int *has_val, lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db, "SELECT mixer, task, seed FROM runs WHERE id = ?", &st, err)) return err->code;
    sqlite3_bind_int64(st, 1, id);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        snprintf(label, cap, "%lld: %s %s seed %d", (long long)id, sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                 sqlite3_column_int(st, 2));
    sqlite3_finalize(st);
    if (!found) return lra_err_set(err, LRA_EINVAL, "--runs: no run with id %lld in %s", (long long)id, db->path);
    if (lra_db_prepare(db, "SELECT step, loss, acc FROM metrics WHERE run_id = ? AND split = ? ORDER BY step", &st, err))
        return err->code;
    int rows[2] = { 0, 0 };
    for (int s = 0; s < 2; s++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, s ? "val" : "train", -1, SQLITE_STATIC);
        fprintf(f, "$%c%d << EOD\n", s ? 'v' : 't', i);
        while (sqlite3_step(st) == SQLITE_ROW) {
            fprintf(f, "%lld", (long long)sqlite3_column_int64(st, 0));
            for (int c = 1; c <= 2; c++)
                if (sqlite3_column_type(st, c) == SQLITE_NULL) fputs(" NaN", f);
                else fprintf(f, " %.6g", sqlite3_column_double(st, c));
            fputc('\n', f);
            rows[s]++;
        }
        fputs("EOD\n", f);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    *has_val = rows[1] > 0;
    return rows[0] + rows[1] ? LRA_OK
                             : lra_err_set(err, LRA_EINVAL, "run %lld has no metrics rows in %s", (long long)id, db->path);
}

static void curve_plot(FILE *f, int n, char label[][96], const int *has_val, int column) {
    fputs("plot ", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s$t%d using 1:%d with lines lw 2 lc %d title ", i ? ", " : "", i, column, i + 1);
        gp_string(f, label[i]);
        if (has_val[i]) fprintf(f, ", $v%d using 1:%d with linespoints dt 2 pt 7 lc %d notitle", i, column, i + 1);
    }
    fputc('\n', f);
}

static int gp_curves(FILE *f, lra_db *db, const lra_plot_opts *o, lra_err *err) {
    int64_t ids[LRA_PLOT_MAX_RUNS];
    int n, has_val[LRA_PLOT_MAX_RUNS];
    char label[LRA_PLOT_MAX_RUNS][96];
    if (curve_runs(db, o, ids, &n, err)) return err->code;
    for (int i = 0; i < n; i++)
        if (curve_data(f, db, i, ids[i], label[i], sizeof label[i], &has_val[i], err)) return err->code;
    fputs("set multiplot layout 1,2\nset xlabel 'step'\nset key top right box opaque\n", f);
    fputs("set ylabel 'loss'\nset title 'Loss (lines: train, dashed: validation)'\n", f);
    curve_plot(f, n, label, has_val, 2);
    fputs("set ylabel 'accuracy'\nset title 'Accuracy (lines: train, dashed: validation)'\nset key bottom right\n", f);
    curve_plot(f, n, label, has_val, 3);
    fputs("unset multiplot\n", f);
    return LRA_OK;
}

// ---- running gnuplot ----------------------------------------------------------------------------

// Absolute path of gnuplot on PATH, or an LRA_EUNSUPPORTED error.
static int find_gnuplot(char *path, size_t cap, lra_err *err) {
    const char *p = getenv("PATH");
    for (p = p ? p : "/usr/bin:/bin"; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(path, cap, "%.*s/gnuplot", (int)n, p);
        if (n && access(path, X_OK) == 0) return LRA_OK;
        p += n + (e != NULL);
    }
    return lra_err_set(err, LRA_EUNSUPPORTED, "gnuplot is not installed (apt-get install gnuplot-nox)");
}

static int run_gnuplot(const char *script, lra_err *err) {
    char exe[1024];
    if (find_gnuplot(exe, sizeof exe, err)) return err->code;
    char *argv[] = { exe, (char *)script, NULL };
    pid_t pid;
    int status;
    if (posix_spawn(&pid, exe, NULL, NULL, argv, environ))
        return lra_err_set(err, LRA_EIO, "cannot start %s", exe);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        return lra_err_set(err, LRA_EIO, "gnuplot failed on the script it was given (its messages are above)");
    return LRA_OK;
}

int lra_plot(lra_db *db, const lra_plot_opts *o, const char *out, lra_err *err) {
    char script[] = "/tmp/lra_plot_XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0) return lra_err_set(err, LRA_EIO, "cannot create a temporary file for the gnuplot script");
    FILE *f = fdopen(fd, "w");
    int rc = f ? gp_header(f, o, out, err) : lra_err_set(err, LRA_EIO, "cannot write the gnuplot script");
    if (!rc && !strcmp(o->kind, "scaling")) rc = gp_scaling(f, db, o, err);
    else if (!rc && !strcmp(o->kind, "curves")) rc = gp_curves(f, db, o, err);
    else if (!rc) rc = lra_err_set(err, LRA_EUSAGE, "--kind: expected scaling or curves, got '%s'", o->kind);
    if (f && fclose(f) && !rc) rc = lra_err_set(err, LRA_EIO, "cannot write the gnuplot script");
    if (!f) close(fd);
    if (!rc) rc = run_gnuplot(script, err);
    unlink(script);
    return rc;
}

// ---- the command ---------------------------------------------------------------------------------

static const char plot_usage[] =
    "usage: lra plot --kind scaling|curves --out FILE.png|FILE.svg [options]\n"
    "  --db FILE         results database (default " LRA_DB_DEFAULT ")\n"
    "  --sweep NAME      only the runs of this sweep (default: all)\n"
    "  --kind K          scaling: training speed and peak memory against L per mixer (log-log);\n"
    "                    curves: loss and accuracy against step (train and validation)\n"
    "  --task NAME       scaling: the task of the runs (default text)\n"
    "  --bench SET       scaling: from a bench set (name or @ID; lra bench --db) instead of runs\n"
    "  --metric M        scaling: tokens (tokens/s, default) or steps (steps/s)\n"
    "  --runs IDS        curves: comma-separated run ids (default: the first 8 with metrics)\n"
    "  --size WxH        pixels (default 960x400)\n"
    "  --out FILE        .png (pngcairo) or .svg; needs gnuplot\n";

static const char *const plot_options[] = { "--db", "--sweep", "--kind", "--task", "--bench", "--metric", "--runs",
                                            "--size", "--out", NULL };

static int parse_runs(const char *v, lra_plot_opts *o, lra_err *err) {
    o->n_runs = 0;
    for (const char *s = v; *s;) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 1 || (*end && *end != ',') || o->n_runs == LRA_PLOT_MAX_RUNS)
            return lra_err_set(err, LRA_EUSAGE, "--runs: expected up to %d comma-separated run ids, got '%s'",
                               LRA_PLOT_MAX_RUNS, v);
        o->runs[o->n_runs++] = x;
        s = *end ? end + 1 : end;
    }
    return o->n_runs ? LRA_OK : lra_err_set(err, LRA_EUSAGE, "--runs: empty list");
}

int lra_cmd_plot(int argc, char **argv, lra_err *err) {
    lra_plot_opts o;
    lra_plot_defaults(&o);
    const char *path = LRA_DB_DEFAULT, *out = NULL;
    for (int i = 0; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(plot_usage, stdout);
            return LRA_OK;
        }
        if (lra_arg_option(a, v, plot_options, "lra plot", err)) return err->code;
        int rc = LRA_OK;
        if (!strcmp(a, "--db")) path = v;
        else if (!strcmp(a, "--sweep")) o.sweep = v;
        else if (!strcmp(a, "--kind")) o.kind = v;
        else if (!strcmp(a, "--task")) o.task = v;
        else if (!strcmp(a, "--bench")) o.bench = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--runs")) rc = parse_runs(v, &o, err);
        else if (!strcmp(a, "--metric")) {
            o.metric = v;
            if (strcmp(v, "tokens") && strcmp(v, "steps"))
                rc = lra_err_set(err, LRA_EUSAGE, "--metric: expected tokens or steps, got '%s'", v);
        } else if (!strcmp(a, "--size") && (sscanf(v, "%dx%d", &o.width, &o.height) != 2 || o.width < 100 ||
                                            o.height < 100 || o.width > 8000 || o.height > 8000))
            rc = lra_err_set(err, LRA_EUSAGE, "--size: expected WxH in pixels (100..8000), got '%s'", v);
        if (rc) return rc;
    }
    if (!out) return lra_err_set(err, LRA_EUSAGE, "--out: missing (a .png or .svg file)");
    if (strcmp(o.kind, "scaling") && strcmp(o.kind, "curves"))
        return lra_err_set(err, LRA_EUSAGE, "--kind: expected scaling or curves, got '%s'", o.kind);
    if (!ends_with(out, ".png") && !ends_with(out, ".svg"))
        return lra_err_set(err, LRA_EUSAGE, "--out: expected a .png or .svg file name, got '%s'", out);
    lra_db db;
    if (lra_db_open_existing(&db, path, err)) return err->code;
    int rc = lra_sweep_check(&db, o.sweep, err);
    if (!rc) rc = lra_plot(&db, &o, out, err);
    lra_db_close(&db);
    if (!rc) printf("%s written\n", out);
    return rc;
}
