// run.c: `lra run` / `lra sweep` (validate every point, then train each one
// and record it) and `lra runs` (list recorded runs).
#include "run.h"
#include "args.h"
#include "progress.h"
#include "train.h"
#include "../backends/backend.h"
#include "../models/checkpoint.h"

#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char run_usage[] =
    "usage: lra sweep [FILE] [options]   train every run of an experiment config\n"
    "       lra run [FILE] [options]     the same, for a config that is a single run\n"
    "Without FILE the built-in quick experiment runs (experiments/quick/default.yaml).\n"
    "  --set KEY=VALUE   override a setting (key path as in the YAML: model.d_model=64,\n"
    "                    seed=2, task.seq_len=512); repeatable; removes a swept key's axis\n"
    "  --resume          skip runs already done (same config hash) and continue\n"
    "                    interrupted ones from their last checkpoint\n"
    "  --dry-run         validate and list the runs (label, hash), train nothing\n"
    "  --print-config    with --dry-run: also print each run's resolved config\n"
    "  --db PATH         results database (same as --set db=PATH)\n"
    "  --threads N       CPU threads (same as --set threads=N)\n"
    "  --backend NAME    cpu or cuda (same as --set backend=NAME)\n"
    "  --quiet           no progress lines\n";

static const char runs_usage[] =
    "usage: lra runs [--db PATH] [--sweep NAME] [--task T] [--mixer M] [--status S] [--limit N]\n"
    "Lists recorded runs, newest last (status: queued, running, done, failed, diverged, interrupted).\n";

// Set by SIGINT/SIGTERM; the training loop stops at the next step. The only
// process-wide mutable state of the harness: a signal handler needs it.
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    const char *file;
    lra_kv      sets[64];
    int         n_sets;
    char        buf[64][512];
    int         resume, dry_run, print_config, quiet, help;
} run_args;

static const char *const run_options[] = { "--set", "--resume", "--dry-run", "--print-config", "--db", "--threads",
                                           "--backend", "--quiet", NULL };

static int parse_run_args(int argc, char **argv, run_args *a, lra_err *err) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            a->help = 1;
            return LRA_OK;
        }
        if (o[0] != '-') {
            if (a->file) return lra_err_set(err, LRA_EUSAGE, "one config file only (got '%s' and '%s')", a->file, o);
            a->file = o;
            continue;
        }
        int flag = !strcmp(o, "--resume") || !strcmp(o, "--dry-run") || !strcmp(o, "--print-config") || !strcmp(o, "--quiet");
        int rc = lra_arg_option(o, flag ? "" : v, run_options, "lra sweep", err);
        if (rc) return rc;
        if (!strcmp(o, "--resume")) a->resume = 1;
        else if (!strcmp(o, "--dry-run")) a->dry_run = 1;
        else if (!strcmp(o, "--print-config")) a->print_config = 1;
        else if (!strcmp(o, "--quiet")) a->quiet = 1;
        else {
            if (a->n_sets == 64) return lra_err_set(err, LRA_EUSAGE, "%s: too many settings", o);
            const char *key = !strcmp(o, "--db") ? "db" : !strcmp(o, "--threads") ? "threads" : !strcmp(o, "--backend") ? "backend" : NULL;
            if (key) snprintf(a->buf[a->n_sets], sizeof a->buf[0], "%s=%s", key, v);
            else snprintf(a->buf[a->n_sets], sizeof a->buf[0], "%s", v);
            int n = a->n_sets;
            if ((rc = lra_arg_kv(key ? o : "--set", a->buf[n], a->sets, &a->n_sets, 64, err))) return rc;
            i++;
        }
    }
    return LRA_OK;
}

// ---- one run ----------------------------------------------------------------------------
typedef struct {
    lra_backend *be;
    char         name[16];
    int          threads;
} backend_slot;

