// pathfinder.c: the Pathfinder task (and Path-X, its 128x128 form).
//
// Generated mode reimplements drewlinsley/pathfinder @ 7b53886 (snakes.py,
// snakes2.py, snakes2_wrapper.py), summarised in lra.md section 3:
//   * A paddle is a line of paddle_length px and paddle_thickness, drawn at
//     antialias_scale (aa) times the resolution and downsampled with a
//     Lanczos-3 filter. Its mask is the high-resolution line grey-dilated by a
//     disc of radius margin*aa, downsampled the same way. Masks (uint8,
//     255 = 1.0, like the reference's uint8 imresize) keep snakes apart.
//   * extend_snake: the next pivot lies length + 2*margin along the last
//     orientation; candidate endpoints are the integer pixels on a circle of
//     radius length + margin around it (one sample per pixel of arc,
//     de-duplicated, out-of-bounds removed), weighted by
//     (1 - margin-dilated mask) * max(cos(min(continuity*dtheta, pi/2)), 0)^2
//     and sampled by CDF inversion; the paddle is drawn from the candidate
//     back toward the pivot and rejected when mask + new mask >= 1.8
//     (max_paddle_retrial = 2 retries). A snake's own last paddle is not yet
//     in the mask (it would block its successor); it is added one step later.
//   * seed_snake: the tail is a uniformly drawn pixel where the occupancy mask
//     (with a 1-px border), dilated by the paddle mask of the drawn
//     orientation, is free (<= 0.3); no seed once < 1% of the image is free.
//   * Two target snakes: A's tail at least 2*seed_distance from the border,
//     B's tail seed_distance from A's at a random integer angle; then A and B
//     grow alternately to contour_length paddles. Any failure restarts the
//     pair. num_distractor_snakes distractors of distractor_length paddles
//     follow (max 4 retries each, incomplete sets allowed), then two markers
//     (filled discs of marker_radius): label = fair coin; marker 0 on the
//     starting tip of a random target snake, marker 1 on the terminal tip of
//     the same snake (label 1) or of the other one (label 0).
//   * The image is max(paddles * contrast, markers), saved the way the
//     reference's scipy.misc.imsave did: byte-scaled so its maximum is 255.
//     Target paddles have contrast snake_contrast * paddle_contrast,
//     distractors snake_contrast (as in snakes2.from_wrapper).
// Deliberate differences from the reference (all make the label semantics
// safer, the geometry cleaner or the code faster; none changes the look):
//   * Each paddle stamp maps native pixel p to high-resolution pixel p*aa and
//     is downsampled by exactly aa with a separable Lanczos-3 (PIL's LANCZOS
//     taps: sinc(x) sinc(x/3), support 3*aa, normalised); the high-resolution
//     line is area-antialiased (4x4 supersampling of a rectangle of width
//     thickness*aa with half-pixel caps) instead of PIL's aliased polygon.
//     Mask stamp values below 8/255 (Lanczos ringing) are set to 0.
//   * The two target snakes stay apart: each sees the other's newest paddle
//     mask at once (the reference lets the two growth fronts cross), B's seed
//     may not overlap A's, and every target paddle keeps margin + thickness
//     between its centre line and the other target's (at 32x32 the thin masks
//     alone let the targets cross). Both last paddles enter the mask before
//     the distractors (the reference forgets A's). Distractors follow the
//     reference's mask rule only, so at 32x32 they may cross the targets.
//   * The seed-tail dilation uses the paddle mask at its tail (the reference
//     shifts it by one pixel); continuity weights beyond the pi/2 clip are
//     exactly 0 (the reference's cos(pi/2)^2 = 4e-33).
//   * Coordinates rounded with ceil/floor treat values within 1e-9 of an
//     integer as that integer (sin(pi) = 1.2e-16 must not move a pixel).
//   * A target pair that keeps failing gives up after 20000 attempts with an
//     error (the reference loops forever). At 64x64 and 128x128 the reference
//     geometry needs ~450 attempts on average (14 paddles must curl inside a
//     small window), so those resolutions generate ~200-500 images/s per
//     core; 32x32 ~6000.
// Every image is a pure function of (parameters, seed, split, index): the
// label, margin and marker choice come from the example's stream; the target
// pair's attempt a uses the substream (stage 1, a), distractors (stage 2, 0).
//
// Loader mode (data_dir) reads <data_dir>/metadata/<k>.npy (plain text: one
// row per image, space-separated; field 0 = "imgs/<k>", field 1 =
// "sample_<i>.png", field 3 = label) over the metadata files sorted by k
// (numerically), and <data_dir>/<field 0>/<field 1>. At open every row is
// checked and every image's PNG header read (missing file, wrong size: an
// error naming the metadata file and line; empty file: skipped, as LRA does);
// pixels are decoded lazily in `example`. split_mode=lra takes the first 80%
// / next 10% / last 10% of that order (rounded to nearest) as train/val/test;
// split_mode=all_<split> puts every image in one split (reading back one
// split written by export_split).
#include "pathfinder.h"
#include "pngio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_SALT               0x7061746866696e64ull  // "pathfind"
#define PF_GENERATOR_VERSION  1
#define PF_MAX_LIST           8     // entries of the *_list parameters
#define PF_MAX_CAND           255   // candidate endpoints on the extension circle (fit in uint8)
#define PF_N_SEED_ORIENT      360   // seed orientations: integer degrees -180..179
#define PF_MAX_PADDLE_RETRIAL 2     // snakes2_wrapper: max_paddle_retrial
#define PF_MAX_SNAKE_RETRIAL  4     // max_distractor_contour_retrial
#define PF_MAX_PAIR_ATTEMPTS  20000 // target-pair restarts before giving up (64x64 needs ~450 on average)
#define PF_FREE_LEVEL         76    // mask value <= 0.3 * 255: free pixel
#define PF_OVERLAP_LEVEL      459   // mask + new mask >= 1.8 * 255: overlap
#define PF_MASK_FLOOR         8     // mask stamp values below 8/255 are set to 0
#define PF_WORDS              4     // 64-bit words per bitmap row (side <= 256)
#define PF_EXPORT_BATCH       1000  // images per imgs/<k> directory

static const char *const pf_resolutions[] = { "32", "64", "128", "256", NULL };
static const char *const pf_difficulties[] = { "baseline", "contour_length_9", "contour_length_14", NULL };
static const int pf_contour_lengths[] = { 6, 9, 14 };
static const char *const pf_split_modes[] = { "lra", "all_train", "all_val", "all_test", NULL };

// ---- parameters ----------------------------------------------------------------------

typedef struct {
    int    resolution, difficulty;
    int    padding, paddle_length, antialias_scale, seed_distance;
    double paddle_thickness, marker_radius, continuity;
    int    contour_length, distractor_length, num_distractor_snakes;
    int    n_margins, margins[PF_MAX_LIST];
    int    n_snake_contrasts, n_paddle_contrasts;
    double snake_contrasts[PF_MAX_LIST], paddle_contrasts[PF_MAX_LIST];
} pf_params;

// Per-resolution overrides of the LRA builders (lra_benchmarks/data/pathfinder.py
// docstrings, lra.md 3.3); the wrapper defaults fill the rest (256: padding 22,
// seed_distance 27). K: num_distractor_snakes = K / distractor_length.
typedef struct {
    int    resolution, padding, paddle_length;
    double paddle_thickness;
    int    n_margins, margins[2];
    double marker_radius;
    int    seed_distance, antialias_scale;
    double continuity;
    int    distractor_budget;
    double snake_contrast, paddle_contrast;
} pf_defaults;

static const pf_defaults pf_table[] = {
    { 32, 1, 2, 0.5, 1, { 1 }, 1.5, 7, 2, 1.0, 20, 2.0, 0.75 },
    { 64, 1, 5, 1.0, 1, { 1 }, 2.5, 12, 2, 1.8, 22, 0.8, 1.0 },
    { 128, 1, 5, 1.5, 2, { 2, 3 }, 3.0, 20, 2, 1.8, 35, 0.9, 1.0 },
    { 256, 22, 5, 2.0, 1, { 3 }, 5.0, 27, 2, 1.8, 30, 1.0, 1.0 },
};

// ---- precomputed stamps and geometry --------------------------------------------------

// A small uint8 image placed relative to an anchor pixel: pixel (y, x) of the
// canvas reads data[(y - ay - y0) * w + (x - ax - x0)] inside the box.
typedef struct {
    int16_t  y0, x0, h, w;
    uint32_t offset;  // into the stamp pool
} pf_stamp;

// One orientation a paddle can have. Seeds (ids 0..359) are drawn along
// `angle`; extension candidates (ids 360..) are reached along `angle` from the
// pivot and drawn back from the candidate along angle + pi.
typedef struct {
    double   angle;               // snake direction, radians (atan2 convention: y down)
    int      step_y, step_x;      // next pivot: ceil((length + 2 margin) * (sin, cos)(angle))
    int      tip_y, tip_x;        // far end of the drawn paddle: ceil(length * draw direction)
    int      back_y, back_x;      // seeds: pivot = head + ceil((length + margin) * (sin, cos)(angle + pi))
    pf_stamp line, mask;          // the drawn paddle and its margin mask, anchored at the drawn start
    int      seed_off, n_seed_off;  // seeds: offsets where mask == 255 (the dilation structure)
} pf_orient;

typedef struct {
    int       margin;
    int       n_cand;
    int8_t    cand[PF_MAX_CAND][2];  // (dy, dx) from the pivot, sorted like np.unique
    int       n_orient;               // 360 + n_cand
    pf_orient *orient;                // (n_orient)
    // continuity weights after orientation o: candidates wl_cand[wl_start[o] ..
    // wl_start[o + 1]) with weights wl_weight (only the non-zero ones, in candidate order)
    int      *wl_start;               // (n_orient + 1)
    uint8_t  *wl_cand;                // (n_orient * n_cand)
    double   *wl_weight;              // (n_orient * n_cand)
    int8_t  (*seed_off)[2];           // offsets referenced by pf_orient.seed_off
    int       n_disc;
    int8_t  (*disc)[2];               // disc of radius margin: the small dilation structure
    int      *disc_lin;               // (n_disc) the disc as offsets dy * res + dx
    uint64_t *first_free;             // (360, res, PF_WORDS): free tails of snake A's seed per orientation
    int64_t  *first_count;            // (360): their number (the occupancy is fixed then: borders only)
} pf_margin_geo;

