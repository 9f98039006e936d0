// table.h: `lra table`: the LRA result tables from the results database.
// Table 1 (accuracy per task, our runs beside the published rows) and
// Table 2 (training speed and memory relative to attention per length).
// The tables are built as a grid of text cells, then written as Markdown,
// CSV, LaTeX or HTML (the HTML form is what `lra report` embeds).
#ifndef LRA_TABLE_H
#define LRA_TABLE_H

#include "db.h"

#define LRA_GRID_ROWS 96
#define LRA_GRID_COLS 24
#define LRA_GRID_CELL 48

typedef struct {
    char title[128];
    int  n_rows, n_cols;                       // n_rows counts the header row (row 0)
    char cell[LRA_GRID_ROWS][LRA_GRID_COLS][LRA_GRID_CELL];
    char right[LRA_GRID_COLS];                 // 1: right-aligned (numbers)
    char notes[1024];                          // footnotes, one per line
} lra_grid;

// Table 1. numeric = 1 splits each task into mean and std columns and leaves
// marks out of the numbers (for CSV). sweep NULL: every sweep.
int lra_table_accuracy(lra_db *db, const char *sweep, int numeric, lra_grid *g, lra_err *err);
// Table 2 from the perf rows of the text-task runs; g->n_rows == 1 when none.
int lra_table_speed(lra_db *db, const char *sweep, int numeric, lra_grid *g, lra_err *err);

// Sets cell (r, c), growing n_rows and n_cols to cover it (text cut at
// LRA_GRID_CELL - 1 bytes); appends one line to the notes.
void lra_grid_set(lra_grid *g, int r, int c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void lra_grid_note(lra_grid *g, const char *line);

// format: "md", "csv", "latex" or "html".
void lra_grid_write(const lra_grid *g, const char *format, FILE *f);

// An error when sweep is not NULL and no sweep has that name (listing the names).
int lra_sweep_check(lra_db *db, const char *sweep, lra_err *err);
// Opens an existing results database (an error, not a new file, when missing).
int lra_db_open_existing(lra_db *db, const char *path, lra_err *err);
// Writes s with &, <, >, " escaped for HTML.
void lra_html_escape(FILE *f, const char *s);

int lra_cmd_table(int argc, char **argv, lra_err *err);

#endif // LRA_TABLE_H
