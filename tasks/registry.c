// registry.c: every task, found by name.
#include "image.h"
#include "listops.h"
#include "pathfinder.h"
#include "retrieval.h"
#include "task.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

static const lra_task_vtable *const lra_tasks[] = {
    &lra_task_listops, &lra_task_text, &lra_task_retrieval, &lra_task_image, &lra_task_pathfinder,
};
#define LRA_N_TASKS ((int)(sizeof lra_tasks / sizeof lra_tasks[0]))

int lra_task_count(void) { return LRA_N_TASKS; }

const lra_task_vtable *lra_task_vtable_at(int i) { return i >= 0 && i < LRA_N_TASKS ? lra_tasks[i] : NULL; }

// "pathx" is pathfinder at 128 x 128 (a resolution given explicitly wins).
static int lra_task_open_pathx(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    lra_kv *kv = malloc(sizeof(lra_kv) * (size_t)(n_params + 1));
    if (!kv) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    kv[0] = (lra_kv){ "resolution", "128", "task pathx" };
    for (int i = 0; i < n_params; i++) kv[i + 1] = params[i];
    int rc = lra_task_open(t, "pathfinder", kv, n_params + 1, seed, err);
    free(kv);
    return rc;
}

int lra_task_open(lra_task *t, const char *name, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    memset(t, 0, sizeof *t);
    if (strcmp(name, "pathx") == 0) return lra_task_open_pathx(t, params, n_params, seed, err);
    for (int i = 0; i < LRA_N_TASKS; i++) {
        if (strcmp(lra_tasks[i]->name, name) != 0) continue;
        t->vt = lra_tasks[i];
        t->seed = seed;
        return t->vt->open(t, params, n_params, seed, err);
    }
    char known[256] = "";
    for (int i = 0; i < LRA_N_TASKS; i++) {
        if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, lra_tasks[i]->name, sizeof known - strlen(known) - 1);
    }
    return lra_err_set(err, LRA_EINVAL, "unknown task '%s' (known: %s, pathx)", name, known);
}

void lra_task_close(lra_task *t) {
    if (t->vt && t->vt->close) t->vt->close(t);
    t->vt = NULL;
}