// The backend of a run; reused while consecutive runs ask for the same one.
static lra_backend *get_backend(backend_slot *slot, const lra_run_spec *r, lra_err *err) {
    if (slot->be && !strcmp(slot->name, r->backend) && slot->threads == r->threads) return slot->be;
    if (slot->be) lra_backend_free(slot->be);
    slot->be = lra_backend_init(r->backend, r->threads, err);
    snprintf(slot->name, sizeof slot->name, "%s", r->backend);
    slot->threads = r->threads;
    if (!slot->be) return NULL;
    const char *missing[128];
    int n = lra_backend_missing(slot->be, missing, 128);
    if (n > 0) {
        lra_err_set(err, LRA_EUNSUPPORTED, "backend %s lacks %d op%s needed for training: %s%s", r->backend, n,
                    n > 1 ? "s" : "", missing[0], n > 1 ? ", ..." : "");
        char *m = err->msg + strlen(err->msg);
        size_t left = sizeof err->msg - strlen(err->msg);
        if (n > 1) {
            m -= 5;
            left += 5;
            for (int i = 1; i < n && left > 8; i++) {
                int w = snprintf(m, left, ", %s", missing[i]);
                if (w < 0 || (size_t)w >= left) break;
                m += w;
                left -= (size_t)w;
            }
        }
        lra_backend_free(slot->be);
        slot->be = NULL;
        return NULL;
    }
    return slot->be;
}

static void print_progress_fn(void *ctx, int64_t done, int64_t total) { lra_progress_update(ctx, done, total); }

// Trains one claimed run and records its end. Returns an error only when the
// database itself fails (the sweep stops); a failing run is recorded as failed.
static int train_point(lra_db *db, const lra_run_spec *r, int64_t run_id, const char *name, const char *ckpt,
                       backend_slot *slot, int quiet, char *status, lra_err *err) {
    lra_rec rec = { db, run_id, NULL, 0, 0 };
    lra_err e = { 0 };
    lra_task task;
    lra_dataset ds;
    lra_model m;
    int have_task = 0, have_ds = 0, have_model = 0, rc;
    lra_train_state st;
    lra_train_state_init(&st);
    lra_train_result res;
    memset(&res, 0, sizeof res);
    char dir[1050], last[1100], best[1100];
    snprintf(dir, sizeof dir, "%.1020s/run-%lld", r->out_dir, (long long)run_id);
    snprintf(last, sizeof last, "%s/last.safetensors", dir);
    snprintf(best, sizeof best, "%s/best.safetensors", dir);
    lra_backend *be = get_backend(slot, r, &e);
    if (!be) goto failed;
    if ((rc = lra_task_open(&task, r->task_name, r->task_kv, r->n_task_kv, r->data_seed, &e))) goto failed;
    have_task = 1;
    lra_progress p;
    char label[128];
    snprintf(label, sizeof label, "  data %s", r->task_name);
    lra_progress_init(&p, label);
    if ((rc = lra_dataset_open(&ds, &task, r->cache, quiet ? NULL : print_progress_fn, &p, &e))) goto failed;
    have_ds = 1;
    int micro = r->train.batch / r->train.accum;
    if ((rc = lra_model_build(&m, &r->model, &r->mtask, be, micro > r->train.eval_batch ? micro : r->train.eval_batch,
                              r->seed, &e)))
        goto failed;
    have_model = 1;
    if ((rc = lra_mkdirs(dir, &e))) goto failed;
    if (ckpt && *ckpt) {
        if ((rc = lra_train_load(&m, ckpt, r->hash, &st, &e))) goto failed;
        if (!quiet) fprintf(stderr, "%s: resuming at step %lld from %s\n", name, (long long)st.step, ckpt);
    }
    if ((rc = lra_rec_truncate(&rec, st.step, err)) ||
        (rc = lra_rec_started(&rec, be->device, be->n_threads, m.n_trainable, err)))
        goto db_failed;
    lra_train_io io = { &rec, last, best, &stop_requested, name, !quiet, 0, NULL };
    char nan_param[128] = "";
    const char *nan = getenv("LRA_DEBUG_NAN");  // STEP:PARAM, tests of divergence handling
    if (nan && sscanf(nan, "%lld:%127s", (long long *)&io.nan_step, nan_param) == 2) io.nan_param = nan_param;
    rc = lra_train(r, &m, &ds, &st, &io, &res, &e);
    if (rc && e.code == LRA_EDB) {
        *err = e;
        goto db_failed;
    }
    if (rc) goto failed;
    lra_run_progress prog = { st.step, st.best_step, st.best_val_acc, st.best_val_loss, st.test_acc, st.test_loss,
                              st.train_loss, "", "" };
    snprintf(prog.checkpoint, sizeof prog.checkpoint, "%s", last);
    if (st.best_step >= 0) snprintf(prog.best_checkpoint, sizeof prog.best_checkpoint, "%s", best);
    const char *s = res.outcome == LRA_TRAIN_DIVERGED ? "diverged" : res.outcome == LRA_TRAIN_INTERRUPTED ? "interrupted" : "done";
    snprintf(status, 16, "%s", s);
    rc = lra_rec_finish(&rec, s, res.why, &prog, &res.train, &res.eval, err);
    if (!rc && !quiet && res.outcome == LRA_TRAIN_DIVERGED) fprintf(stderr, "%s: diverged: %s\n", name, res.why);
    if (!rc && !quiet && res.early_stopped) fprintf(stderr, "%s: %s\n", name, res.why);
    goto out;
failed:
    snprintf(status, 16, "failed");
    if (!quiet) fprintf(stderr, "%s: failed: %s\n", name, e.msg);
    {
        lra_run_progress prog = { st.step, st.best_step, st.best_val_acc, st.best_val_loss, st.test_acc, st.test_loss,
                                  st.train_loss, "", "" };
        rc = lra_rec_finish(&rec, "failed", e.msg, &prog, NULL, NULL, err);
    }
    goto out;
db_failed:
    rc = err->code ? err->code : LRA_EDB;
out:
    if (have_model) lra_model_free(&m);
    if (have_ds) lra_dataset_close(&ds);
    if (have_task) lra_task_close(&task);
    lra_rec_free(&rec);
    return rc;
}

