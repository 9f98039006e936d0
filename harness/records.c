// records.c: run records in the results database. Every write is one
// transaction (BEGIN IMMEDIATE: writers queue on the busy timeout), through
// prepared statements.
#include "records.h"
#include "../tasks/dataset.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

void lra_host_name(char *out, size_t cap) {
    if (gethostname(out, cap) != 0 || !out[0]) snprintf(out, cap, "unknown");
    out[cap - 1] = 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v, int present) {
    if (present && v == v) sqlite3_bind_double(st, i, v);
    else sqlite3_bind_null(st, i);
}

// Runs one statement (bound by the caller) and finalizes it.
static int run_once(lra_db *db, sqlite3_stmt *st, lra_err *err) {
    int rc = lra_db_done(db, st, err);
    sqlite3_finalize(st);
    return rc;
}

int lra_rec_sweep(lra_db *db, const lra_experiment *e, const lra_run_spec *runs, int64_t n_runs, int resume,
                  int64_t *sweep_id, lra_err *err) {
    uint64_t h = 0;
    for (int64_t i = 0; i < n_runs; i++) h = lra_hash64(runs[i].hash, 16, h);
    char hash[17], now[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)h);
    lra_db_now(now);
    char *source = lra_experiment_source(e);
    if (!source) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    int rc = lra_db_begin(db, err);
    *sweep_id = 0;
    if (!rc && resume && !(rc = lra_db_prepare(db, "SELECT id FROM sweeps WHERE name = ? AND hash = ? ORDER BY id DESC LIMIT 1", &st, err))) {
        bind_text(st, 1, e->name);
        bind_text(st, 2, hash);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) *sweep_id = sqlite3_column_int64(st, 0);
        else if (s != SQLITE_DONE) rc = lra_db_fail(db, "read sweeps", err);
        sqlite3_finalize(st);
    }
    if (!rc && !*sweep_id &&
        !(rc = lra_db_prepare(db, "INSERT INTO sweeps (name, file, source, hash, n_runs, created_at) VALUES (?,?,?,?,?,?)",
                              &st, err))) {
        bind_text(st, 1, e->name);
        bind_text(st, 2, e->file);
        bind_text(st, 3, source);
        bind_text(st, 4, hash);
        sqlite3_bind_int64(st, 5, n_runs);
        bind_text(st, 6, now);
        if (!(rc = run_once(db, st, err))) *sweep_id = sqlite3_last_insert_rowid(db->db);
    }
    free(source);
    if (!rc) rc = lra_db_commit(db, err);
    if (rc) lra_db_rollback(db);
    return rc;
}

// A running row belongs to a live process when it is on this host and its
// pid exists; rows of other hosts are trusted to be alive.
static int process_alive(const char *host, int64_t pid) {
    char me[256];
    lra_host_name(me, sizeof me);
    if (!host || strcmp(host, me)) return 1;
    if (pid <= 0) return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static int insert_run(lra_db *db, int64_t sweep_id, const char *sweep_name, const lra_run_spec *r, int64_t *run_id,
                      lra_err *err) {
    static const char sql[] =
        "INSERT INTO runs (sweep_id, name, hash, config, task, mixer, seq_len, synthetic, backend, threads, seed,"
        " git_commit, build_flags, host, pid, status, total_steps, started_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'running',?,?,?)";
    sqlite3_stmt *st;
    int rc = lra_db_prepare(db, sql, &st, err);
    if (rc) return rc;
    char name[800], host[256], now[32];
    snprintf(name, sizeof name, "%s%s%s", sweep_name, r->label[0] ? "/" : "", r->label);
    lra_host_name(host, sizeof host);
    lra_db_now(now);
    sqlite3_bind_int64(st, 1, sweep_id);
    bind_text(st, 2, name);
    bind_text(st, 3, r->hash);
    bind_text(st, 4, r->config);
    bind_text(st, 5, r->task_name);
    bind_text(st, 6, r->model.mixer);
    sqlite3_bind_int(st, 7, r->task_info.seq_len);
    sqlite3_bind_int(st, 8, strncmp(r->task_info.source, "generated", 9) == 0);
    bind_text(st, 9, r->backend);
    sqlite3_bind_int(st, 10, r->threads);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)r->seed);
    bind_text(st, 12, lra_git_commit());
    bind_text(st, 13, lra_build_flags());
    bind_text(st, 14, host);
    sqlite3_bind_int64(st, 15, (sqlite3_int64)getpid());
    sqlite3_bind_int64(st, 16, r->train.steps);
    bind_text(st, 17, now);
    bind_text(st, 18, now);
    if ((rc = run_once(db, st, err))) return rc;
    *run_id = sqlite3_last_insert_rowid(db->db);
    return LRA_OK;
}

