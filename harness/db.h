// db.h: the results database (SQLite): sweeps, runs, metrics, performance
// and benchmarks. One file (default results/lra.db) in WAL mode, shared by
// any number of `lra` processes (busy timeout); the schema is versioned with
// PRAGMA user_version and documented in README.md ("Results database").
// Every write is a transaction through a prepared statement, so a process
// killed at any moment leaves every finished run intact.
#ifndef LRA_DB_H
#define LRA_DB_H

#include "../backends/core.h"

#include <sqlite3.h>

#define LRA_DB_SCHEMA_VERSION 1
#define LRA_DB_DEFAULT "results/lra.db"

typedef struct {
    sqlite3 *db;
    char     path[1024];
} lra_db;

// Opens (creating the file and its directory when missing) and brings the
// schema to LRA_DB_SCHEMA_VERSION; a database written by a newer lra is
// refused with a message naming both versions.
int  lra_db_open(lra_db *db, const char *path, lra_err *err);
void lra_db_close(lra_db *db);

// BEGIN IMMEDIATE / COMMIT / ROLLBACK.
int  lra_db_begin(lra_db *db, lra_err *err);
int  lra_db_commit(lra_db *db, lra_err *err);
void lra_db_rollback(lra_db *db);

// Runs sql (no results) with an error naming the database.
int  lra_db_exec(lra_db *db, const char *sql, lra_err *err);
// Prepares sql; on failure an error naming the database and SQLite's message.
int  lra_db_prepare(lra_db *db, const char *sql, sqlite3_stmt **st, lra_err *err);
// Steps a prepared statement that returns no rows, then resets it.
int  lra_db_done(lra_db *db, sqlite3_stmt *st, lra_err *err);
// Sets err from the database's last error: "<path>: <what>: <sqlite message>".
int  lra_db_fail(lra_db *db, const char *what, lra_err *err);

// UTC time as ISO 8601 ("2026-11-23T03:18:27Z").
void lra_db_now(char out[32]);

#endif // LRA_DB_H
