// db.c: opening the results database and its schema (README.md, "Results
// database", documents every table and column).
#include "db.h"
#include "../tasks/task.h"

#include <string.h>
#include <time.h>

// Version 1. Times are UTC ISO 8601 text; hashes 16 hex digits.
static const char schema_v1[] =
    // one `lra sweep` (or `lra run`) invocation's expanded set of runs
    "CREATE TABLE sweeps ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL,"        // the config's name (file stem by default)
    "  file        TEXT NOT NULL,"        // config path, '<embedded>' for the built-in default
    "  source      TEXT NOT NULL,"        // the YAML text after includes were merged
    "  hash        TEXT NOT NULL,"        // hash of the run hashes in order
    "  n_runs      INTEGER NOT NULL,"
    "  created_at  TEXT NOT NULL);"
    "CREATE INDEX sweeps_name ON sweeps(name);"
    // one training run: a resolved config, its state and its headline results
    "CREATE TABLE runs ("
    "  id             INTEGER PRIMARY KEY,"
    "  sweep_id       INTEGER REFERENCES sweeps(id),"
    "  name           TEXT NOT NULL,"      // sweep name + the sweep point, e.g. quick/model.mixer=s4d,seed=2
    "  hash           TEXT NOT NULL,"      // hash of config
    "  config         TEXT NOT NULL,"      // canonical resolved config: key = value lines, sorted
    "  task           TEXT NOT NULL,"
    "  mixer          TEXT NOT NULL,"
    "  seq_len        INTEGER NOT NULL,"
    "  synthetic      INTEGER NOT NULL,"   // 1: generated stand-in data, 0: official release files
    "  backend        TEXT NOT NULL,"
    "  device         TEXT,"
    "  threads        INTEGER,"
    "  seed           INTEGER NOT NULL,"
    "  git_commit     TEXT,"
    "  build_flags    TEXT,"
    "  host           TEXT,"
    "  pid            INTEGER,"
    "  n_params       INTEGER,"
    "  status         TEXT NOT NULL CHECK (status IN"
    "                   ('queued','running','done','failed','diverged','interrupted')),"
    "  error          TEXT,"               // why failed/diverged/interrupted
    "  step           INTEGER NOT NULL DEFAULT 0,"  // optimiser steps completed
    "  total_steps    INTEGER NOT NULL,"
    "  best_step      INTEGER,"            // step of the best validation accuracy
    "  best_val_acc   REAL,"
    "  best_val_loss  REAL,"
    "  test_acc       REAL,"               // test accuracy at the best-validation step
    "  test_loss      REAL,"
    "  train_loss     REAL,"               // mean training loss of the last logged interval
    "  checkpoint     TEXT,"               // latest checkpoint (resume point)
    "  best_checkpoint TEXT,"
    "  started_at     TEXT,"
    "  ended_at       TEXT,"
    "  updated_at     TEXT);"
    "CREATE INDEX runs_hash ON runs(hash);"
    "CREATE INDEX runs_sweep ON runs(sweep_id);"
    // learning curves: train rows average the steps since the previous row
    "CREATE TABLE metrics ("
    "  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  split      TEXT NOT NULL CHECK (split IN ('train','val','test')),"
    "  step       INTEGER NOT NULL,"
    "  loss       REAL,"
    "  acc        REAL,"
    "  lr         REAL,"                  // base learning rate at this step (train)
    "  grad_norm  REAL,"                  // mean gradient norm before clipping (train)
    "  examples   INTEGER,"               // examples the row averages
    "  elapsed_s  REAL,"                  // training seconds since the run started
    "  PRIMARY KEY (run_id, split, step));"
    // speed and memory of a run, per phase
    "CREATE TABLE perf ("
    "  run_id              INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
    "  phase               TEXT NOT NULL CHECK (phase IN ('train','eval')),"
    "  steps               INTEGER NOT NULL,"  // train: optimiser steps; eval: batches
    "  tokens              INTEGER NOT NULL,"  // positions processed (all inputs, padding included)
    "  seconds             REAL NOT NULL,"
    "  steps_per_s         REAL,"
    "  tokens_per_s        REAL,"
    "  step_ms_mean        REAL,"
    "  step_ms_min         REAL,"
    "  step_ms_p10         REAL,"
    "  step_ms_p50         REAL,"
    "  step_ms_p90         REAL,"
    "  step_ms_max         REAL,"
    "  peak_backend_bytes  INTEGER,"
    "  peak_rss_bytes      INTEGER,"
    "  PRIMARY KEY (run_id, phase));"
    // benchmark result sets (`lra bench`): one row per invocation
    "CREATE TABLE bench_sets ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL,"
    "  command     TEXT,"
    "  backend     TEXT NOT NULL,"
    "  device      TEXT,"
    "  threads     INTEGER,"
    "  git_commit  TEXT,"
    "  build_flags TEXT,"
    "  host        TEXT,"
    "  created_at  TEXT NOT NULL);"
    // one measured case of a set, with its repeated timings
    "CREATE TABLE bench ("
    "  set_id        INTEGER NOT NULL REFERENCES bench_sets(id) ON DELETE CASCADE,"
    "  kind          TEXT NOT NULL,"      // layer | model | step | accuracy
    "  mixer         TEXT NOT NULL,"
    "  B             INTEGER,"
    "  L             INTEGER,"
    "  H             INTEGER,"
    "  config        TEXT,"
    "  status        TEXT NOT NULL,"      // ok | oom | skipped | failed
    "  repeats       INTEGER,"
    "  samples_ms    TEXT,"               // every timing, comma-separated
    "  median_ms     REAL,"
    "  min_ms        REAL,"
    "  max_ms        REAL,"
    "  tokens_per_s  REAL,"
    "  peak_bytes    INTEGER,"
    "  value         REAL,"               // kind = accuracy: the accuracy
    "  note          TEXT);"
    "CREATE INDEX bench_set ON bench(set_id);";

