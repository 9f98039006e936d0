// pngio.c: 8-bit grayscale PNG read/write through libpng (see pngio.h).
//
// libpng reports errors by calling an error function that must not return;
// ours stores the message and longjmps back to a setjmp placed in a small
// function whose whole state lives in a struct outside it (no local is
// modified between setjmp and longjmp, so nothing is clobbered). The caller
// then frees what was allocated and returns an lra_err naming the file.
#include "pngio.h"

#include <png.h>   // libpng

#include <errno.h>
#include <setjmp.h>
#include <string.h>

typedef struct {
    jmp_buf jump;
    char    msg[200];
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg ? msg : "unknown error");
    longjmp(ctx->jump, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;  // benign (e.g. unknown ancillary chunks): ignored
}

// ---- write ---------------------------------------------------------------------

typedef struct {
    png_structp    png;
    png_infop      info;
    FILE          *file;
    const uint8_t *pixels;   // (height, width)
    int            width, height;
} png_write_state;

static int png_write_body(png_write_state *s, png_ctx *ctx) {
    if (setjmp(ctx->jump)) return 0;
    png_init_io(s->png, s->file);
    png_set_IHDR(s->png, s->info, (png_uint_32)s->width, (png_uint_32)s->height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(s->png, s->info);
    for (int y = 0; y < s->height; y++) png_write_row(s->png, (png_const_bytep)(s->pixels + (size_t)y * s->width));
    png_write_end(s->png, NULL);
    return 1;
}

int lra_png_write_gray(const char *path, const uint8_t *pixels, int width, int height, lra_err *err) {
    if (width <= 0 || height <= 0 || (int64_t)width * height > (1 << 28))
        return lra_err_set(err, LRA_EINVAL, "%s: cannot write a %dx%d image", path, width, height);
    FILE *f = fopen(path, "wb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", path, strerror(errno));
    png_ctx ctx = { .msg = "" };
    png_write_state s = { .file = f, .pixels = pixels, .width = width, .height = height };
    s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    s.info = s.png ? png_create_info_struct(s.png) : NULL;
    int created = s.png && s.info;
    int ok = created && png_write_body(&s, &ctx);
    png_destroy_write_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL);
    int closed = fclose(f) == 0;
    if (!created) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory for libpng", path);
    if (!ok) return lra_err_set(err, LRA_EIO, "%s: PNG write error: %s", path, ctx.msg);
    if (!closed) return lra_err_set(err, LRA_EIO, "%s: write failed: %s", path, strerror(errno));
    return LRA_OK;
}

// ---- read ----------------------------------------------------------------------

typedef struct {
    png_structp png;
    png_infop   info;
    FILE       *file;
    uint8_t    *pixels;  // (height, width), malloc'd
    png_bytep  *rows;    // (height)
    png_uint_32 width, height;
    int         bit_depth, color_type, too_large;
} png_read_state;

static int png_read_body(png_read_state *s, png_ctx *ctx) {
    if (setjmp(ctx->jump)) return 0;
    png_init_io(s->png, s->file);
    png_set_sig_bytes(s->png, 8);
    png_set_user_limits(s->png, 1u << 16, 1u << 16);
    png_read_info(s->png, s->info);
    png_get_IHDR(s->png, s->info, &s->width, &s->height, &s->bit_depth, &s->color_type, NULL, NULL, NULL);
    if ((uint64_t)s->width * s->height > (1u << 28)) {
        s->too_large = 1;
        return 0;
    }
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
    if (s->color_type == PNG_COLOR_TYPE_GRAY && s->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    if (s->bit_depth == 16) png_set_scale_16(s->png);
    if (s->color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(s->png);
    if (s->color_type & PNG_COLOR_MASK_COLOR) png_set_rgb_to_gray_fixed(s->png, 1, 29900, 58700);
    png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    if (png_get_rowbytes(s->png, s->info) != s->width)
        png_error(s->png, "unexpected row size after conversion to gray");
    s->pixels = malloc((size_t)s->width * s->height);
    s->rows = malloc(sizeof *s->rows * s->height);
    if (!s->pixels || !s->rows) png_error(s->png, "out of memory");
    for (png_uint_32 y = 0; y < s->height; y++) s->rows[y] = s->pixels + (size_t)y * s->width;
    png_read_image(s->png, s->rows);
    png_read_end(s->png, NULL);
    return 1;
}

int lra_png_read_gray(const char *path, uint8_t **pixels, int *width, int *height, lra_err *err) {
    *pixels = NULL;
    *width = *height = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    size_t n_sig = fread(sig, 1, sizeof sig, f);
    if (n_sig == 0) {
        fclose(f);
        return lra_err_set(err, LRA_EIO, "%s: empty file (expected a PNG image)", path);
    }
    if (n_sig < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(f);
        return lra_err_set(err, LRA_EIO, "%s: not a PNG file (bad signature)", path);
    }
    png_ctx ctx = { .msg = "" };
    png_read_state s = { .file = f };
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    s.info = s.png ? png_create_info_struct(s.png) : NULL;
    int created = s.png && s.info;
    int ok = created && png_read_body(&s, &ctx);
    png_destroy_read_struct(s.png ? &s.png : NULL, s.info ? &s.info : NULL, NULL);
    fclose(f);
    free(s.rows);
    if (!ok) {
        free(s.pixels);
        if (!created) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory for libpng", path);
        if (s.too_large)
            return lra_err_set(err, LRA_EIO, "%s: image too large (%ux%u)", path, (unsigned)s.width,
                               (unsigned)s.height);
        return lra_err_set(err, LRA_EIO, "%s: corrupt PNG: %s", path, ctx.msg);
    }
    *pixels = s.pixels;
    *width = (int)s.width;
    *height = (int)s.height;
    return LRA_OK;
}