// ---- loader ---------------------------------------------------------------------------

typedef struct {
    char     *dir;
    int       n_meta;
    char    **meta_paths;  // (n_meta) full paths, for messages
    int64_t   n;           // images kept (empty PNGs skipped)
    uint32_t *path_off;    // (n) offset of "<field 0>/<field 1>" in paths
    uint32_t *meta_file;   // (n) index into meta_paths
    uint32_t *meta_line;   // (n) 1-based line
    uint8_t  *label;       // (n)
    char     *paths;
    size_t    paths_len, paths_cap;
    int64_t   cap;
    int64_t   split_begin[LRA_SPLIT_COUNT];
} pf_loader;

typedef struct {
    pf_params     p;
    int           loaded;      // 1: loader mode
    int           split_mode;
    pf_loader     ld;
    pf_margin_geo geo[PF_MAX_LIST];
    pf_stamp      marker;
    uint8_t      *border;      // (res, res) the padding border (255), the views' starting state
    uint8_t      *pool;        // stamp pixels
    size_t        pool_len, pool_cap;
} pf_state;

// ---- small helpers ----------------------------------------------------------------------

// The reference rounds with np.ceil on float coordinates; sin(pi) = 1.2e-16
// must not push an exact integer up, so values within 1e-9 of one count as it.
static int pf_ceil(double v) { return (int)ceil(v - 1e-9); }

static int pf_in(int res, int y, int x) { return y >= 0 && y < res && x >= 0 && x < res; }


// ---- stamp rendering ---------------------------------------------------------------------

// Lanczos-3 downsampling by an integer factor aa, PIL's convention: output
// pixel i is centred at input (i + 0.5) * aa; input pixel j = i * aa + t
// weighs sinc(x) sinc(x / 3), x = (t + 0.5 - aa / 2) / aa, |x| < 3, normalised.
typedef struct {
    int    n_taps, t0;
    double w[32];
} pf_lanczos;

static double pf_sinc(double x) { return x == 0 ? 1.0 : sin(M_PI * x) / (M_PI * x); }

static void pf_lanczos_init(pf_lanczos *lz, int aa) {
    double sum = 0;
    lz->n_taps = 0;
    lz->t0 = 0;
    for (int t = -4 * aa; t <= 4 * aa; t++) {
        double x = (t + 0.5 - 0.5 * aa) / aa;
        if (fabs(x) >= 3.0) continue;
        if (lz->n_taps == 0) lz->t0 = t;
        lz->w[lz->n_taps++] = pf_sinc(x) * pf_sinc(x / 3.0);
        sum += pf_sinc(x) * pf_sinc(x / 3.0);
    }
    for (int k = 0; k < lz->n_taps; k++) lz->w[k] /= sum;
}

// hi (N*aa, N*aa) in [0, 1] -> out (N, N) uint8 (rounded, clipped like PIL's
// 8-bit result). tmp: (N*aa, N) scratch.
static void pf_downsample(const float *hi, int N, int aa, const pf_lanczos *lz, float *tmp, uint8_t *out) {
    int H = N * aa;
    for (int r = 0; r < H; r++) {
        const float *row = hi + (size_t)r * H;
        int any = 0;
        for (int j = 0; j < H && !any; j++) any = row[j] != 0;
        for (int i = 0; i < N; i++) {
            double acc = 0;
            for (int k = 0; any && k < lz->n_taps; k++) {
                int j = i * aa + lz->t0 + k;
                if (j >= 0 && j < H) acc += lz->w[k] * row[j];
            }
            tmp[(size_t)r * N + i] = (float)acc;
        }
    }
    for (int i = 0; i < N; i++)
        for (int c = 0; c < N; c++) {
            double acc = 0;
            for (int k = 0; k < lz->n_taps; k++) {
                int r = i * aa + lz->t0 + k;
                if (r >= 0 && r < H) acc += lz->w[k] * tmp[(size_t)r * N + c];
            }
            double v = floor(acc * 255.0 + 0.5);
            out[i * N + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

// Copies the non-zero box of img (N, N), whose pixel (R, R) is the anchor, into the pool.
static int pf_stamp_store(pf_state *st, const uint8_t *img, int N, int R, pf_stamp *s) {
    int y0 = N, y1 = -1, x0 = N, x1 = -1;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            if (img[y * N + x]) {
                if (y < y0) y0 = y;
                if (y > y1) y1 = y;
                if (x < x0) x0 = x;
                if (x > x1) x1 = x;
            }
    if (y1 < 0) y0 = y1 = x0 = x1 = R;  // empty: a 1x1 zero stamp
    int h = y1 - y0 + 1, w = x1 - x0 + 1;
    if (st->pool_len + (size_t)h * w > st->pool_cap) {
        size_t cap = st->pool_cap ? st->pool_cap * 2 : 1 << 16;
        while (cap < st->pool_len + (size_t)h * w) cap *= 2;
        uint8_t *p = realloc(st->pool, cap);
        if (!p) return 0;
        st->pool = p;
        st->pool_cap = cap;
    }
    *s = (pf_stamp){ .y0 = (int16_t)(y0 - R), .x0 = (int16_t)(x0 - R), .h = (int16_t)h, .w = (int16_t)w,
                     .offset = (uint32_t)st->pool_len };
    for (int y = 0; y < h; y++) memcpy(st->pool + st->pool_len + (size_t)y * w, img + (y0 + y) * N + x0, w);
    st->pool_len += (size_t)h * w;
    return 1;
}

// Scratch for rendering one stamp: native canvas (N, N) with the anchor at (R, R).
typedef struct {
    int        N, R, aa;
    pf_lanczos lz;
    float     *line, *mask, *tmp;  // (N*aa)^2, (N*aa)^2, (N*aa, N)
    uint8_t   *out;                // (N, N)
} pf_render;

// A paddle from the anchor to high-resolution offset (ey, ex), width w (hi-res
// pixels): area coverage of the rectangle |perp| <= w/2, -0.5 <= along <=
// len + 0.5, by 4x4 supersampling. Then mask = grey dilation by a disc of
// radius md (hi-res pixels).
static void pf_render_paddle(pf_render *rd, int ey, int ex, int w, int md) {
    int H = rd->N * rd->aa, c0 = rd->R * rd->aa;
    memset(rd->line, 0, sizeof(float) * H * H);
    memset(rd->mask, 0, sizeof(float) * H * H);
    double len = hypot(ey, ex), dy = len > 0 ? ey / len : 0, dx = len > 0 ? ex / len : 1, half = 0.5 * w;
    int reach = w + 2;
    int ya = (ey < 0 ? ey : 0) - reach, yb = (ey > 0 ? ey : 0) + reach;
    int xa = (ex < 0 ? ex : 0) - reach, xb = (ex > 0 ? ex : 0) + reach;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            int hits = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++) {
                    double py = y + (sy + 0.5) / 4 - 0.5, px = x + (sx + 0.5) / 4 - 0.5;
                    double along = py * dy + px * dx, perp = fabs(py * dx - px * dy);
                    hits += along >= -0.5 && along <= len + 0.5 && perp <= half;
                }
            if (hits) rd->line[(size_t)(c0 + y) * H + (c0 + x)] = hits / 16.0f;
        }
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            float v = rd->line[(size_t)(c0 + y) * H + (c0 + x)];
            if (v == 0) continue;
            for (int oy = -md; oy <= md; oy++)
                for (int ox = -md; ox <= md; ox++) {
                    if (oy * oy + ox * ox > md * md) continue;
                    float *m = &rd->mask[(size_t)(c0 + y + oy) * H + (c0 + x + ox)];
                    if (v > *m) *m = v;
                }
        }
}

// ---- geometry precompute ---------------------------------------------------------------

static double pf_wrap_delta(double a, double b) {
    double d = fabs(a - b);
    return d < 2 * M_PI - d ? d : 2 * M_PI - d;
}

// Candidate endpoints of get_coords_cmf: pivot + (floor(r sin a), floor(r cos a))
// for a = 0, 360/(2 pi r), ... < 360 degrees, unique, sorted like np.unique.
static int pf_candidates(int r, int8_t cand[PF_MAX_CAND][2]) {
    double step = 360.0 / (2 * r * M_PI);
    int n = 0;
    for (int j = 0; j * step < 360.0; j++) {
        double a = j * step * M_PI / 180.0;
        int dy = (int)floor(r * sin(a) + 1e-9), dx = (int)floor(r * cos(a) + 1e-9);
        int k = 0;
        while (k < n && (cand[k][0] < dy || (cand[k][0] == dy && cand[k][1] < dx))) k++;
        if (k < n && cand[k][0] == dy && cand[k][1] == dx) continue;
        if (n == PF_MAX_CAND) return -1;
        memmove(cand[k + 1], cand[k], sizeof cand[0] * (n - k));
        cand[k][0] = (int8_t)dy;
        cand[k][1] = (int8_t)dx;
        n++;
    }
    return n;
}

