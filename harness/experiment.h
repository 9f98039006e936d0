// experiment.h: experiment configs (YAML) — settings, includes, sweeps — and
// the resolved run specs they expand to.
//
// A config file is a mapping (README.md, "Experiment configs", documents
// every key):
//   include: base.yaml            files whose settings this one extends
//   name, description             the sweep's name (default: file stem)
//   seed, data_seed               run seed (init, data order, dropout); data seed
//   backend, threads              cpu | cuda; CPU threads (0 = all cores)
//   db, out_dir, cache            database, checkpoint folder, dataset cache
//   task:  {name: listops, <task parameters>}
//   model: {mixer: s4d, <model keys>, mixer.<key> | <mixer name>: {<key>: ...}}
//   optim: {lr, weight_decay, ssm_lr, dt_lr, dt_global, beta1, beta2, eps, clip,
//           schedule, warmup, warmup_init, min_lr_ratio}
//   train: {steps | epochs, batch, accum, eval_every, eval_batch, eval_examples,
//           test_examples, early_stop, log_every}
//   sweep: {<key.path>: [values] | {from, to, step | num, scale}, zip: {...} | [{...}]}
// Settings are flattened to dotted key paths ("model.mixer.d_state") that
// remember the file, line and column they came from; every error names them.
#ifndef LRA_EXPERIMENT_H
#define LRA_EXPERIMENT_H

#include "../models/model.h"
#include "../tasks/task.h"

#define LRA_KEY_MAX 128
#define LRA_WHERE_MAX 300

typedef struct {
    char  key[LRA_KEY_MAX];
    char *value;                 // owned
    char  where[LRA_WHERE_MAX];
} lra_setting;

// One sweep axis: several keys when zipped, each with n_values values.
typedef struct {
    int          n_keys, n_values;
    char         (*keys)[LRA_KEY_MAX];
    char         (*key_where)[LRA_WHERE_MAX];
    lra_setting *values;         // [k * n_values + v]; key unused
} lra_sweep_axis;

typedef struct {
    char            name[128];
    char            file[1024];   // path, or "<embedded>"
    char            description[512];
    lra_setting    *set;          // merged settings, in order of appearance
    int             n_set, cap_set;
    lra_sweep_axis *axes;
    int             n_axes;
} lra_experiment;

// Reads a config file (following includes) or text in memory (name stands
// for the file in messages).
int  lra_experiment_load(lra_experiment *e, const char *path, lra_err *err);
int  lra_experiment_parse(lra_experiment *e, const char *text, const char *name, lra_err *err);
void lra_experiment_free(lra_experiment *e);
// Sets (or replaces) one setting from "key.path=value" (the --set option);
// a key of the sweep is removed from it.
int  lra_experiment_set(lra_experiment *e, const char *key, const char *value, const char *where, lra_err *err);
// Number of runs the sweep expands to (product of the axes' lengths).
int64_t lra_experiment_count(const lra_experiment *e);
// The settings and sweep axes as "key = value" lines (sweeps.source).
char *lra_experiment_source(const lra_experiment *e);

typedef struct {
    int64_t steps, epochs;        // resolved steps; epochs as given (0: steps given)
    int     batch, accum;         // examples per step; micro-batches per step
    int     eval_batch;           // examples per evaluation batch
    int64_t eval_every;           // steps between validations
    int64_t eval_examples;        // validation examples (0 = the whole split)
    int64_t test_examples;        // test examples (0 = the whole split)
    int     early_stop;           // stop after this many validations without improvement (0 = never)
    int64_t log_every;            // steps per logged training row
} lra_train_config;

// One run of a sweep, validated and resolved.
typedef struct {
    int64_t           index;          // 0-based point of the sweep
    char              label[512];     // "model.mixer=s4d,seed=2" ("" without sweep axes)
    lra_setting      *set;            // this point's settings (owned)
    int               n_set;
    char              task_name[32];
    lra_kv           *task_kv;        // pointers into set
    int               n_task_kv;
    lra_task_info     task_info;
    lra_model_task    mtask;
    lra_kv           *model_kv;
    int               n_model_kv;
    lra_model_config  model;
    lra_optim_config  optim;
    lra_train_config  train;
    uint64_t          seed, data_seed;
    char              backend[16];
    int               threads;
    char              db[1024], out_dir[1024], cache[1024];
    char            (*keybuf)[LRA_KEY_MAX];  // storage of the kv keys
    char             *config;         // canonical resolved config, "key = value" lines sorted
    char              hash[17];       // 16 hex digits of the config's hash
} lra_run_spec;

// Expands, validates and resolves point `index` of the sweep (opens the task
// to resolve its parameters, configures the mixer alone). Errors name the
// setting's file:line:column and key path, then the sweep point. On error r
// holds nothing to free.
int  lra_experiment_point(const lra_experiment *e, int64_t index, lra_run_spec *r, lra_err *err);
void lra_run_spec_free(lra_run_spec *r);

// The top-level, optim and train keys (for help and tests).
extern const char *const lra_experiment_top_keys[];
extern const char *const lra_optim_keys[];
extern const char *const lra_train_keys[];

#endif // LRA_EXPERIMENT_H
