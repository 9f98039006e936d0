// pathfinder.h: the Pathfinder task and Path-X (= Pathfinder at resolution 128).
//
// Generated mode reimplements the drewlinsley/pathfinder generator (snakes.py,
// snakes2.py; see pathfinder.c and /work/shared/reference/lra.md section 3):
// two target snakes of paddles, distractor snakes, two markers; label 1 when
// both markers sit on the two ends of the same snake. Loader mode (parameter
// data_dir) reads the official release layout imgs/<k>/sample_<i>.png +
// metadata/<k>.npy. Tokens are the 8-bit gray values of the image, row-major:
// seq_len = side*side, vocab 256, 2 classes.
#ifndef LRA_PATHFINDER_H
#define LRA_PATHFINDER_H

#include "task.h"

extern const lra_task_vtable lra_task_pathfinder;

#define LRA_PF_MAX_PADDLES 64  // largest contour_length / distractor_length accepted

// The geometry behind one generated image, for tests and inspection. Points
// are native pixel coordinates (y, x). Paddle k of a snake runs from
// paddle[s][k][0] (the end nearer the snake's start) to paddle[s][k][1], so
// origin_tip[s] = paddle[s][0][0] and terminal_tip[s] = paddle[s][n-1][1].
typedef struct {
    int label;                                  // 1: both markers on the ends of one snake
    int origin_snake;                           // target snake whose starting tip holds marker 0
    int margin;                                 // paddle_margin drawn for this image
    int n_paddles[2];                           // paddles of each target snake (contour_length)
    int paddle[2][LRA_PF_MAX_PADDLES][2][2];    // [snake][paddle][end][y, x]
    int origin_tip[2][2];                       // [snake][y, x]: the seeds, seed_distance apart
    int terminal_tip[2][2];                     // [snake][y, x]: the growing ends
    int marker[2][2];                           // [marker][y, x] centres of the two discs
    int n_distractors;                          // distractor snakes placed (incomplete sets allowed)
    int attempts;                               // tries of the target pair (1 = first try)
} lra_pathfinder_geometry;

// Generates example (split, index) of an opened generated-mode pathfinder
// task: pixels (side, side) row-major, and the geometry (geo may be NULL).
// Thread-safe. Fails with LRA_EINVAL on a task opened with data_dir.
int lra_pathfinder_generate(const lra_task *t, lra_split split, int64_t index, uint8_t *pixels,
                            lra_pathfinder_geometry *geo, lra_err *err);

#endif // LRA_PATHFINDER_H