static int pf_build_margin(pf_state *st, pf_margin_geo *g, int margin, pf_render *rd) {
    const pf_params *p = &st->p;
    int L = p->paddle_length, aa = p->antialias_scale, w = (int)lround(p->paddle_thickness * aa);
    g->margin = margin;
    g->n_cand = pf_candidates(L + margin, g->cand);
    if (g->n_cand <= 0) return 0;
    g->n_orient = PF_N_SEED_ORIENT + g->n_cand;
    g->orient = calloc(g->n_orient, sizeof *g->orient);
    g->wl_start = malloc(sizeof *g->wl_start * (g->n_orient + 1));
    g->wl_cand = malloc(sizeof *g->wl_cand * g->n_orient * g->n_cand);
    g->wl_weight = malloc(sizeof *g->wl_weight * g->n_orient * g->n_cand);
    g->disc = malloc(sizeof *g->disc * (2 * margin + 1) * (2 * margin + 1));
    g->disc_lin = malloc(sizeof *g->disc_lin * (2 * margin + 1) * (2 * margin + 1));
    int n_rd = rd->N * rd->N;
    g->seed_off = malloc(sizeof *g->seed_off * PF_N_SEED_ORIENT * n_rd);
    if (!g->orient || !g->wl_start || !g->wl_cand || !g->wl_weight || !g->disc || !g->disc_lin || !g->seed_off)
        return 0;
    g->n_disc = 0;
    for (int y = -margin; y <= margin; y++)
        for (int x = -margin; x <= margin; x++)
            if (x * x + y * y <= margin * margin) {
                g->disc_lin[g->n_disc] = y * p->resolution + x;
                g->disc[g->n_disc][0] = (int8_t)y;
                g->disc[g->n_disc++][1] = (int8_t)x;
            }
    int n_seed_off = 0, n_wl = 0;
    for (int o = 0; o < g->n_orient; o++) {
        pf_orient *ori = &g->orient[o];
        int seed = o < PF_N_SEED_ORIENT;
        double draw;
        if (seed) {
            ori->angle = (o - 180) * M_PI / 180.0;
            draw = ori->angle;
        } else {
            const int8_t *c = g->cand[o - PF_N_SEED_ORIENT];
            ori->angle = atan2(c[0], c[1]);
            draw = ori->angle < 0 ? ori->angle + M_PI : ori->angle - M_PI;  // flip_by_pi
        }
        double s = sin(ori->angle), c = cos(ori->angle), ds = sin(draw), dc = cos(draw);
        ori->step_y = pf_ceil((L + 2 * margin) * s);
        ori->step_x = pf_ceil((L + 2 * margin) * c);
        ori->tip_y = pf_ceil(L * ds);
        ori->tip_x = pf_ceil(L * dc);
        ori->back_y = pf_ceil((L + margin) * -s);
        ori->back_x = pf_ceil((L + margin) * -c);
        pf_render_paddle(rd, pf_ceil(L * aa * ds), pf_ceil(L * aa * dc), w, margin * aa);
        pf_downsample(rd->line, rd->N, aa, &rd->lz, rd->tmp, rd->out);
        if (!pf_stamp_store(st, rd->out, rd->N, rd->R, &ori->line)) return 0;
        pf_downsample(rd->mask, rd->N, aa, &rd->lz, rd->tmp, rd->out);
        for (int i = 0; i < rd->N * rd->N; i++)  // Lanczos ringing below 3% only slows the mask updates
            if (rd->out[i] < PF_MASK_FLOOR) rd->out[i] = 0;
        if (!pf_stamp_store(st, rd->out, rd->N, rd->R, &ori->mask)) return 0;
        if (seed) {
            ori->seed_off = n_seed_off;
            for (int y = 0; y < rd->N; y++)
                for (int x = 0; x < rd->N; x++)
                    if (rd->out[y * rd->N + x] == 255) {
                        g->seed_off[n_seed_off][0] = (int8_t)(y - rd->R);
                        g->seed_off[n_seed_off++][1] = (int8_t)(x - rd->R);
                    }
            ori->n_seed_off = n_seed_off - ori->seed_off;
        }
        // max(cos(min(continuity * dtheta, pi/2)), 0)^2, exactly 0 at the clip (cos(pi/2) = 6e-17 in floating point)
        g->wl_start[o] = n_wl;
        for (int k = 0; k < g->n_cand; k++) {
            double phi = atan2(g->cand[k][0], g->cand[k][1]);
            double delta = pf_wrap_delta(phi, ori->angle) * p->continuity;
            if (delta >= 0.5 * M_PI) continue;
            g->wl_cand[n_wl] = (uint8_t)k;
            g->wl_weight[n_wl++] = cos(delta) * cos(delta);
        }
    }
    g->wl_start[g->n_orient] = n_wl;
    return 1;
}

static int pf_build_geometry(pf_state *st, lra_err *err) {
    const pf_params *p = &st->p;
    int aa = p->antialias_scale, max_margin = 0;
    for (int i = 0; i < p->n_margins; i++)
        if (p->margins[i] > max_margin) max_margin = p->margins[i];
    int R_paddle = p->paddle_length + (int)ceil(p->paddle_thickness) + max_margin + 4;
    int R_marker = (int)ceil(p->marker_radius) + 4;
    int R = R_paddle > R_marker ? R_paddle : R_marker;
    pf_render rd = { .N = 2 * R + 1, .R = R, .aa = aa };
    size_t H = (size_t)rd.N * aa;
    pf_lanczos_init(&rd.lz, aa);
    rd.line = malloc(sizeof(float) * H * H);
    rd.mask = malloc(sizeof(float) * H * H);
    rd.tmp = malloc(sizeof(float) * H * rd.N);
    rd.out = malloc((size_t)rd.N * rd.N);
    int ok = rd.line && rd.mask && rd.tmp && rd.out;
    for (int i = 0; ok && i < p->n_margins; i++) ok = pf_build_margin(st, &st->geo[i], p->margins[i], &rd);
    if (ok) {  // marker: filled disc of marker_radius * aa around the anchor's hi-res pixel (draw_circle)
        double r2 = (p->marker_radius * aa) * (p->marker_radius * aa);
        int c0 = R * aa;
        memset(rd.line, 0, sizeof(float) * H * H);
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < H; x++) {
                double oy = (double)y - c0, ox = (double)x - c0;
                if (oy * oy + ox * ox <= r2) rd.line[y * H + x] = 1.0f;
            }
        pf_downsample(rd.line, rd.N, aa, &rd.lz, rd.tmp, rd.out);
        ok = pf_stamp_store(st, rd.out, rd.N, R, &st->marker);
    }
    free(rd.line);
    free(rd.mask);
    free(rd.tmp);
    free(rd.out);
    if (!ok) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory for the paddle stamps");
    return LRA_OK;
}

// ---- generation: canvas and bitmaps ------------------------------------------------------

typedef uint64_t pf_row[PF_WORDS];

typedef struct {
    int y, x;              // anchor
    const pf_stamp *mask;  // NULL: none
} pf_placed;

// The state of one image being drawn. While the two target snakes grow, each
// has its own occupancy view vis[s]: everything placed so far except its own
// newest paddle (which would block its successor; it is flushed one step
// later). Distractors use vis[0], the full occupancy, and no partner view.
typedef struct {
    const pf_state      *st;
    const pf_margin_geo *geo;
    int                  res, words;
    float               *img;        // (res, res) intensity before byte-scaling
    uint8_t             *vis[2];     // (res, res) occupancy masks, 255 = 1.0
    uint8_t             *occ_saved;  // (res, res) vis[0] before a distractor snake
    uint8_t             *own;        // the growing snake's view
    uint8_t             *partner;    // the other target snake's view (NULL: none)
    const int          (*rival)[2][2];  // the other target snake's paddles (n_rival), kept at a distance
    int                  n_rival;
    double               min_gap;    // least distance between target paddle centre lines
    pf_row              *bits, *dil; // (res) occupancy and dilated occupancy bitmaps
    lra_rng              rng;
} pf_gen;

typedef struct {
    int       pivot_y, pivot_x;
    int       orient;   // id of the last orientation
    pf_placed pending;  // own newest paddle mask, not yet in the own view
} pf_snake;

// The part of stamp s anchored at (ay, ax) inside the image: stamp rows
// [r0, r1) and columns [c0, c1).
typedef struct { int r0, r1, c0, c1, y, x; } pf_clip;

static pf_clip pf_clip_stamp(int res, const pf_stamp *s, int ay, int ax) {
    pf_clip c = { 0, s->h, 0, s->w, ay + s->y0, ax + s->x0 };
    if (c.y < 0) c.r0 = -c.y;
    if (c.y + s->h > res) c.r1 = res - c.y;
    if (c.x < 0) c.c0 = -c.x;
    if (c.x + s->w > res) c.c1 = res - c.x;
    return c;
}

static void pf_draw(pf_gen *g, const pf_stamp *s, int ay, int ax, float scale) {
    const uint8_t *px = g->st->pool + s->offset;
    pf_clip c = pf_clip_stamp(g->res, s, ay, ax);
    for (int r = c.r0; r < c.r1; r++) {
        float *dst = g->img + (size_t)(c.y + r) * g->res + c.x;
        for (int k = c.c0; k < c.c1; k++) {
            float v = px[r * s->w + k] * scale;
            if (v > dst[k]) dst[k] = v;
        }
    }
}

// dst = max(dst, stamp at the anchor)
static void pf_stamp_max(const pf_gen *g, uint8_t *dst, const pf_stamp *s, int ay, int ax) {
    const uint8_t *px = g->st->pool + s->offset;
    pf_clip c = pf_clip_stamp(g->res, s, ay, ax);
    for (int r = c.r0; r < c.r1; r++) {
        uint8_t *row = dst + (size_t)(c.y + r) * g->res + c.x;
        const uint8_t *src = px + r * s->w;
        for (int k = c.c0; k < c.c1; k++) row[k] = src[k] > row[k] ? src[k] : row[k];
    }
}

static void pf_flush(pf_gen *g, pf_placed *pl) {
    if (pl->mask) pf_stamp_max(g, g->own, pl->mask, pl->y, pl->x);
    pl->mask = NULL;
}

// max(mask + new mask) >= 1.8 over the new paddle's mask (extend_snake).
static int pf_overlaps(const pf_gen *g, const uint8_t *view, const pf_stamp *s, int ay, int ax) {
    const uint8_t *px = g->st->pool + s->offset;
    pf_clip c = pf_clip_stamp(g->res, s, ay, ax);
    int hit = 0;
    for (int r = c.r0; r < c.r1; r++) {
        const uint8_t *row = view + (size_t)(c.y + r) * g->res + c.x, *src = px + r * s->w;
        for (int k = c.c0; k < c.c1; k++) hit |= src[k] + row[k] >= PF_OVERLAP_LEVEL;
    }
    return hit;
}

// Occupancy bitmap of the own view (> 0.3), plus a border of `width` pixels set.
static void pf_bits_occupied(pf_gen *g, int width) {
    int res = g->res;
    memset(g->bits, 0, sizeof *g->bits * res);
    for (int y = 0; y < res; y++) {
        int row_full = y < width || y >= res - width;
        for (int x = 0; x < res; x++)
            if (row_full || x < width || x >= res - width || g->own[y * res + x] > PF_FREE_LEVEL)
                g->bits[y][x >> 6] |= 1ull << (x & 63);
    }
}