// Takes over run id for this process (status running, our pid and host).
static int take_over(lra_db *db, int64_t id, lra_err *err) {
    sqlite3_stmt *st;
    int rc = lra_db_prepare(db,
                            "UPDATE runs SET status = 'running', error = NULL, ended_at = NULL, host = ?, pid = ?,"
                            " git_commit = ?, build_flags = ?, updated_at = ? WHERE id = ?",
                            &st, err);
    if (rc) return rc;
    char host[256], now[32];
    lra_host_name(host, sizeof host);
    lra_db_now(now);
    bind_text(st, 1, host);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)getpid());
    bind_text(st, 3, lra_git_commit());
    bind_text(st, 4, lra_build_flags());
    bind_text(st, 5, now);
    sqlite3_bind_int64(st, 6, id);
    return run_once(db, st, err);
}

int lra_rec_claim(lra_db *db, int64_t sweep_id, const char *sweep_name, const lra_run_spec *r, int resume,
                  lra_claim *claim, int64_t *run_id, char *checkpoint, size_t cap, char *why, size_t why_cap,
                  lra_err *err) {
    *claim = LRA_CLAIM_FRESH;
    checkpoint[0] = why[0] = 0;
    int rc = lra_db_begin(db, err);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (resume &&
        !(rc = lra_db_prepare(db, "SELECT id, status, host, pid, checkpoint FROM runs WHERE hash = ? ORDER BY id DESC LIMIT 1",
                              &st, err))) {
        bind_text(st, 1, r->hash);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            found = 1;
            *run_id = sqlite3_column_int64(st, 0);
            const char *status = (const char *)sqlite3_column_text(st, 1);
            const char *host = (const char *)sqlite3_column_text(st, 2);
            const char *ckpt = (const char *)sqlite3_column_text(st, 4);
            int64_t pid = sqlite3_column_int64(st, 3);
            if (!strcmp(status, "done") || !strcmp(status, "diverged")) {
                *claim = LRA_CLAIM_SKIP;
                snprintf(why, why_cap, "run %lld is %s", (long long)*run_id, status);
            } else if (!strcmp(status, "running") && process_alive(host, pid)) {
                *claim = LRA_CLAIM_SKIP;
                snprintf(why, why_cap, "run %lld is running (pid %lld on %s)", (long long)*run_id, (long long)pid,
                         host ? host : "?");
            } else {
                *claim = LRA_CLAIM_RESUME;
                if (ckpt && access(ckpt, R_OK) == 0) snprintf(checkpoint, cap, "%s", ckpt);
                snprintf(why, why_cap, "run %lld was %s", (long long)*run_id, status);
            }
        } else if (s != SQLITE_DONE)
            rc = lra_db_fail(db, "read runs", err);
        sqlite3_finalize(st);
    }
    if (!rc) {
        if (!found) rc = insert_run(db, sweep_id, sweep_name, r, run_id, err);
        else if (*claim == LRA_CLAIM_RESUME) rc = take_over(db, *run_id, err);
    }
    if (!rc) rc = lra_db_commit(db, err);
    if (rc) lra_db_rollback(db);
    return rc;
}

int lra_rec_started(lra_rec *rec, const char *device, int threads, int64_t n_params, lra_err *err) {
    sqlite3_stmt *st;
    int rc = lra_db_prepare(rec->db, "UPDATE runs SET device = ?, threads = ?, n_params = ? WHERE id = ?", &st, err);
    if (rc) return rc;
    bind_text(st, 1, device);
    sqlite3_bind_int(st, 2, threads);
    sqlite3_bind_int64(st, 3, n_params);
    sqlite3_bind_int64(st, 4, rec->run_id);
    return run_once(rec->db, st, err);
}

int lra_rec_truncate(lra_rec *rec, int64_t step, lra_err *err) {
    sqlite3_stmt *st;
    int rc = lra_db_prepare(rec->db, "DELETE FROM metrics WHERE run_id = ? AND step > ?", &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, rec->run_id);
    sqlite3_bind_int64(st, 2, step);
    return run_once(rec->db, st, err);
}

int lra_rec_metric(lra_rec *rec, const lra_metric_row *row, lra_err *err) {
    if (rec->n_rows == rec->cap_rows) {
        int cap = rec->cap_rows ? 2 * rec->cap_rows : 64;
        lra_metric_row *nr = realloc(rec->rows, sizeof *nr * (size_t)cap);
        if (!nr) return lra_err_set(err, LRA_ENOMEM, "out of memory");
        rec->rows = nr;
        rec->cap_rows = cap;
    }
    rec->rows[rec->n_rows++] = *row;
    return LRA_OK;
}

static int write_rows(lra_rec *rec, lra_err *err) {
    if (!rec->n_rows) return LRA_OK;
    sqlite3_stmt *st;
    int rc = lra_db_prepare(rec->db,
                            "INSERT OR REPLACE INTO metrics (run_id, split, step, loss, acc, lr, grad_norm, examples,"
                            " elapsed_s) VALUES (?,?,?,?,?,?,?,?,?)",
                            &st, err);
    for (int i = 0; i < rec->n_rows && !rc; i++) {
        const lra_metric_row *m = &rec->rows[i];
        sqlite3_bind_int64(st, 1, rec->run_id);
        bind_text(st, 2, m->split);
        sqlite3_bind_int64(st, 3, m->step);
        bind_real(st, 4, m->loss, 1);
        bind_real(st, 5, m->acc, 1);
        bind_real(st, 6, m->lr, m->has_lr);
        bind_real(st, 7, m->grad_norm, m->has_lr);
        sqlite3_bind_int64(st, 8, m->examples);
        bind_real(st, 9, m->elapsed_s, 1);
        rc = lra_db_done(rec->db, st, err);
    }
    sqlite3_finalize(st);
    return rc;
}

