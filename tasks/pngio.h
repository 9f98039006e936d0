// pngio.h: 8-bit grayscale PNG files through libpng, for the image tasks
// (Pathfinder/Path-X release files, `lra data show`). Errors name the file and
// carry libpng's own message; a truncated or corrupt file is an error, never a
// crash.
//
// Not to be confused with libpng's <png.h>: this header is included as
// "tasks/pngio.h", libpng's as <png.h>.
#ifndef LRA_TASKS_PNGIO_H
#define LRA_TASKS_PNGIO_H

#include "../backends/core.h"

// Writes pixels (height, width) row-major as an 8-bit grayscale PNG.
int lra_png_write_gray(const char *path, const uint8_t *pixels, int width, int height, lra_err *err);

// Reads any PNG as 8-bit grayscale: palette and low bit depths are expanded,
// 16-bit samples scaled to 8 bits, alpha dropped, RGB converted with the
// Rec. 601 weights 0.299/0.587/0.114 (what TF decode_png(channels=1) and PIL
// convert("L") use). *pixels (height, width) is malloc'd; the caller frees it.
// Images larger than 2^28 pixels are refused.
int lra_png_read_gray(const char *path, uint8_t **pixels, int *width, int *height, lra_err *err);

#endif // LRA_TASKS_PNGIO_H