// dst bit x |= src bit (x + ox)
static void pf_or_shifted(uint64_t *dst, const uint64_t *src, int W, int ox) {
    int s = ox >= 0 ? ox : -ox, q = s >> 6, r = s & 63;
    for (int i = 0; i < W; i++) {
        uint64_t a, b;
        if (ox >= 0) {
            a = i + q < W ? src[i + q] : 0;
            b = i + q + 1 < W ? src[i + q + 1] : 0;
            dst[i] |= r ? (a >> r) | (b << (64 - r)) : a;
        } else {
            a = i - q >= 0 ? src[i - q] : 0;
            b = i - q - 1 >= 0 ? src[i - q - 1] : 0;
            dst[i] |= r ? (a << r) | (b >> (64 - r)) : a;
        }
    }
}

static uint64_t pf_valid_word(int res, int i) {
    int bits = res - 64 * i;
    return bits >= 64 ? ~0ull : bits <= 0 ? 0 : (1ull << bits) - 1;
}

// Dilates the occupancy bitmap by the seed structure of orientation o (cv2.dilate:
// a tail is blocked when any structure pixel from it is occupied); returns the
// number of free tails.
static int64_t pf_dilate(pf_gen *g, const pf_orient *o) {
    int res = g->res, W = g->words;
    memset(g->dil, 0, sizeof *g->dil * res);
    for (int k = 0; k < o->n_seed_off; k++) {
        int oy = g->geo->seed_off[o->seed_off + k][0], ox = g->geo->seed_off[o->seed_off + k][1];
        for (int y = 0; y < res; y++)
            if (y + oy >= 0 && y + oy < res) pf_or_shifted(g->dil[y], g->bits[y + oy], W, ox);
    }
    int64_t n = 0;
    for (int y = 0; y < res; y++)
        for (int i = 0; i < W; i++) n += __builtin_popcountll(~g->dil[y][i] & pf_valid_word(res, i));
    return n;
}

// The k-th free pixel of the dilated bitmap in row-major order (np.nonzero).
static void pf_nth_free(const pf_gen *g, const pf_row *dil, int64_t k, int *py, int *px) {
    for (int y = 0; y < g->res; y++)
        for (int i = 0; i < g->words; i++) {
            uint64_t f = ~dil[y][i] & pf_valid_word(g->res, i);
            int c = __builtin_popcountll(f);
            if (k >= c) {
                k -= c;
                continue;
            }
            while (k--) f &= f - 1;
            *py = y;
            *px = 64 * i + __builtin_ctzll(f);
            return;
        }
    LRA_ASSERT(0 && "pf_nth_free: k beyond the free count");
}

// Snake A's seed sees only the borders (padding and 2 * seed_distance), so its
// free tails per orientation are computed once at open.
static int pf_build_seed_cache(pf_state *st, lra_err *err) {
    int res = st->p.resolution, pad = st->p.padding;
    st->border = malloc((size_t)res * res);
    pf_row *rows = malloc(2 * sizeof *rows * res);
    int ok = st->border && rows;
    for (int y = 0; ok && y < res; y++)
        for (int x = 0; x < res; x++)
            st->border[y * res + x] = (y < pad || y >= res - pad || x < pad || x >= res - pad) ? 255 : 0;
    for (int m = 0; ok && m < st->p.n_margins; m++) {
        pf_margin_geo *geo = &st->geo[m];
        geo->first_free = malloc(sizeof(pf_row) * res * PF_N_SEED_ORIENT);
        geo->first_count = malloc(sizeof *geo->first_count * PF_N_SEED_ORIENT);
        if (!(ok = geo->first_free && geo->first_count)) break;
        pf_gen g = { .st = st, .geo = geo, .res = res, .words = (res + 63) / 64, .own = st->border,
                     .bits = rows, .dil = rows + res };
        pf_bits_occupied(&g, 2 * st->p.seed_distance);
        for (int o = 0; o < PF_N_SEED_ORIENT; o++) {
            geo->first_count[o] = pf_dilate(&g, &geo->orient[o]);
            memcpy(geo->first_free + (size_t)o * res * PF_WORDS, g.dil, sizeof(pf_row) * res);
        }
    }
    free(rows);
    if (!ok) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory for the seed tables");
    return LRA_OK;
}

static double pf_pick(lra_rng *rng, const double *list, int n) {
    return n > 1 ? list[lra_rng_int(rng, 0, n - 1)] : list[0];
}

// ---- generation: snakes ----------------------------------------------------------------

// Squared distance from point (py, px) to segment ab.
static double pf_point_segment2(double py, double px, const int a[2], const int b[2]) {
    double dy = b[0] - a[0], dx = b[1] - a[1], l2 = dy * dy + dx * dx;
    double u = l2 > 0 ? ((py - a[0]) * dy + (px - a[1]) * dx) / l2 : 0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double ey = a[0] + u * dy - py, ex = a[1] + u * dx - px;
    return ey * ey + ex * ex;
}

static double pf_cross(const int o[2], const int a[2], const int b[2]) {
    return (double)(a[0] - o[0]) * (b[1] - o[1]) - (double)(a[1] - o[1]) * (b[0] - o[0]);
}

// Squared distance between segments p and q (0 when they cross).
static double pf_segment_gap2(const int p[2][2], const int q[2][2]) {
    double c1 = pf_cross(p[0], p[1], q[0]), c2 = pf_cross(p[0], p[1], q[1]);
    double c3 = pf_cross(q[0], q[1], p[0]), c4 = pf_cross(q[0], q[1], p[1]);
    if (((c1 > 0 && c2 < 0) || (c1 < 0 && c2 > 0)) && ((c3 > 0 && c4 < 0) || (c3 < 0 && c4 > 0))) return 0;
    double d = pf_point_segment2(p[0][0], p[0][1], q[0], q[1]), e = pf_point_segment2(p[1][0], p[1][1], q[0], q[1]);
    d = e < d ? e : d;
    e = pf_point_segment2(q[0][0], q[0][1], p[0], p[1]);
    d = e < d ? e : d;
    e = pf_point_segment2(q[1][0], q[1][1], p[0], p[1]);
    return e < d ? e : d;
}

// Added to the reference: a target paddle keeps margin + thickness between its
// centre line and the other target snake's (at 32x32 the thin, Lanczos-blurred
// masks alone let the two targets cross, which would blur the label).
static int pf_too_close(const pf_gen *g, const int p[2][2]) {
    double gap = g->min_gap;
    double y0 = (p[0][0] < p[1][0] ? p[0][0] : p[1][0]) - gap, y1 = (p[0][0] > p[1][0] ? p[0][0] : p[1][0]) + gap;
    double x0 = (p[0][1] < p[1][1] ? p[0][1] : p[1][1]) - gap, x1 = (p[0][1] > p[1][1] ? p[0][1] : p[1][1]) + gap;
    for (int k = 0; k < g->n_rival; k++) {
        const int (*q)[2] = g->rival[k];
        if ((q[0][0] < y0 && q[1][0] < y0) || (q[0][0] > y1 && q[1][0] > y1) || (q[0][1] < x0 && q[1][1] < x0) ||
            (q[0][1] > x1 && q[1][1] > x1))
            continue;  // the boxes are farther apart than the gap
        if (pf_segment_gap2(p, q) < gap * gap) return 1;
    }
    return 0;
}

static void pf_seed_fill(const pf_orient *ori, int o, int ty, int tx, pf_snake *s, int end[2][2]) {
    int hy = ty + ori->tip_y, hx = tx + ori->tip_x;
    *s = (pf_snake){ .pivot_y = hy + ori->back_y, .pivot_x = hx + ori->back_x, .orient = o,
                     .pending = { ty, tx, &ori->mask } };
    end[0][0] = ty;
    end[0][1] = tx;
    end[1][0] = hy;
    end[1][1] = hx;
}

static int pf_seed_fits(int res, const pf_orient *ori, int ty, int tx) {
    int hy = ty + ori->tip_y, hx = tx + ori->tip_x;
    return pf_in(res, hy, hx) && pf_in(res, hy + ori->back_y, hx + ori->back_x);
}

// A seed paddle at a free tail of the own view (seed_snake; initialize_two_seeds
// for snake A, first = 1: border 2 * seed_distance, tables from open). Returns
// 1 and fills the snake.
static int pf_seed(pf_gen *g, int first, pf_snake *s, int end[2][2]) {
    int res = g->res;
    double stop_availability = first ? 0 : 0.01;
    if (!first) pf_bits_occupied(g, 1);
    if (stop_availability > 0) {
        int64_t raw_free = 0;
        for (int i = 0; i < res * res; i++) raw_free += g->own[i] <= PF_FREE_LEVEL;
        if ((double)raw_free / ((double)res * res) < stop_availability) return 0;
    }
    for (int trial = 0; trial <= PF_MAX_PADDLE_RETRIAL; trial++) {
        int o = (int)lra_rng_int(&g->rng, 0, PF_N_SEED_ORIENT - 1);
        const pf_orient *ori = &g->geo->orient[o];
        const pf_row *dil = first ? (const pf_row *)(g->geo->first_free + (size_t)o * res * PF_WORDS) : g->dil;
        int64_t n_free = first ? g->geo->first_count[o] : pf_dilate(g, ori);
        if (n_free == 0) return 0;
        int ty = 0, tx = 0;
        pf_nth_free(g, dil, lra_rng_int(&g->rng, 0, n_free - 1), &ty, &tx);
        if (!pf_seed_fits(res, ori, ty, tx)) continue;
        pf_seed_fill(ori, o, ty, tx, s, end);
        return 1;
    }
    return 0;
}

// Snake B's seed: tail seed_distance from A's tail at a random integer angle.
// Added to the reference: B's tail must be inside and B's seed may not overlap
// what B sees (A's seed).
static int pf_seed_partner(pf_gen *g, const int a_tail[2], pf_snake *s, int end[2][2]) {
    int res = g->res, sd = g->st->p.seed_distance;
    for (int trial = 0; trial <= PF_MAX_PADDLE_RETRIAL; trial++) {
        int o = (int)lra_rng_int(&g->rng, 0, PF_N_SEED_ORIENT - 1);
        double ang = (double)lra_rng_int(&g->rng, 0, 359) * M_PI / 180.0;
        int ty = (int)nearbyint(a_tail[0] + sd * sin(ang)), tx = (int)nearbyint(a_tail[1] + sd * cos(ang));
        const pf_orient *ori = &g->geo->orient[o];
        if (!pf_seed_fits(res, ori, ty, tx) || !pf_in(res, ty, tx)) continue;
        if (pf_overlaps(g, g->own, &ori->mask, ty, tx)) continue;
        int seed[2][2] = { { ty, tx }, { ty + ori->tip_y, tx + ori->tip_x } };
        if (pf_too_close(g, seed)) continue;
        pf_seed_fill(ori, o, ty, tx, s, end);
        return 1;
    }
    return 0;
}

