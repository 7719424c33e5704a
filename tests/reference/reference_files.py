"""What the reference generators share: tensors as JSON lists and state_dicts as safetensors files.
Imported by the make_*.py scripts beside it (they run from this folder's copy of Python's path)."""
import json
import struct

import torch

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}


def listed(t):
    """A tensor as {"shape": [...], "values": [...]} (values as floats, row-major)."""
    return {"shape": list(t.shape), "values": [float(v) for v in t.detach().flatten().tolist()]}


def write_safetensors(path, tensors):
    """The tensors (name -> tensor) as a safetensors file, in the given order."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
