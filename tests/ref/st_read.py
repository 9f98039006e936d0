"""st_read.py: loads a safetensors file into numpy arrays with the standard
library and numpy only (no safetensors package), using the checks of
read_safetensors.py (header length, JSON header, contiguous data offsets).

    tensors, metadata = load(path)   # dict name -> np.ndarray, dict str -> str
"""
import numpy as np

from read_safetensors import DTYPES, check_layout, read_header


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    header, data = read_header(path, blob)
    metadata = header.pop("__metadata__", {})
    check_layout(path, header, len(data))
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(tuple(info["shape"])).copy()
    return tensors, metadata