// extend_snake: one more paddle. On success the snake's previous paddle mask
// goes into its own view, the new one into the partner's view, end holds the
// paddle and *orient its orientation (the caller draws the line).
static int pf_extend(pf_gen *g, pf_snake *s, int end[2][2], int *orient) {
    const pf_margin_geo *geo = g->geo;
    int res = g->res;
    const pf_orient *last = &geo->orient[s->orient];
    int py = s->pivot_y + last->step_y, px = s->pivot_x + last->step_x;
    double cdf[PF_MAX_CAND], total = 0;
    int idx[PF_MAX_CAND], n = 0;
    for (int k = geo->wl_start[s->orient]; k < geo->wl_start[s->orient + 1]; k++) {
        int c = geo->wl_cand[k], y = py + geo->cand[c][0], x = px + geo->cand[c][1];
        if (!pf_in(res, y, x)) continue;
        int dil = 0, m = geo->margin;  // the view dilated by a disc of radius margin, at the candidate
        if (y >= m && y < res - m && x >= m && x < res - m) {
            const uint8_t *at = g->own + y * res + x;
            for (int d = 0; d < geo->n_disc; d++) dil = at[geo->disc_lin[d]] > dil ? at[geo->disc_lin[d]] : dil;
        } else {
            for (int d = 0; d < geo->n_disc; d++) {
                int yy = y + geo->disc[d][0], xx = x + geo->disc[d][1];
                if (pf_in(res, yy, xx) && g->own[yy * res + xx] > dil) dil = g->own[yy * res + xx];
            }
        }
        total += (1.0 - dil / 255.0) * geo->wl_weight[k];
        cdf[n] = total;
        idx[n++] = c;
    }
    if (n == 0 || total < 1e-4) return 0;  // dead end
    for (int trial = 0; trial <= PF_MAX_PADDLE_RETRIAL; trial++) {
        double u = lra_rng_uniform(&g->rng) * total;
        int k = 0;
        while (k < n - 1 && !(cdf[k] > u)) k++;
        int c = idx[k], o = PF_N_SEED_ORIENT + c;
        int y = py + geo->cand[c][0], x = px + geo->cand[c][1];
        const pf_stamp *mask = &geo->orient[o].mask;
        if (pf_overlaps(g, g->own, mask, y, x)) continue;
        int paddle[2][2] = { { y + geo->orient[o].tip_y, x + geo->orient[o].tip_x }, { y, x } };
        if (pf_too_close(g, paddle)) continue;
        pf_flush(g, &s->pending);
        if (g->partner) pf_stamp_max(g, g->partner, mask, y, x);
        s->pending = (pf_placed){ y, x, mask };
        s->orient = o;
        s->pivot_y = py;
        s->pivot_x = px;
        end[1][0] = y;
        end[1][1] = x;
        end[0][0] = y + geo->orient[o].tip_y;
        end[0][1] = x + geo->orient[o].tip_x;
        *orient = o;
        return 1;
    }
    return 0;
}

// The views hold the padding border (mask[:padding] = 1 ... in initialize_two_seeds).
static void pf_views_reset(pf_gen *g) {
    memcpy(g->vis[0], g->st->border, (size_t)g->res * g->res);
    memcpy(g->vis[1], g->st->border, (size_t)g->res * g->res);
}

// two_snakes: one attempt at the target pair. Fills geo's paddles and tips
// and orient[s][k]; on success vis[0] holds every target paddle's mask.
static int pf_two_snakes(pf_gen *g, lra_pathfinder_geometry *geo, int orient[2][LRA_PF_MAX_PADDLES]) {
    const pf_params *p = &g->st->p;
    pf_views_reset(g);
    pf_snake sn[2];
    g->own = g->vis[0];
    if (!pf_seed(g, 1, &sn[0], geo->paddle[0][0])) {
        return 0;
    }
    pf_stamp_max(g, g->vis[1], sn[0].pending.mask, sn[0].pending.y, sn[0].pending.x);
    g->own = g->vis[1];
    g->min_gap = g->geo->margin + p->paddle_thickness;
    g->rival = (const int (*)[2][2])geo->paddle[0];
    g->n_rival = 1;
    if (!pf_seed_partner(g, geo->paddle[0][0][0], &sn[1], geo->paddle[1][0])) {
        g->n_rival = 0;
        return 0;
    }
    pf_stamp_max(g, g->vis[0], sn[1].pending.mask, sn[1].pending.y, sn[1].pending.x);
    for (int s = 0; s < 2; s++) orient[s][0] = sn[s].orient;
    for (int k = 1; k < p->contour_length; k++)
        for (int s = 0; s < 2; s++) {
            g->own = g->vis[s];
            g->partner = g->vis[1 - s];
            g->rival = (const int (*)[2][2])geo->paddle[1 - s];
            g->n_rival = s == 0 ? k : k + 1;
            if (!pf_extend(g, &sn[s], geo->paddle[s][k], &orient[s][k])) {
                g->partner = NULL;
                g->n_rival = 0;
                return 0;
            }
        }
    g->partner = NULL;
    g->n_rival = 0;
    g->own = g->vis[0];
    pf_flush(g, &sn[0].pending);  // (the reference forgets snake A's last paddle here)
    for (int s = 0; s < 2; s++) {
        geo->n_paddles[s] = p->contour_length;
        memcpy(geo->origin_tip[s], geo->paddle[s][0][0], sizeof geo->origin_tip[s]);
        memcpy(geo->terminal_tip[s], geo->paddle[s][p->contour_length - 1][1], sizeof geo->terminal_tip[s]);
    }
    return 1;
}

// Target lines: contrast = snake contrast (two drawn from snake_contrast_list * 2
// without replacement) * paddle contrast (drawn per paddle).
static void pf_draw_targets(pf_gen *g, const lra_pathfinder_geometry *geo, int orient[2][LRA_PF_MAX_PADDLES]) {
    const pf_params *p = &g->st->p;
    double mu[2] = { p->snake_contrasts[0], p->snake_contrasts[0] };
    if (p->n_snake_contrasts > 1) {
        int n2 = 2 * p->n_snake_contrasts;
        int i0 = (int)lra_rng_int(&g->rng, 0, n2 - 1), i1 = (int)lra_rng_int(&g->rng, 0, n2 - 2);
        if (i1 >= i0) i1++;
        mu[0] = p->snake_contrasts[i0 % p->n_snake_contrasts];
        mu[1] = p->snake_contrasts[i1 % p->n_snake_contrasts];
    }
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < p->contour_length; k++) {
            double c = mu[s] * pf_pick(&g->rng, p->paddle_contrasts, p->n_paddle_contrasts);
            // seeds are drawn from the tail, extensions from their far end
            const int *anchor = geo->paddle[s][k][k == 0 ? 0 : 1];
            pf_draw(g, &g->geo->orient[orient[s][k]].line, anchor[0], anchor[1], (float)(c / 255.0));
        }
}

// make_snake: one distractor. The lines are drawn only when the whole snake
// fits; on failure the occupancy is restored.
static int pf_distractor(pf_gen *g) {
    const pf_params *p = &g->st->p;
    int res = g->res, orient[LRA_PF_MAX_PADDLES], at[LRA_PF_MAX_PADDLES][2], end[2][2];
    pf_snake s;
    memcpy(g->occ_saved, g->own, (size_t)res * res);
    if (!pf_seed(g, 0, &s, end)) return 0;
    orient[0] = s.orient;
    at[0][0] = end[0][0];
    at[0][1] = end[0][1];
    for (int k = 1; k < p->distractor_length; k++) {
        if (!pf_extend(g, &s, end, &orient[k])) {
            memcpy(g->own, g->occ_saved, (size_t)res * res);
            return 0;
        }
        at[k][0] = end[1][0];
        at[k][1] = end[1][1];
    }
    pf_flush(g, &s.pending);
    for (int k = 0; k < p->distractor_length; k++) {
        double c = pf_pick(&g->rng, p->snake_contrasts, p->n_snake_contrasts);
        pf_draw(g, &g->geo->orient[orient[k]].line, at[k][0], at[k][1], (float)(c / 255.0));
    }
    return 1;
}

static const pf_state *pf_st(const lra_task *t) { return (const pf_state *)t->state; }

