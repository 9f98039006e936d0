// retrieval.h: the LRA Retrieval task (AAN document matching, lra.md 1.4).
#ifndef LRA_TASK_RETRIEVAL_H
#define LRA_TASK_RETRIEVAL_H

#include "task.h"

extern const lra_task_vtable lra_task_retrieval;

// ---- for the tests ------------------------------------------------------------
#define LRA_RETRIEVAL_TOPICS     32   // latent topics of the generator
#define LRA_RETRIEVAL_KEY_BYTES  8    // a key looks like an AAN paper id: "P03-1021"

// Topic of a generated key (the n bytes at s), or -1 when s is not a key (or
// the task was loaded from files).
int lra_retrieval_key_topic(const lra_task *t, const uint8_t *s, int n);

#endif // LRA_TASK_RETRIEVAL_H
