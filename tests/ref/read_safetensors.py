#!/usr/bin/env python3
"""read_safetensors.py: an independent reader of safetensors files, to check
lra's writer (models/safetensors.c) against the format, not against itself.

Uses only the standard library and numpy (no safetensors package):
  8-byte little-endian header length N, N bytes of JSON, then the data buffer.
Prints the metadata, then for each tensor (in data order) its name, dtype,
shape, byte range and checksums: the sum of its elements as float64 and the
CRC-32 of its raw bytes. Exits 1 with a message when the file breaks the format.

Usage: /usr/bin/python3 tests/ref/read_safetensors.py FILE.safetensors
"""
import json
import struct
import sys
import zlib

import numpy as np

DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
    "I64": np.int64, "U64": np.uint64, "F64": np.float64,
}
MAX_HEADER = 100_000_000


def fail(path, what):
    sys.exit(f"{path}: {what}")


def read_header(path, blob):
    if len(blob) < 8:
        fail(path, "truncated file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER or 8 + n > len(blob):
        fail(path, f"bad header length {n}")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        fail(path, "header is not an object")
    return header, blob[8 + n:]


def check_layout(path, tensors, data_len):
    end = 0
    for name, info in sorted(tensors.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, stop = info["data_offsets"]
        if begin != end or stop < begin:
            fail(path, f"tensor {name!r}: offsets {info['data_offsets']} not contiguous")
        end = stop
    if end != data_len:
        fail(path, f"data buffer of {data_len} bytes, tensors cover {end}")


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        blob = f.read()
    header, data = read_header(path, blob)
    metadata = header.pop("__metadata__", {})
    for key in sorted(metadata):
        print(f"metadata {key!r} = {metadata[key]!r}")
    check_layout(path, header, len(data))
    for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        shape = tuple(info["shape"])
        raw = data[begin:end]
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)  # fails on a shape/size mismatch
        total = float(array.astype(np.float64).sum()) if array.size else 0.0
        print(f"{name!r:24} {info['dtype']:4} shape={list(shape)!s:8} bytes=[{begin},{end}) "
              f"sum={total!r} crc32={zlib.crc32(raw):08x}")
    print(f"{len(header)} tensors, {len(data)} data bytes, header {len(blob) - len(data) - 8} bytes")


if __name__ == "__main__":
    main()
