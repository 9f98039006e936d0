// dataset.h: a task's examples as the training loop reads them, with an
// on-disk cache for generated tasks so that a second run starts at once.
//
// Cache file <cache_dir>/<task>-<key>.lds, key = hash of (task name, resolved
// parameters, generator version, seed, format version). Layout, little-endian:
//   header   magic "LRADSET1", u32 format version, u32 generator version,
//            u64 key, u64 seed, i32 n_inputs, seq_len, token_bytes, n_classes,
//            i64 split sizes[3], u64 checksum of the records, u32 params length,
//            params text
//   records  split by split, example by example, fixed size:
//            tokens (n_inputs * seq_len) as u8 (vocab <= 256) or u16,
//            lengths (n_inputs) i32, label i32
// The file is written to a temporary name and renamed, so an interrupted
// build never leaves a half file. On open the header, size and checksum are
// verified; a mismatch or corruption is reported in ds->cache_note and the
// cache is rebuilt, never used.
#ifndef LRA_DATASET_H
#define LRA_DATASET_H

#include "task.h"

typedef struct {
    lra_task *task;
    int       fd;                              // cache file, -1 when examples come from the task
    int       token_bytes;                     // 1 or 2
    int64_t   record_bytes;
    int64_t   split_offset[LRA_SPLIT_COUNT];   // byte offset of each split's first record
    char      path[1024];                      // cache file path ("" when not cached)
    char      cache_note[1400];                 // "built", "loaded", or why it was rebuilt
} lra_dataset;

// Opens the examples of an opened task. cache_dir NULL: no cache (every
// example is generated or loaded on demand). Tasks loaded from official files
// are never cached (they are read at open). progress may be NULL.
int  lra_dataset_open(lra_dataset *ds, lra_task *task, const char *cache_dir, lra_progress_fn progress,
                      void *progress_ctx, lra_err *err);
// Thread-safe. ex->tokens (n_inputs, seq_len) and ex->length (n_inputs) are caller-allocated.
int  lra_dataset_example(const lra_dataset *ds, lra_split split, int64_t index, lra_example *ex, lra_err *err);
void lra_dataset_close(lra_dataset *ds);

// 64-bit hash used for cache keys and checksums (stable across platforms).
uint64_t lra_hash64(const void *data, size_t n, uint64_t h);

#endif // LRA_DATASET_H