// ---- tables -------------------------------------------------------------------------------
static void fmt_pct(sqlite3_stmt *st, int col, char out[16]) {
    if (sqlite3_column_type(st, col) == SQLITE_NULL) snprintf(out, 16, "-");
    else snprintf(out, 16, "%.2f", 100 * sqlite3_column_double(st, col));
}

// Prints the runs a prepared query returns (columns as in runs_select).
static int print_runs(lra_db *db, sqlite3_stmt *st, lra_err *err) {
    printf("%-5s %-40s %-11s %-10s %-10s %6s %5s %13s %8s %8s %10s %9s %8s\n", "id", "name", "status", "task", "mixer",
           "L", "seed", "step", "val_acc", "test_acc", "tok/s", "peak_MiB", "params");
    int rows = 0, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        char val[16], test[16], steps[32], tok[24], peak[24];
        fmt_pct(st, 9, val);
        fmt_pct(st, 10, test);
        snprintf(steps, sizeof steps, "%lld/%lld", (long long)sqlite3_column_int64(st, 7), (long long)sqlite3_column_int64(st, 8));
        if (sqlite3_column_type(st, 11) == SQLITE_NULL) snprintf(tok, sizeof tok, "-");
        else snprintf(tok, sizeof tok, "%.0f", sqlite3_column_double(st, 11));
        if (sqlite3_column_type(st, 12) == SQLITE_NULL) snprintf(peak, sizeof peak, "-");
        else snprintf(peak, sizeof peak, "%.1f", sqlite3_column_double(st, 12) / (1 << 20));
        const char *name = (const char *)sqlite3_column_text(st, 1);
        printf("%-5lld %-40.40s %-11s %-10s %-10s %6d %5lld %13s %8s %8s %10s %9s %8lld\n",
               (long long)sqlite3_column_int64(st, 0), name, sqlite3_column_text(st, 2), sqlite3_column_text(st, 3),
               sqlite3_column_text(st, 4), sqlite3_column_int(st, 5), (long long)sqlite3_column_int64(st, 6), steps, val,
               test, tok, peak, (long long)sqlite3_column_int64(st, 13));
        rows++;
    }
    if (s != SQLITE_DONE) return lra_db_fail(db, "read runs", err);
    if (!rows) printf("(no runs)\n");
    return LRA_OK;
}

static const char runs_select[] =
    "SELECT r.id, r.name, r.status, r.task, r.mixer, r.seq_len, r.seed, r.step, r.total_steps, r.best_val_acc,"
    " r.test_acc, p.tokens_per_s, p.peak_backend_bytes, r.n_params FROM runs r"
    " LEFT JOIN perf p ON p.run_id = r.id AND p.phase = 'train'"
    " LEFT JOIN sweeps s ON s.id = r.sweep_id ";