static int write_progress(lra_rec *rec, const lra_run_progress *p, lra_err *err) {
    sqlite3_stmt *st;
    int rc = lra_db_prepare(rec->db,
                            "UPDATE runs SET step = ?, best_step = ?, best_val_acc = ?, best_val_loss = ?, test_acc = ?,"
                            " test_loss = ?, train_loss = ?, checkpoint = ?, best_checkpoint = ?, updated_at = ?"
                            " WHERE id = ?",
                            &st, err);
    if (rc) return rc;
    char now[32];
    lra_db_now(now);
    int best = p->best_step >= 0;
    sqlite3_bind_int64(st, 1, p->step);
    if (best) sqlite3_bind_int64(st, 2, p->best_step);
    else sqlite3_bind_null(st, 2);
    bind_real(st, 3, p->best_val_acc, best);
    bind_real(st, 4, p->best_val_loss, best);
    bind_real(st, 5, p->test_acc, best);
    bind_real(st, 6, p->test_loss, best);
    bind_real(st, 7, p->train_loss, 1);
    bind_text(st, 8, p->checkpoint[0] ? p->checkpoint : NULL);
    bind_text(st, 9, p->best_checkpoint[0] ? p->best_checkpoint : NULL);
    bind_text(st, 10, now);
    sqlite3_bind_int64(st, 11, rec->run_id);
    return run_once(rec->db, st, err);
}

int lra_rec_flush(lra_rec *rec, const lra_run_progress *p, lra_err *err) {
    int rc = lra_db_begin(rec->db, err);
    if (!rc) rc = write_rows(rec, err);
    if (!rc && p) rc = write_progress(rec, p, err);
    if (!rc) rc = lra_db_commit(rec->db, err);
    if (rc) lra_db_rollback(rec->db);
    else rec->n_rows = 0;
    return rc;
}

static int write_perf(lra_rec *rec, const char *phase, const lra_perf *f, lra_err *err) {
    if (!f || f->steps <= 0) return LRA_OK;
    sqlite3_stmt *st;
    int rc = lra_db_prepare(rec->db,
                            "INSERT OR REPLACE INTO perf (run_id, phase, steps, tokens, seconds, steps_per_s, tokens_per_s,"
                            " step_ms_mean, step_ms_min, step_ms_p10, step_ms_p50, step_ms_p90, step_ms_max,"
                            " peak_backend_bytes, peak_rss_bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            &st, err);
    if (rc) return rc;
    double s = f->seconds > 0 ? f->seconds : 1e-9;
    sqlite3_bind_int64(st, 1, rec->run_id);
    bind_text(st, 2, phase);
    sqlite3_bind_int64(st, 3, f->steps);
    sqlite3_bind_int64(st, 4, f->tokens);
    sqlite3_bind_double(st, 5, f->seconds);
    sqlite3_bind_double(st, 6, (double)f->steps / s);
    sqlite3_bind_double(st, 7, (double)f->tokens / s);
    const double ms[] = { f->ms_mean, f->ms_min, f->ms_p10, f->ms_p50, f->ms_p90, f->ms_max };
    for (int i = 0; i < 6; i++) sqlite3_bind_double(st, 8 + i, ms[i]);
    sqlite3_bind_int64(st, 14, f->peak_backend_bytes);
    sqlite3_bind_int64(st, 15, f->peak_rss_bytes);
    return run_once(rec->db, st, err);
}

int lra_rec_finish(lra_rec *rec, const char *status, const char *error, const lra_run_progress *p,
                   const lra_perf *train, const lra_perf *eval, lra_err *err) {
    int rc = lra_db_begin(rec->db, err);
    if (!rc) rc = write_rows(rec, err);
    if (!rc && p) rc = write_progress(rec, p, err);
    if (!rc) rc = write_perf(rec, "train", train, err);
    if (!rc) rc = write_perf(rec, "eval", eval, err);
    sqlite3_stmt *st = NULL;
    if (!rc && !(rc = lra_db_prepare(rec->db, "UPDATE runs SET status = ?, error = ?, ended_at = ?, updated_at = ? WHERE id = ?",
                                     &st, err))) {
        char now[32];
        lra_db_now(now);
        bind_text(st, 1, status);
        bind_text(st, 2, error && *error ? error : NULL);
        bind_text(st, 3, now);
        bind_text(st, 4, now);
        sqlite3_bind_int64(st, 5, rec->run_id);
        rc = run_once(rec->db, st, err);
    }
    if (!rc) rc = lra_db_commit(rec->db, err);
    if (rc) lra_db_rollback(rec->db);
    else rec->n_rows = 0;
    return rc;
}

void lra_rec_free(lra_rec *rec) {
    free(rec->rows);
    memset(rec, 0, sizeof *rec);
}
