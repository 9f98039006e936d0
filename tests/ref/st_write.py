"""st_write.py: writes safetensors files with numpy only (no safetensors
package), for the reference scripts under tests/ref/. The layout follows the
format: 8-byte little-endian header length, JSON header ("__metadata__" of
strings, then name -> dtype/shape/data_offsets), the data buffer."""
import json
import struct

import numpy as np

_DTYPES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.int32): "I32",
           np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (F64, F32, I32, I64, U8); metadata: dict str -> str."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