int lra_pathfinder_generate(const lra_task *t, lra_split split, int64_t index, uint8_t *pixels,
                            lra_pathfinder_geometry *geo_out, lra_err *err) {
    const pf_state *st = pf_st(t);
    if (st->loaded)
        return lra_err_set(err, LRA_EINVAL, "pathfinder: the task reads %s (data_dir): nothing to generate",
                           st->ld.dir);
    const pf_params *p = &st->p;
    int res = p->resolution;
    uint64_t base = lra_example_seed(t->seed, PF_SALT, split, index);
    lra_rng r0 = { base, 0 };
    lra_pathfinder_geometry local, *geo = geo_out ? geo_out : &local;
    memset(geo, 0, sizeof *geo);
    geo->label = (int)lra_rng_int(&r0, 0, 1);
    int mi = (int)lra_rng_int(&r0, 0, p->n_margins - 1);
    geo->origin_snake = (int)lra_rng_int(&r0, 0, 1);
    geo->margin = p->margins[mi];

    size_t n_px = (size_t)res * res;
    char *mem = malloc(2 * sizeof(pf_row) * res + n_px * (sizeof(float) + 3));
    if (!mem) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory for a %dx%d image", res, res);
    pf_gen g = { .st = st, .geo = &st->geo[mi], .res = res, .words = (res + 63) / 64 };
    g.bits = (pf_row *)mem;
    g.dil = g.bits + res;
    g.img = (float *)(g.dil + res);
    g.vis[0] = (uint8_t *)(g.img + n_px);
    g.vis[1] = g.vis[0] + n_px;
    g.occ_saved = g.vis[1] + n_px;

    int orient[2][LRA_PF_MAX_PADDLES], ok = 0;
    for (int a = 0; a < PF_MAX_PAIR_ATTEMPTS && !ok; a++) {
        g.rng = (lra_rng){ lra_rand_bits(base, (1ull << 32) | (uint64_t)a), 0 };
        ok = pf_two_snakes(&g, geo, orient);
        geo->attempts = a + 1;
    }
    if (!ok) {
        free(mem);
        return lra_err_set(err, LRA_EINVAL,
                           "pathfinder: %s example %lld: no room for two target snakes of %d paddles in %d "
                           "attempts (resolution %d): the geometric parameters are too tight",
                           lra_split_names[split], (long long)index, p->contour_length, PF_MAX_PAIR_ATTEMPTS, res);
    }
    memset(g.img, 0, sizeof *g.img * n_px);
    pf_draw_targets(&g, geo, orient);
    g.rng = (lra_rng){ lra_rand_bits(base, 2ull << 32), 0 };
    g.own = g.vis[0];
    for (int d = 0; d < p->num_distractor_snakes; d++)
        for (int retry = 0; retry <= PF_MAX_SNAKE_RETRIAL; retry++)
            if (pf_distractor(&g)) {
                geo->n_distractors++;
                break;
            }
    int o = geo->origin_snake, other = geo->label ? o : 1 - o;
    memcpy(geo->marker[0], geo->origin_tip[o], sizeof geo->marker[0]);
    memcpy(geo->marker[1], geo->terminal_tip[other], sizeof geo->marker[1]);
    for (int m = 0; m < 2; m++) pf_draw(&g, &st->marker, geo->marker[m][0], geo->marker[m][1], 1.0f / 255.0f);
    float vmax = 0;  // scipy.misc.imsave: bytescale to [0, 255]
    for (size_t i = 0; i < n_px; i++)
        if (g.img[i] > vmax) vmax = g.img[i];
    for (size_t i = 0; i < n_px; i++) {
        float v = vmax > 0 ? floorf(g.img[i] * (255.0f / vmax) + 0.5f) : 0.0f;
        pixels[i] = (uint8_t)(v > 255 ? 255 : v);
    }
    free(mem);
    return LRA_OK;
}

// ---- loader -----------------------------------------------------------------------------

static void pf_loader_free(pf_loader *ld) {
    for (int i = 0; i < ld->n_meta; i++) free(ld->meta_paths[i]);
    free(ld->meta_paths);
    free(ld->path_off);
    free(ld->meta_file);
    free(ld->meta_line);
    free(ld->label);
    free(ld->paths);
    free(ld->dir);
    memset(ld, 0, sizeof *ld);
}

// Metadata files sort by k numerically ("2.npy" before "10.npy"); other names after, by strcmp.
static int pf_name_cmp(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    char *ex, *ey;
    unsigned long long vx = strtoull(x, &ex, 10), vy = strtoull(y, &ey, 10);
    int nx = ex != x && strcmp(ex, ".npy") == 0, ny = ey != y && strcmp(ey, ".npy") == 0;
    if (nx != ny) return nx ? -1 : 1;
    if (nx && vx != vy) return vx < vy ? -1 : 1;
    return strcmp(x, y);
}

static int pf_list_metadata(const char *dir, char ***names_out, int *n_out, lra_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metadata", dir);
    DIR *d = opendir(path);
    if (!d)
        return lra_err_set(err, LRA_EIO,
                           "%s: cannot open the metadata directory: %s (expected the release layout "
                           "metadata/<k>.npy and imgs/<k>/sample_<i>.png under %s)",
                           path, strerror(errno), dir);
    char **names = NULL;
    int n = 0, cap = 0, ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy") != 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, sizeof *names * cap);
            if (!nn) { ok = 0; break; }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) ok = 0;
        else n++;
    }
    closedir(d);
    if (ok && n == 0) {
        free(names);
        return lra_err_set(err, LRA_EIO, "%s: no metadata files (<k>.npy) found", path);
    }
    if (!ok) {
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return lra_err_set(err, LRA_ENOMEM, "%s: out of memory listing the metadata", path);
    }
    qsort(names, n, sizeof *names, pf_name_cmp);
    *names_out = names;
    *n_out = n;
    return LRA_OK;
}

static int pf_read_file(const char *path, char **data, size_t *len, lra_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) { free(buf); buf = NULL; }
        else buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory reading the file", path);
    if (bad) {
        free(buf);
        return lra_err_set(err, LRA_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return LRA_OK;
}

// Checks the PNG signature and IHDR size of one image. Returns 1 when the file
// is empty (skipped), 0 when it is a side x side PNG, -1 on error (err set).
static int pf_check_png(const char *where, const char *path, int side, lra_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        lra_err_set(err, LRA_EIO, "%s: %s: cannot open: %s", where, path, strerror(errno));
        return -1;
    }
    struct stat sb;
    unsigned char h[24];
    ssize_t n = -1;
    int is_reg = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (is_reg && sb.st_size > 0) n = read(fd, h, sizeof h);
    close(fd);
    if (!is_reg) {
        lra_err_set(err, LRA_EIO, "%s: %s: not a regular file", where, path);
        return -1;
    }
    if (sb.st_size == 0) return 1;
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (n < (ssize_t)sizeof h || memcmp(h, sig, 8) != 0 || memcmp(h + 12, "IHDR", 4) != 0) {
        lra_err_set(err, LRA_EIO, "%s: %s: not a PNG file (bad signature or header)", where, path);
        return -1;
    }
    uint32_t w = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
    uint32_t ht = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 | (uint32_t)h[22] << 8 | h[23];
    if (w != (uint32_t)side || ht != (uint32_t)side) {
        lra_err_set(err, LRA_EIO, "%s: %s: image is %ux%u, expected %dx%d (resolution=%d)", where, path, (unsigned)w,
                    (unsigned)ht, side, side, side);
        return -1;
    }
    return 0;
}

static int pf_loader_add(pf_loader *ld, const char *rel, size_t rel_len, int label, int file, int line) {
    if (ld->n == ld->cap) {
        int64_t cap = ld->cap ? 2 * ld->cap : 4096;
        uint32_t *a = realloc(ld->path_off, sizeof *a * cap);
        if (a) ld->path_off = a;
        uint32_t *b = a ? realloc(ld->meta_file, sizeof *b * cap) : NULL;
        if (b) ld->meta_file = b;
        uint32_t *c = b ? realloc(ld->meta_line, sizeof *c * cap) : NULL;
        if (c) ld->meta_line = c;
        uint8_t *d = c ? realloc(ld->label, cap) : NULL;
        if (!d) return 0;
        ld->label = d;
        ld->cap = cap;
    }
    if (ld->paths_len + rel_len + 1 > ld->paths_cap) {
        size_t cap = ld->paths_cap ? 2 * ld->paths_cap : 1 << 20;
        while (cap < ld->paths_len + rel_len + 1) cap *= 2;
        if (cap > UINT32_MAX) return 0;
        char *p = realloc(ld->paths, cap);
        if (!p) return 0;
        ld->paths = p;
        ld->paths_cap = cap;
    }
    ld->path_off[ld->n] = (uint32_t)ld->paths_len;
    memcpy(ld->paths + ld->paths_len, rel, rel_len);
    ld->paths[ld->paths_len + rel_len] = 0;
    ld->paths_len += rel_len + 1;
    ld->meta_file[ld->n] = (uint32_t)file;
    ld->meta_line[ld->n] = (uint32_t)line;
    ld->label[ld->n++] = (uint8_t)label;
    return 1;
}

// One metadata row: fields separated by spaces (or tabs); field 0 = image
// directory, field 1 = file name, field 3 = label.
static int pf_parse_row(pf_loader *ld, int file, int line, char *row, size_t len, int side, lra_err *err) {
    const char *meta = ld->meta_paths[file];
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", meta, line);
    if (memchr(row, 0, len)) return lra_err_set(err, LRA_EIO, "%s: NUL byte in the row", where);
    if (len && row[len - 1] == '\r') len--;
    const char *field[4];
    size_t flen[4];
    int n_fields = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (row[i] == ' ' || row[i] == '\t')) i++;
        if (i == len) break;
        size_t j = i;
        while (j < len && row[j] != ' ' && row[j] != '\t') j++;
        if (n_fields < 4) {
            field[n_fields] = row + i;
            flen[n_fields] = j - i;
        }
        n_fields++;
        i = j;
    }
    if (n_fields == 0) return LRA_OK;  // blank line
    if (n_fields < 4)
        return lra_err_set(err, LRA_EIO,
                           "%s: expected at least 4 space-separated fields (image directory, file name, index, "
                           "label), got %d",
                           where, n_fields);
    if (flen[3] != 1 || (field[3][0] != '0' && field[3][0] != '1'))
        return lra_err_set(err, LRA_EIO, "%s: label (field 4) must be 0 or 1, got '%.*s'", where,
                           (int)(flen[3] > 40 ? 40 : flen[3]), field[3]);
    char rel[4096], full[8192];
    if (flen[0] + flen[1] + 2 > sizeof rel) return lra_err_set(err, LRA_EIO, "%s: image path too long", where);
    int rel_len = snprintf(rel, sizeof rel, "%.*s/%.*s", (int)flen[0], field[0], (int)flen[1], field[1]);
    snprintf(full, sizeof full, "%s/%s", ld->dir, rel);
    int empty = pf_check_png(where, full, side, err);
    if (empty < 0) return err ? err->code : LRA_EIO;
    if (empty) return LRA_OK;  // LRA filters empty images (a known one exists in the release)
    if (!pf_loader_add(ld, rel, (size_t)rel_len, field[3][0] - '0', file, line))
        return lra_err_set(err, LRA_ENOMEM, "%s: out of memory for the image index", where);
    return LRA_OK;
}