static int print_sweep(lra_db *db, int64_t sweep_id, lra_err *err) {
    char sql[1024];
    snprintf(sql, sizeof sql, "%s WHERE r.sweep_id = ? ORDER BY r.id", runs_select);
    sqlite3_stmt *st;
    int rc = lra_db_prepare(db, sql, &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, sweep_id);
    rc = print_runs(db, st, err);
    sqlite3_finalize(st);
    return rc;
}

// ---- lra run / lra sweep -------------------------------------------------------------------
static int load_experiment(const run_args *a, lra_experiment *e, lra_err *err) {
    int rc = a->file ? lra_experiment_load(e, a->file, err)
                     : lra_experiment_parse(e, lra_default_experiment, "experiments/quick/default.yaml", err);
    for (int i = 0; i < a->n_sets && !rc; i++) rc = lra_experiment_set(e, a->sets[i].key, a->sets[i].value, a->sets[i].where, err);
    if (rc && rc != LRA_EUSAGE && !strncmp(err->msg, "--", 2)) err->code = LRA_EUSAGE;
    return rc;
}

static int validate_all(const lra_experiment *e, lra_run_spec **out, int64_t *n_out, lra_err *err) {
    int64_t n = lra_experiment_count(e);
    lra_run_spec *runs = calloc((size_t)n, sizeof *runs);
    if (!runs) return lra_err_set(err, LRA_ENOMEM, "%lld runs: out of memory", (long long)n);
    int rc = LRA_OK;
    int64_t i;  // points resolved
    for (i = 0; i < n && !rc; i++)
        if ((rc = lra_experiment_point(e, i, &runs[i], err))) i--;
    for (int64_t j = 1; j < n && !rc; j++)
        if (strcmp(runs[j].db, runs[0].db))
            rc = lra_err_set(err, LRA_EINVAL, "%s: db: every run of a sweep writes one database (%s, then %s)",
                             e->file, runs[0].db, runs[j].db);
    if (rc) {
        for (int64_t j = 0; j < i; j++) lra_run_spec_free(&runs[j]);
        free(runs);
        return rc;
    }
    *out = runs;
    *n_out = n;
    return LRA_OK;
}