static const char *const migrations[LRA_DB_SCHEMA_VERSION] = { schema_v1 };

int lra_db_fail(lra_db *db, const char *what, lra_err *err) {
    return lra_err_set(err, LRA_EDB, "%s: %s: %s", db->path, what, db->db ? sqlite3_errmsg(db->db) : "not open");
}

int lra_db_exec(lra_db *db, const char *sql, lra_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) == SQLITE_OK) return LRA_OK;
    int rc = lra_err_set(err, LRA_EDB, "%s: %s", db->path, msg ? msg : sqlite3_errmsg(db->db));
    sqlite3_free(msg);
    return rc;
}

int lra_db_prepare(lra_db *db, const char *sql, sqlite3_stmt **st, lra_err *err) {
    if (sqlite3_prepare_v2(db->db, sql, -1, st, NULL) == SQLITE_OK) return LRA_OK;
    *st = NULL;
    return lra_db_fail(db, "prepare", err);
}

int lra_db_done(lra_db *db, sqlite3_stmt *st, lra_err *err) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? LRA_OK : lra_db_fail(db, "write", err);
}

int lra_db_begin(lra_db *db, lra_err *err) { return lra_db_exec(db, "BEGIN IMMEDIATE", err); }
int lra_db_commit(lra_db *db, lra_err *err) { return lra_db_exec(db, "COMMIT", err); }
void lra_db_rollback(lra_db *db) { sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL); }

void lra_db_now(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int user_version(lra_db *db, int *v, lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db, "PRAGMA user_version", &st, err)) return err->code;
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? LRA_OK : lra_db_fail(db, "PRAGMA user_version", err);
}

// Applies the migrations after the file's version, each in one transaction
// with the version bump (two processes opening a new file at once: the
// second waits on the lock, then finds the version done).
static int migrate(lra_db *db, lra_err *err) {
    for (;;) {
        if (lra_db_begin(db, err)) return err->code;
        int v;
        if (user_version(db, &v, err)) break;
        if (v > LRA_DB_SCHEMA_VERSION) {
            lra_err_set(err, LRA_EIO, "%s: schema version %d is newer than this lra's (%d); use a newer lra", db->path, v,
                        LRA_DB_SCHEMA_VERSION);
            break;
        }
        if (v == LRA_DB_SCHEMA_VERSION) return lra_db_commit(db, err);
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
        if (lra_db_exec(db, migrations[v], err) || lra_db_exec(db, bump, err) || lra_db_commit(db, err)) break;
    }
    lra_db_rollback(db);
    return err->code;
}

int lra_db_open(lra_db *db, const char *path, lra_err *err) {
    memset(db, 0, sizeof *db);
    if (strlen(path) >= sizeof db->path) return lra_err_set(err, LRA_EINVAL, "database path too long: %s", path);
    strcpy(db->path, path);
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (lra_mkdirs(dir, err)) return err->code;
    }
    if (sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        lra_db_fail(db, "cannot open", err);
        lra_db_close(db);
        return err->code;
    }
    sqlite3_busy_timeout(db->db, 60000);
    // WAL: readers never block the writer; synchronous=NORMAL is durable
    // against process crashes (a power loss may lose the last commits)
    if (lra_db_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err) ||
        migrate(db, err)) {
        lra_db_close(db);
        return err->code;
    }
    return LRA_OK;
}

void lra_db_close(lra_db *db) {
    if (db->db) sqlite3_close_v2(db->db);
    db->db = NULL;
}
