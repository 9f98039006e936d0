// yamltree.h: a YAML file as a tree of scalars, sequences and mappings that
// remembers where every node came from ("experiments/x.yaml:12:5"), read
// with libyaml. Experiment configs are built from it (harness/experiment.c).
#ifndef LRA_YAMLTREE_H
#define LRA_YAMLTREE_H

#include "../backends/core.h"

typedef enum { LRA_Y_SCALAR = 0, LRA_Y_SEQ, LRA_Y_MAP } lra_ykind;

typedef struct lra_ynode lra_ynode;
struct lra_ynode {
    lra_ykind   kind;
    char       *value;      // scalar text (LRA_Y_SCALAR)
    int         quoted;     // scalar was written in quotes (never a list/range)
    char        where[300]; // "file:line:column" of the node (1-based)
    int         n;          // items (SEQ) or entries (MAP)
    lra_ynode **items;      // SEQ items, or MAP values
    char      **keys;       // MAP keys
    char      (*key_where)[300];
};

// Reads path; a syntax error, a duplicate key, a non-scalar key or an empty
// document is an error "<file>:<line>:<column>: <message>".
int  lra_ytree_load(const char *path, lra_ynode **root, lra_err *err);
// The same for text in memory; name stands for the file in messages.
int  lra_ytree_parse(const char *text, size_t len, const char *name, lra_ynode **root, lra_err *err);
void lra_ytree_free(lra_ynode *n);
// Value of key in a mapping, or NULL.
lra_ynode *lra_ytree_get(const lra_ynode *map, const char *key);
const char *lra_ytree_kind_name(lra_ykind k);  // "a scalar", "a list", "a mapping"

#endif // LRA_YAMLTREE_H