int lra_cmd_run(int argc, char **argv, int sweep, lra_err *err) {
    run_args a;
    int rc = parse_run_args(argc, argv, &a, err);
    if (rc || a.help) {
        if (a.help) fputs(run_usage, stdout);
        return rc;
    }
    lra_experiment e;
    if ((rc = load_experiment(&a, &e, err))) return rc;
    lra_run_spec *runs = NULL;
    int64_t n = 0;
    if ((rc = validate_all(&e, &runs, &n, err))) goto out;
    if (!sweep && n != 1) {
        rc = lra_err_set(err, LRA_EUSAGE, "%s expands to %lld runs: use lra sweep", e.file, (long long)n);
        goto out;
    }
    if (a.dry_run) {
        printf("%s: %lld run%s, all valid\n", e.file, (long long)n, n == 1 ? "" : "s");
        for (int64_t i = 0; i < n; i++) {
            printf("%4lld  %s  %s\n", (long long)i + 1, runs[i].hash, runs[i].label[0] ? runs[i].label : e.name);
            if (a.print_config) printf("%s\n", runs[i].config);
        }
        goto out;
    }
    // every backend the sweep uses exists here and has every op, before anything trains
    for (int64_t i = 0; i < n && !rc; i++) {
        int seen = 0;
        for (int64_t j = 0; j < i; j++) seen |= !strcmp(runs[j].backend, runs[i].backend);
        backend_slot probe = { 0 };
        if (!seen && get_backend(&probe, &runs[i], err)) lra_backend_free(probe.be);
        else if (!seen) rc = err->code;
    }
    if (rc) goto out;
    lra_db db;
    if ((rc = lra_db_open(&db, runs[0].db, err))) goto out;
    int64_t sweep_id;
    if ((rc = lra_rec_sweep(&db, &e, runs, n, a.resume, &sweep_id, err))) goto close;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_requested = 0;
    backend_slot slot = { 0 };
    int n_failed = 0, n_done = 0, n_skipped = 0, n_diverged = 0;
    for (int64_t i = 0; i < n && !rc && !stop_requested; i++) {
        lra_claim claim;
        int64_t run_id;
        char ckpt[1100], why[256], name[800], status[16] = "";
        snprintf(name, sizeof name, "%s%s%s", e.name, runs[i].label[0] ? "/" : "", runs[i].label);
        if ((rc = lra_rec_claim(&db, sweep_id, e.name, &runs[i], a.resume, &claim, &run_id, ckpt, sizeof ckpt, why,
                                sizeof why, err)))
            break;
        if (claim == LRA_CLAIM_SKIP) {
            if (!a.quiet) fprintf(stderr, "skip %s: %s\n", name, why);
            n_skipped++;
            continue;
        }
        if (!a.quiet)
            fprintf(stderr, "run %lld: %s [%lld/%lld]%s%s\n", (long long)run_id, name, (long long)i + 1, (long long)n,
                    claim == LRA_CLAIM_RESUME ? " — " : "", claim == LRA_CLAIM_RESUME ? why : "");
        rc = train_point(&db, &runs[i], run_id, name, ckpt, &slot, a.quiet, status, err);
        n_failed += !strcmp(status, "failed");
        n_diverged += !strcmp(status, "diverged");
        n_done += !strcmp(status, "done");
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (slot.be) lra_backend_free(slot.be);
    if (!rc) {
        printf("\nsweep %s (%s): %d done, %d diverged, %d failed, %d skipped; database %s\n", e.name, e.file, n_done,
               n_diverged, n_failed, n_skipped, db.path);
        rc = print_sweep(&db, sweep_id, err);
    }
    if (!rc && stop_requested)
        rc = lra_err_set(err, LRA_EINTR, "interrupted: the current run is saved as interrupted; continue with --resume");
    else if (!rc && n_failed)
        rc = lra_err_set(err, LRA_EINVAL, "%d of %lld runs failed (lra runs --status failed shows why)", n_failed, (long long)n);
close:
    lra_db_close(&db);
out:
    for (int64_t i = 0; i < n; i++) lra_run_spec_free(&runs[i]);
    free(runs);
    lra_experiment_free(&e);
    return rc;
}

// ---- lra runs ----------------------------------------------------------------------------------
int lra_cmd_runs(int argc, char **argv, lra_err *err) {
    static const char *const opts[] = { "--db", "--sweep", "--task", "--mixer", "--status", "--limit", NULL };
    const char *dbpath = LRA_DB_DEFAULT, *f[4] = { NULL, NULL, NULL, NULL };
    int limit = 0;
    for (int i = 0; i < argc; i += 2) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(runs_usage, stdout);
            return LRA_OK;
        }
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = lra_arg_option(o, v, opts, "lra runs", err);
        if (rc) return rc;
        if (!strcmp(o, "--db")) dbpath = v;
        else if (!strcmp(o, "--sweep")) f[0] = v;
        else if (!strcmp(o, "--task")) f[1] = v;
        else if (!strcmp(o, "--mixer")) f[2] = v;
        else if (!strcmp(o, "--status")) f[3] = v;
        else if ((rc = lra_arg_int(o, v, 1, &limit, err))) return rc;
    }
    if (access(dbpath, R_OK) != 0) return lra_err_set(err, LRA_EIO, "%s: no results database (run lra sweep first)", dbpath);
    lra_db db;
    int rc = lra_db_open(&db, dbpath, err);
    if (rc) return rc;
    char sql[1400];
    snprintf(sql, sizeof sql,
             "SELECT * FROM (%s WHERE (?1 IS NULL OR s.name = ?1) AND (?2 IS NULL OR r.task = ?2)"
             " AND (?3 IS NULL OR r.mixer = ?3) AND (?4 IS NULL OR r.status = ?4) ORDER BY r.id DESC LIMIT ?5)"
             " ORDER BY 1",
             runs_select);
    sqlite3_stmt *st;
    if (!(rc = lra_db_prepare(&db, sql, &st, err))) {
        for (int i = 0; i < 4; i++) {
            if (f[i]) sqlite3_bind_text(st, i + 1, f[i], -1, SQLITE_STATIC);
            else sqlite3_bind_null(st, i + 1);
        }
        sqlite3_bind_int64(st, 5, limit > 0 ? limit : -1);
        rc = print_runs(&db, st, err);
        sqlite3_finalize(st);
    }
    lra_db_close(&db);
    return rc;
}