static int pf_loader_open(pf_loader *ld, const char *dir, int side, lra_err *err) {
    if (!(ld->dir = strdup(dir))) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
    char **names;
    int n_names, rc = pf_list_metadata(dir, &names, &n_names, err);
    if (rc) return rc;
    ld->meta_paths = calloc(n_names, sizeof *ld->meta_paths);
    for (int i = 0; i < n_names; i++) {
        if (ld->meta_paths) {
            size_t len = strlen(dir) + strlen(names[i]) + 16;
            if ((ld->meta_paths[i] = malloc(len))) snprintf(ld->meta_paths[i], len, "%s/metadata/%s", dir, names[i]);
        }
        free(names[i]);
    }
    free(names);
    if (!ld->meta_paths) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
    ld->n_meta = n_names;
    for (int f = 0; f < n_names; f++) {
        if (!ld->meta_paths[f]) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
        char *data = NULL;
        size_t len = 0;
        if ((rc = pf_read_file(ld->meta_paths[f], &data, &len, err))) return rc;
        int line = 1;
        for (size_t i = 0; i < len && !rc; line++) {
            char *nl = memchr(data + i, '\n', len - i);
            size_t end = nl ? (size_t)(nl - data) : len;
            rc = pf_parse_row(ld, f, line, data + i, end - i, side, err);
            i = end + 1;
        }
        free(data);
        if (rc) return rc;
    }
    if (ld->n == 0) return lra_err_set(err, LRA_EIO, "%s/metadata: no images listed", dir);
    return LRA_OK;
}

static int pf_loader_example(const pf_state *st, int64_t i, uint8_t *pixels, int *label, lra_err *err) {
    const pf_loader *ld = &st->ld;
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", ld->dir, ld->paths + ld->path_off[i]);
    uint8_t *px;
    int w, h;
    lra_err e = { 0 };
    int side = st->p.resolution;
    if (lra_png_read_gray(full, &px, &w, &h, &e))
        return lra_err_set(err, e.code, "%s:%u: %s", ld->meta_paths[ld->meta_file[i]], (unsigned)ld->meta_line[i],
                           e.msg);
    if (w != side || h != side) {
        free(px);
        return lra_err_set(err, LRA_EIO, "%s:%u: %s: image is %dx%d, expected %dx%d (resolution=%d)",
                           ld->meta_paths[ld->meta_file[i]], (unsigned)ld->meta_line[i], full, w, h, side, side, side);
    }
    memcpy(pixels, px, (size_t)side * side);
    free(px);
    *label = ld->label[i];
    return LRA_OK;
}

// ---- parameters -------------------------------------------------------------------------

// A comma-separated list of 1..PF_MAX_LIST numbers in [lo, hi] (integers when is_int).
static int pf_kv_list(const lra_kv *params, int n_params, const char *key, int is_int, double lo, double hi,
                      double *out, int *n_out, lra_err *err) {
    const lra_kv *kv = lra_kv_find(params, n_params, key);
    if (!kv) return LRA_OK;
    const char *s = kv->value;
    int n = 0, ok = *s != 0;
    while (ok && *s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        ok = end != s && !errno && isfinite(v) && v >= lo && v <= hi && n < PF_MAX_LIST && (!is_int || v == floor(v));
        if (!ok) break;
        out[n++] = v;
        s = end;
        if (*s == ',') {
            s++;
            ok = *s != 0;
        } else if (*s) {
            ok = 0;
        }
    }
    if (!ok)
        return lra_err_set(err, LRA_EINVAL,
                           "%s: pathfinder.%s: expected a comma-separated list of 1 to %d %s in [%g, %g], got '%s'",
                           lra_kv_where(kv), key, PF_MAX_LIST, is_int ? "integers" : "numbers", lo, hi, kv->value);
    *n_out = n;
    return LRA_OK;
}

static int pf_kv_int(const lra_kv *kv, int n, const char *key, int def, int lo, int hi, int *out, lra_err *err) {
    int64_t v;
    int rc = lra_kv_int(kv, n, "pathfinder", key, def, lo, hi, &v, err);
    *out = (int)v;
    return rc;
}

static int pf_parse_params(pf_params *p, const lra_kv *kv, int n, lra_err *err) {
    int ri, rc;
    if ((rc = lra_kv_choice(kv, n, "pathfinder", "resolution", 0, pf_resolutions, &ri, err))) return rc;
    if ((rc = lra_kv_choice(kv, n, "pathfinder", "difficulty", 2, pf_difficulties, &p->difficulty, err))) return rc;
    const pf_defaults *d = &pf_table[ri];
    p->resolution = d->resolution;
    int res = d->resolution;
    if ((rc = pf_kv_int(kv, n, "padding", d->padding, 0, res / 4, &p->padding, err))) return rc;
    if ((rc = pf_kv_int(kv, n, "paddle_length", d->paddle_length, 1, 20, &p->paddle_length, err))) return rc;
    if ((rc = lra_kv_double(kv, n, "pathfinder", "paddle_thickness", d->paddle_thickness, 0.25, 8,
                            &p->paddle_thickness, err)))
        return rc;
    if ((rc = lra_kv_double(kv, n, "pathfinder", "marker_radius", d->marker_radius, 0.5, 16, &p->marker_radius, err)))
        return rc;
    if ((rc = pf_kv_int(kv, n, "seed_distance", d->seed_distance, 1, res, &p->seed_distance, err))) return rc;
    if ((rc = pf_kv_int(kv, n, "antialias_scale", d->antialias_scale, 1, 4, &p->antialias_scale, err))) return rc;
    if ((rc = lra_kv_double(kv, n, "pathfinder", "continuity", d->continuity, 0, 10, &p->continuity, err))) return rc;
    int cl = pf_contour_lengths[p->difficulty];
    if ((rc = pf_kv_int(kv, n, "contour_length", cl, 1, LRA_PF_MAX_PADDLES, &p->contour_length, err))) return rc;
    int dl = p->contour_length / 3 > 0 ? p->contour_length / 3 : 1;
    if ((rc = pf_kv_int(kv, n, "distractor_length", dl, 1, LRA_PF_MAX_PADDLES, &p->distractor_length, err)))
        return rc;
    if ((rc = pf_kv_int(kv, n, "num_distractor_snakes", d->distractor_budget / p->distractor_length, 0, 1000,
                        &p->num_distractor_snakes, err)))
        return rc;
    double list[PF_MAX_LIST];
    p->n_margins = d->n_margins;
    for (int i = 0; i < d->n_margins; i++) list[i] = d->margins[i];
    if ((rc = pf_kv_list(kv, n, "paddle_margin_list", 1, 0, 10, list, &p->n_margins, err))) return rc;
    for (int i = 0; i < p->n_margins; i++) p->margins[i] = (int)list[i];
    p->n_snake_contrasts = p->n_paddle_contrasts = 1;
    p->snake_contrasts[0] = d->snake_contrast;
    p->paddle_contrasts[0] = d->paddle_contrast;
    if ((rc = pf_kv_list(kv, n, "snake_contrast_list", 0, 0.01, 100, p->snake_contrasts, &p->n_snake_contrasts, err)))
        return rc;
    if ((rc = pf_kv_list(kv, n, "paddle_contrast_list", 0, 0.01, 100, p->paddle_contrasts, &p->n_paddle_contrasts,
                         err)))
        return rc;
    double w = p->paddle_thickness * p->antialias_scale;
    if (fabs(w - floor(w + 0.5)) > 1e-9) {  // draw_line_n_mask: "thickness does not break even"
        const lra_kv *kv_t = lra_kv_find(kv, n, "paddle_thickness");
        return lra_err_set(err, LRA_EINVAL,
                           "%s: pathfinder.paddle_thickness: paddle_thickness * antialias_scale must be a whole "
                           "number of pixels, got %g * %d",
                           lra_kv_where(kv_t ? kv_t : lra_kv_find(kv, n, "antialias_scale")), p->paddle_thickness,
                           p->antialias_scale);
    }
    return LRA_OK;
}

static void pf_append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pf_append(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len >= cap - 1) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

static void pf_append_list(char *buf, size_t cap, const char *key, const double *v, int n) {
    pf_append(buf, cap, "%s=", key);
    for (int i = 0; i < n; i++) pf_append(buf, cap, "%s%g", i ? "," : "", v[i]);
    pf_append(buf, cap, ";");
}

static int pf_describe_params(const pf_state *st, const int64_t *sizes, lra_task_info *info, lra_err *err) {
    const pf_params *p = &st->p;
    char *b = info->params;
    size_t cap = sizeof info->params;
    double margins[PF_MAX_LIST];
    for (int i = 0; i < p->n_margins; i++) margins[i] = p->margins[i];
    b[0] = 0;
    pf_append(b, cap, "resolution=%d;difficulty=%s;padding=%d;paddle_length=%d;paddle_thickness=%g;", p->resolution,
              pf_difficulties[p->difficulty], p->padding, p->paddle_length, p->paddle_thickness);
    pf_append_list(b, cap, "paddle_margin_list", margins, p->n_margins);
    pf_append(b, cap,
              "marker_radius=%g;seed_distance=%d;antialias_scale=%d;continuity=%g;contour_length=%d;"
              "distractor_length=%d;num_distractor_snakes=%d;",
              p->marker_radius, p->seed_distance, p->antialias_scale, p->continuity, p->contour_length,
              p->distractor_length, p->num_distractor_snakes);
    pf_append_list(b, cap, "snake_contrast_list", p->snake_contrasts, p->n_snake_contrasts);
    pf_append_list(b, cap, "paddle_contrast_list", p->paddle_contrasts, p->n_paddle_contrasts);
    pf_append(b, cap, "n_train=%lld;n_val=%lld;n_test=%lld", (long long)sizes[0], (long long)sizes[1],
              (long long)sizes[2]);
    if (st->loaded) pf_append(b, cap, ";data_dir=%s;split_mode=%s", st->ld.dir, pf_split_modes[st->split_mode]);
    if (strlen(b) >= cap - 1)
        return lra_err_set(err, LRA_EINVAL, "pathfinder: parameter description too long (data_dir too long?)");
    return LRA_OK;
}

// ---- vtable -------------------------------------------------------------------------------

static void pf_close(lra_task *t) {
    pf_state *st = t->state;
    if (!st) return;
    for (int i = 0; i < PF_MAX_LIST; i++) {
        free(st->geo[i].orient);
        free(st->geo[i].wl_start);
        free(st->geo[i].wl_cand);
        free(st->geo[i].wl_weight);
        free(st->geo[i].seed_off);
        free(st->geo[i].disc);
        free(st->geo[i].disc_lin);
        free(st->geo[i].first_free);
        free(st->geo[i].first_count);
    }
    pf_loader_free(&st->ld);
    free(st->pool);
    free(st->border);
    free(st);
    t->state = NULL;
}

