// safetensors.h: a strict reader and writer of the safetensors checkpoint
// format (https://github.com/huggingface/safetensors), the files that PyTorch
// users load with one call (safetensors.torch.load_file).
//
// File layout:
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    the header: UTF-8 JSON, one object
//                         { "__metadata__": { "key": "value", ... },      (optional, strings only)
//                           "name": { "dtype": "F32",
//                                     "shape": [2, 3],
//                                     "data_offsets": [begin, end] }, ... }
//                       possibly followed by spaces (padding to 8-byte alignment)
//   bytes [8 + N, EOF)  the data buffer: each tensor's elements little-endian,
//                       row-major, at [8 + N + begin, 8 + N + end)
// The offsets of all tensors, sorted, are contiguous from 0 and cover the data
// buffer exactly: no gaps, no overlaps, no trailing bytes; end - begin equals
// prod(shape) * size(dtype) (a 0-d tensor has shape [] and one element).
//
// Reader (lra_st_open): reads and validates the whole header once; accepts
// exactly the JSON that the format needs (objects, arrays, strings with every
// escape incl. \uXXXX surrogate pairs, non-negative integers, JSON
// whitespace) and rejects everything else: null, true, false, negative or
// fractional numbers, unknown keys in a tensor entry, duplicate keys or names,
// invalid UTF-8, headers over LRA_ST_MAX_HEADER bytes (the reference
// implementation's limit). Tensor data is read on demand with pread into a
// caller buffer. Every error is returned with an lra_err whose message starts
// with the file's path; JSON errors give "header byte k", k counted from the
// first byte of the file. Malformed files are LRA_EIO, allocation failures
// LRA_ENOMEM, bad arguments LRA_EINVAL; nothing exits or aborts.
//
// Writer (lra_st_writer_*): collects tensors (by reference, not copied) and
// metadata, then writes the file atomically (a temporary file in the same
// directory, fsync, rename). Layout written, as the reference writer does:
// "__metadata__" first (keys sorted bytewise), then the tensors ordered by
// dtype size descending, then name (bytewise), both in the header and in the
// data buffer, so every tensor is naturally aligned in the file; the header is
// padded with spaces to a multiple of 8 bytes; no whitespace otherwise.
//
// Both sides assume a little-endian host (checked at compile time).
#ifndef LRA_SAFETENSORS_H
#define LRA_SAFETENSORS_H

#include "../backends/core.h"

#define LRA_ST_MAX_HEADER 100000000  // bytes of JSON, as in safetensors (MAX_HEADER_SIZE)

// Element types with a whole number of bytes. The sub-byte types of recent
// safetensors versions (F4, F6_*) are rejected as unknown.
typedef enum {
    LRA_ST_BOOL = 0, LRA_ST_U8, LRA_ST_I8, LRA_ST_F8_E5M2, LRA_ST_F8_E4M3,
    LRA_ST_I16, LRA_ST_U16, LRA_ST_F16, LRA_ST_BF16,
    LRA_ST_I32, LRA_ST_U32, LRA_ST_F32,
    LRA_ST_I64, LRA_ST_U64, LRA_ST_F64,
    LRA_ST_DTYPE_COUNT
} lra_st_dtype;

// the dtype of lra_real tensors in this build
#ifdef LRA_F64
#define LRA_ST_REAL LRA_ST_F64
#else
#define LRA_ST_REAL LRA_ST_F32
#endif

const char *lra_st_dtype_name(lra_st_dtype dtype);   // "F32"; "?" when out of range
int64_t     lra_st_dtype_size(lra_st_dtype dtype);   // bytes per element; 0 when out of range
// dtype by its exact name ("F32"); -1 when unknown
int         lra_st_dtype_from_name(const char *name);

// ---- reader ----------------------------------------------------------------------

typedef struct {
    const char     *name;     // UTF-8, NUL-terminated (a name may not contain U+0000)
    lra_st_dtype    dtype;
    int             ndim;     // 0 for a scalar
    const int64_t  *shape;    // ndim entries, each >= 0
    int64_t         numel;    // prod(shape), 1 for a scalar
    int64_t         nbytes;   // numel * lra_st_dtype_size(dtype)
    int64_t         offset;   // absolute file offset of the first byte
} lra_st_tensor;

typedef struct lra_st_file lra_st_file;

// Opens path and validates header and layout; *out is NULL on error.
int  lra_st_open(const char *path, lra_st_file **out, lra_err *err);
void lra_st_close(lra_st_file *file);  // NULL is fine

int64_t lra_st_count(const lra_st_file *file);
// Tensors in bytewise name order, i in [0, count); NULL when out of range.
const lra_st_tensor *lra_st_tensor_at(const lra_st_file *file, int64_t i);
// The tensor called name, or NULL.
const lra_st_tensor *lra_st_find(const lra_st_file *file, const char *name);
// Copies the bytes of tensor name into buf (cap bytes): LRA_EINVAL when there
// is no such tensor or cap < nbytes, LRA_EIO when reading fails.
int lra_st_read(const lra_st_file *file, const char *name, void *buf, int64_t cap, lra_err *err);

int64_t lra_st_metadata_count(const lra_st_file *file);
// The value of metadata key, or NULL.
const char *lra_st_metadata(const lra_st_file *file, const char *key);
// Entry i in bytewise key order; LRA_EINVAL when out of range.
int lra_st_metadata_at(const lra_st_file *file, int64_t i, const char **key, const char **value);

// ---- writer ----------------------------------------------------------------------

typedef struct lra_st_writer lra_st_writer;

int  lra_st_writer_new(lra_st_writer **out, lra_err *err);
void lra_st_writer_free(lra_st_writer *w);  // NULL is fine
// Adds a tensor. name (valid UTF-8, not "__metadata__", not already added) and
// shape are copied; data is not: it must stay valid until lra_st_writer_write.
// nbytes must equal prod(shape) * dtype size; data may be NULL when nbytes is 0.
int lra_st_writer_add(lra_st_writer *w, const char *name, lra_st_dtype dtype, int ndim,
                      const int64_t *shape, const void *data, int64_t nbytes, lra_err *err);
// Adds a metadata entry (both copied, valid UTF-8, key not already added).
int lra_st_writer_metadata(lra_st_writer *w, const char *key, const char *value, lra_err *err);
// Writes everything added so far to path, atomically; may be called again.
int lra_st_writer_write(const lra_st_writer *w, const char *path, lra_err *err);

#endif // LRA_SAFETENSORS_H