static const char *const pf_known[] = {
    "resolution", "difficulty", "n_train", "n_val", "n_test", "data_dir", "split_mode",
    "padding", "paddle_length", "paddle_thickness", "paddle_margin_list", "marker_radius", "seed_distance",
    "antialias_scale", "continuity", "contour_length", "distractor_length", "num_distractor_snakes",
    "snake_contrast_list", "paddle_contrast_list", "input", "normalize", NULL,
};

static int pf_split_sizes(pf_state *st, const lra_kv *kv, int n, int64_t sizes[LRA_SPLIT_COUNT], lra_err *err) {
    static const char *const keys[LRA_SPLIT_COUNT] = { "n_train", "n_val", "n_test" };
    static const int64_t defaults[LRA_SPLIT_COUNT] = { 160000, 20000, 20000 };  // LRA: 80/10/10 of 200k
    int64_t given[LRA_SPLIT_COUNT];
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int rc = lra_kv_int(kv, n, "pathfinder", keys[s], defaults[s], 0, (int64_t)1 << 40, &given[s], err);
        if (rc) return rc;
        sizes[s] = given[s];
    }
    if (!st->loaded) return LRA_OK;
    int64_t N = st->ld.n, begin[LRA_SPLIT_COUNT], count[LRA_SPLIT_COUNT];
    if (st->split_mode == 0) {
        int64_t b1 = (8 * N + 5) / 10, b2 = (9 * N + 5) / 10;
        begin[0] = 0, count[0] = b1;
        begin[1] = b1, count[1] = b2 - b1;
        begin[2] = b2, count[2] = N - b2;
    } else {
        for (int s = 0; s < LRA_SPLIT_COUNT; s++) begin[s] = 0, count[s] = s == st->split_mode - 1 ? N : 0;
    }
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {  // with data_dir, n_<split> only caps a split
        st->ld.split_begin[s] = begin[s];
        sizes[s] = lra_kv_find(kv, n, keys[s]) && given[s] < count[s] ? given[s] : count[s];
    }
    return LRA_OK;
}

static int pf_open(lra_task *t, const lra_kv *kv, int n, uint64_t seed, lra_err *err) {
    t->state = NULL;
    int rc = lra_kv_check_known(kv, n, "pathfinder", pf_known, err);
    if (rc) return rc;
    pf_state *st = calloc(1, sizeof *st);
    if (!st) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
    t->state = st;
    t->seed = seed;
    if ((rc = pf_parse_params(&st->p, kv, n, err))) goto fail;
    const char *dir;
    lra_kv_string(kv, n, "data_dir", NULL, &dir);
    if ((rc = lra_kv_choice(kv, n, "pathfinder", "split_mode", 0, pf_split_modes, &st->split_mode, err))) goto fail;
    if (!dir && lra_kv_find(kv, n, "split_mode")) {
        rc = lra_err_set(err, LRA_EINVAL, "%s: pathfinder.split_mode: only applies with data_dir",
                         lra_kv_where(lra_kv_find(kv, n, "split_mode")));
        goto fail;
    }
    if (dir) {
        st->loaded = 1;
        if ((rc = pf_loader_open(&st->ld, dir, st->p.resolution, err))) goto fail;
    } else if ((rc = pf_build_geometry(st, err)) || (rc = pf_build_seed_cache(st, err))) {
        goto fail;
    }
    lra_task_info *info = &t->info;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "pathfinder");
    int side = st->p.resolution;
    info->n_inputs = 1;
    info->seq_len = side * side;
    info->vocab = 256;
    info->pad_id = 0;
    info->n_classes = 2;
    info->image_side = side;
    if ((rc = pf_split_sizes(st, kv, n, info->split_size, err))) goto fail;
    if (st->loaded) snprintf(info->source, sizeof info->source, "%s", dir);
    else snprintf(info->source, sizeof info->source, "generated (seed %llu)", (unsigned long long)seed);
    info->generator_version = PF_GENERATOR_VERSION;
    if ((rc = pf_describe_params(st, info->split_size, info, err))) goto fail;
    if ((rc = lra_task_pixel_input(kv, n, "pathfinder", info, err))) goto fail;
    return LRA_OK;
fail:
    pf_close(t);
    return rc;
}

// Pixels and label of one example, either mode. margin: the image's paddle margin (may be NULL).
static int pf_pixels(const lra_task *t, lra_split split, int64_t index, uint8_t *pixels, int *label, int *margin,
                     lra_err *err) {
    const pf_state *st = pf_st(t);
    int rc = lra_task_check_index(t, split, index, err);
    if (rc) return rc;
    if (st->loaded) {
        if (margin) *margin = st->p.margins[0];
        return pf_loader_example(st, st->ld.split_begin[split] + index, pixels, label, err);
    }
    lra_pathfinder_geometry geo;
    rc = lra_pathfinder_generate(t, split, index, pixels, &geo, err);
    *label = geo.label;
    if (margin) *margin = geo.margin;
    return rc;
}

static int pf_example(const lra_task *t, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    int side = t->info.image_side, n_px = side * side, label = 0;
    uint8_t small[64 * 64], *pixels = n_px <= (int)sizeof small ? small : malloc(n_px);
    if (!pixels) return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
    int rc = pf_pixels(t, split, index, pixels, &label, NULL, err);
    if (!rc) {
        for (int i = 0; i < n_px; i++) ex->tokens[i] = pixels[i];
        ex->length[0] = n_px;
        ex->label = label;
    }
    if (pixels != small) free(pixels);
    return rc;
}

// ---- export -------------------------------------------------------------------------------

static int pf_mkdirs(const char *path, lra_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return lra_err_set(err, LRA_EINVAL, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return lra_err_set(err, LRA_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return LRA_OK;
}

// Python's str() of a float: 1.0, 1.8, 0.5.
static void pf_pyfloat(char *buf, size_t cap, double v) {
    snprintf(buf, cap, "%.12g", v);
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

// One batch: images [start, start + count) of split as imgs/<k>/sample_<i>.png
// (generated and written in parallel), then metadata/<k>.npy.
static int pf_export_batch(const lra_task *t, lra_split split, const char *dir, int k, int64_t start, int count,
                           lra_err *err) {
    const pf_params *p = &pf_st(t)->p;
    char path[4096];
    snprintf(path, sizeof path, "%s/imgs/%d", dir, k);
    int rc = pf_mkdirs(path, err);
    if (rc) return rc;
    int *label = malloc(sizeof *label * count), *margin = malloc(sizeof *margin * count);
    if (!label || !margin) {
        free(label);
        free(margin);
        return lra_err_set(err, LRA_ENOMEM, "pathfinder: out of memory");
    }
    int side = p->resolution, first_fail = count;
    lra_err fail = { 0 };
    #pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < count; i++) {
        lra_err e = { 0 };
        char file[4200];
        uint8_t *pixels = malloc((size_t)side * side);
        int r = pixels ? pf_pixels(t, split, start + i, pixels, &label[i], &margin[i], &e)
                       : lra_err_set(&e, LRA_ENOMEM, "pathfinder: out of memory");
        if (!r) {
            snprintf(file, sizeof file, "%s/sample_%d.png", path, i);
            r = lra_png_write_gray(file, pixels, side, side, &e);
        }
        free(pixels);
        if (r) {
            #pragma omp critical(pf_export_fail)
            if (i < first_fail) {
                first_fail = i;
                fail = e;
            }
        }
    }
    if (first_fail < count) {
        free(label);
        free(margin);
        if (err) *err = fail;
        return fail.code;
    }
    snprintf(path, sizeof path, "%s/metadata/%d.npy", dir, k);
    FILE *f = fopen(path, "wb");
    if (!f) rc = lra_err_set(err, LRA_EIO, "%s: cannot create: %s", path, strerror(errno));
    char cont[64], thick[64];
    pf_pyfloat(cont, sizeof cont, p->continuity);
    pf_pyfloat(thick, sizeof thick, p->paddle_thickness);
    // [subdir, filename, image_index, label, continuity, contour_length, distractor_length,
    //  paddle_length, paddle_thickness, paddle_margin, n_paddle_contrasts] (snakes2.accumulate_meta)
    for (int i = 0; f && i < count; i++)
        fprintf(f, "imgs/%d sample_%d.png %d %d %s %d %d %d %s %d %d\n", k, i, i, label[i], cont, p->contour_length,
                p->distractor_length, p->paddle_length, thick, margin[i], p->n_paddle_contrasts);
    if (f && (ferror(f) | fclose(f))) rc = lra_err_set(err, LRA_EIO, "%s: write failed: %s", path, strerror(errno));
    free(label);
    free(margin);
    return rc;
}

static int pf_export(const lra_task *t, lra_split split, const char *dir, int64_t n, lra_progress_fn progress,
                     void *progress_ctx, lra_err *err) {
    int64_t size = t->info.split_size[split];
    if (n < 0) n = size;
    if (n > size)
        return lra_err_set(err, LRA_EINVAL, "pathfinder: cannot export %lld examples: split %s has %lld",
                           (long long)n, lra_split_names[split], (long long)size);
    char path[4096];
    snprintf(path, sizeof path, "%s/metadata", dir);
    int rc = pf_mkdirs(path, err);
    for (int64_t start = 0; !rc && start < n; start += PF_EXPORT_BATCH) {
        int count = (int)(n - start < PF_EXPORT_BATCH ? n - start : PF_EXPORT_BATCH);
        rc = pf_export_batch(t, split, dir, (int)(start / PF_EXPORT_BATCH), start, count, err);
        if (!rc && progress) progress(progress_ctx, start + count, n);
    }
    return rc;
}

const lra_task_vtable lra_task_pathfinder = {
    .name = "pathfinder",
    .summary = "Pathfinder / Path-X (resolution=128): are the two dots joined by one dashed path? "
               "side x side gray pixels, 2 classes",
    .open = pf_open,
    .example = pf_example,
    .close = pf_close,
    .export_split = pf_export,
    .describe = NULL,
};
