"""Writes small torch.save files, and what PyTorch itself reads from them, for
tests/io/test_torch.cpp (tg::io::load_torch and save_torch); the tests need no torch.

    /usr/bin/python3 tests/reference/make_torch_files.py tests/reference/torch
    /usr/bin/python3 tests/reference/make_torch_files.py --check FILE.pt [DIR]

The first form writes into DIR:
  model.pt        a small model's state_dict: float32 and float64 parameters, batch norm
                  buffers (an int64 count)
  adam.pt         an Adam optimizer's state_dict after two steps: nested state and
                  param_groups with floats, bools, None, a tuple and a list
  views.pt        a slice, a transposed tensor, a strided slice, an expanded (stride 0)
                  tensor and two tensors sharing one storage, saved as views
  dtypes.pt       one tensor of every supported dtype, with extreme values
  empty.pt        zero-size tensors, a 0-d tensor and an empty list beside a leaf
  tensor.pt       a bare tensor (not in a dict)
  deflated.pt     model.pt with its entries deflated (PyTorch reads such archives too)
  big_endian.pt   dtypes.pt as a big-endian machine writes it (byteorder "big", swapped bytes)
  zip64.pt        model.pt with zip64 local headers (as written for large files)
  legacy.pt       the pre-1.6 format (_use_new_zipfile_serialization=False)
  forbidden.pt    a pickled function (refused: not a global weights_only allows)
  complex.pt      a complex64 tensor (a dtype tapegrad's files do not hold)
  cnn_state_dict.pt  ../cnn_state_dict.safetensors as torch.save writes it (the CNN of
                  make_cnn_state_dict.py: cnn_outputs.json holds its outputs)
  expected.json   for every file that loads: each tensor as tapegrad names it (nested keys
                  joined with "."), with dtype, shape and raw little-endian bytes (hex),
                  and every other leaf as text (Python's str/repr)

The second form checks a file tapegrad wrote (tg::io::save_torch; the test suite keeps
from_tapegrad.pt and from_tapegrad_zip64.pt, written with zip64 local headers, and requires
save_torch to write exactly those bytes): torch.load(FILE, weights_only=True) must give
exactly the tensors of dtypes.pt, empty.pt and model.pt, and the metadata the test wrote
as the attribute tapegrad_metadata (see test_torch.cpp).
"""
import collections
import io
import json
import os
import sys
import zipfile

import torch
from torch import nn

# tapegrad's names of the dtypes (its safetensors names).
DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
# The metadata the test gives save_torch for from_tapegrad.pt.
FROM_TAPEGRAD_METADATA = {"epoch": "3", "note": "written by tg::io::save_torch", "empty": ""}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def text(v):
    if isinstance(v, float):
        return repr(v)
    return str(v)


def flatten(obj, prefix, out):
    """tapegrad's view of a loaded object: tensors and leaves by dotted key."""
    if isinstance(obj, torch.Tensor):
        out["tensors"][prefix] = {"dtype": DTYPES[obj.dtype], "shape": list(obj.shape),
                                  "hex": raw_bytes(obj).hex()}
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, str(k) if prefix == "" else prefix + "." + str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, str(i) if prefix == "" else prefix + "." + str(i), out)
    else:
        out["metadata"][prefix] = text(obj)


def expected(obj):
    out = {"tensors": {}, "metadata": {}}
    flatten(obj, "", out)
    return out


def small_model():
    torch.manual_seed(20261207)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    m[3].double()
    m.train()
    with torch.no_grad():
        m[1](torch.randn(5, 4))  # running statistics away from their initial values
    return m


def adam_state():
    torch.manual_seed(20261208)
    w = nn.Parameter(torch.randn(2, 3))
    b = nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([{"params": [w]}, {"params": [b], "lr": 0.01, "amsgrad": True}],
                           lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
    for _ in range(2):
        opt.zero_grad()
        ((w @ b) ** 2).sum().backward()
        opt.step()
    return opt.state_dict()


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    shared = torch.arange(10, dtype=torch.int64)
    return {
        "slice": base[1:3, 2:5],                 # offset 8, strides (6, 1)
        "transposed": base.t(),                  # strides (1, 6)
        "stepped": base[:, ::2],                 # strides (6, 2)
        "expanded": torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).expand(2, 3),  # stride (0, 1)
        "shared_all": shared,
        "shared_tail": shared[6:],               # the same storage, offset 6
        "shared_reshaped": shared.view(2, 5).t(),
    }


def dtypes():
    out = {}
    for dtype in DTYPES:
        if dtype == torch.bool:
            t = torch.tensor([[True, False, True], [False, False, True]])
        elif dtype.is_floating_point:
            info = torch.finfo(dtype)
            t = torch.tensor([0.0, -0.0, 1.0, -2.5, info.max, info.min, info.tiny, float("inf"),
                              float("-inf"), float("nan"), 3.14159, 1e-3], dtype=dtype).reshape(3, 4)
        else:
            info = torch.iinfo(dtype)
            t = torch.tensor([info.min, info.max, 0, 1, -1 if info.min < 0 else 2, 42], dtype=dtype)
        out[str(dtype).replace("torch.", "")] = t
    return out


def empty():
    return {
        "zero": torch.zeros(0),
        "zero_rows": torch.zeros(0, 3, dtype=torch.float64),
        "middle_zero": torch.zeros(2, 0, 3, dtype=torch.int32),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "scalar_int": torch.tensor(-7),
        "nothing": [],
        "none": None,
        "flag": True,
        "name": "tapegrad",
        "count": 12,
        "big": 2 ** 62 + 3,
        "negative": -123456789012,
        "ratio": 0.1,
        "tiny": 1e-300,
        "huge": 1e300,
        "whole": 3.0,
        "floats": [1e16, 1e15, 123456.789, 1e-05, 0.0001, -0.0, float("nan"), float("-inf"), 2.0 ** -1074,
                   1.7976931348623157e308, 0.30000000000000004],
        "pair": (1, "two"),
        "nested": {"inner": {"deeper": [torch.ones(2, dtype=torch.int8)]}},
    }


def rewrite(src, dst, compression=zipfile.ZIP_STORED, force_zip64=False, transform=None):
    """Copies a zip entry by entry, as another zip writer would."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        names = zin.namelist()
        archive = names[0].split("/")[0]
        for name in names:
            data = zin.read(name)
            if transform is not None:
                data = transform(name, data)
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            with zout.open(info, "w", force_zip64=force_zip64) as f:
                f.write(data)
        if transform is not None:
            extra = transform(archive + "/byteorder", None)
            if extra is not None:
                zout.writestr(zipfile.ZipInfo(archive + "/byteorder"), extra)  # dated 1980: reproducible


def big_endian(src, dst, obj):
    """dtypes.pt as a big-endian machine writes it: every storage's elements byte-swapped."""
    sizes = {}
    with zipfile.ZipFile(src) as z:
        archive = z.namelist()[0].split("/")[0]
    # dtypes() saves one storage per tensor, keys in insertion order.
    for i, t in enumerate(obj.values()):
        sizes[f"{archive}/data/{i}"] = t.element_size()

    def transform(name, data):
        if data is None:
            return b"big"
        size = sizes.get(name)
        if size is None or size == 1:
            return data
        return b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))

    rewrite(src, dst, transform=transform)


def same(a, b):
    """Equal dtype, shape and bits (NaN included)."""
    return a.dtype == b.dtype and a.shape == b.shape and raw_bytes(a) == raw_bytes(b)


def check(path, directory):
    got = torch.load(path, weights_only=True)
    want = {}
    for name in ("dtypes.pt", "empty.pt", "model.pt"):
        flat = expected(torch.load(os.path.join(directory, name)))
        want.update({k: v for k, v in flat["tensors"].items()})
    problems = []
    if not isinstance(got, collections.OrderedDict):
        problems.append(f"loaded a {type(got).__name__}, not an OrderedDict")
    else:
        flat = expected(dict(got))
        if flat["metadata"]:
            problems.append(f"non-tensor entries {sorted(flat['metadata'])}")
        if flat["tensors"] != want:
            missing = sorted(set(want) - set(flat["tensors"]))
            extra = sorted(set(flat["tensors"]) - set(want))
            differ = sorted(k for k in want if k in flat["tensors"] and flat["tensors"][k] != want[k])
            problems.append(f"tensors differ: missing {missing}, unexpected {extra}, different {differ}")
        meta = getattr(got, "tapegrad_metadata", None)
        if meta != FROM_TAPEGRAD_METADATA:
            problems.append(f"tapegrad_metadata is {meta!r}, expected {FROM_TAPEGRAD_METADATA!r}")
        # The state_dict loads into the model it came from.
        m = small_model()
        m.load_state_dict(collections.OrderedDict((k, got[k]) for k in m.state_dict()))
    if problems:
        print(f"torch.load({path}, weights_only=True): " + "; ".join(problems))
        sys.exit(1)
    print(f"torch {torch.__version__}: torch.load({path}, weights_only=True) gives the expected "
          f"{len(want)} tensors and metadata; the model's tensors load into the model")


def main():
    if sys.argv[1] == "--check":
        here = os.path.dirname(os.path.abspath(__file__))
        check(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "torch"))
        return

    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    def path(name):
        return os.path.join(out, name)

    ref = {}
    objects = {
        "model.pt": small_model().state_dict(),
        "adam.pt": adam_state(),
        "views.pt": views(),
        "dtypes.pt": dtypes(),
        "empty.pt": empty(),
        "tensor.pt": torch.arange(6, dtype=torch.float64).reshape(2, 3).t(),
    }
    for name, obj in objects.items():
        torch.save(obj, path(name))
        loaded = torch.load(path(name), weights_only=name != "adam.pt" and name != "empty.pt")
        ref[name] = expected(loaded)
    # views.pt keeps its views: the storages are shared, not copied.
    with zipfile.ZipFile(path("views.pt")) as z:
        storages = [n for n in z.namelist() if "/data/" in n]
        assert len(storages) == 3, storages

    rewrite(path("model.pt"), path("deflated.pt"), compression=zipfile.ZIP_DEFLATED)
    rewrite(path("model.pt"), path("zip64.pt"), force_zip64=True)
    for name in ("deflated.pt", "zip64.pt"):
        loaded = torch.load(path(name), weights_only=True)
        ref[name] = expected(loaded)
        assert ref[name] == ref["model.pt"], name
    big_endian(path("dtypes.pt"), path("big_endian.pt"), objects["dtypes.pt"])
    ref["big_endian.pt"] = ref["dtypes.pt"]

    torch.save({"w": torch.ones(2)}, path("legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(2), "hook": print}, path("forbidden.pt"))
    torch.save({"z": torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)}, path("complex.pt"))

    # The CNN of make_cnn_state_dict.py, with the weights of cnn_state_dict.safetensors.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import make_cnn_state_dict as cnn
    m = cnn.model()
    m.load_state_dict(cnn.read_safetensors(os.path.join(here, "cnn_state_dict.safetensors")))
    torch.save(m.state_dict(), path("cnn_state_dict.pt"))
    with open(os.path.join(here, "cnn_outputs.json")) as f:
        outputs = json.load(f)
    m2 = cnn.model()
    m2.load_state_dict(torch.load(path("cnn_state_dict.pt"), weights_only=True))
    m2.eval()
    x = torch.tensor(outputs["input"]["values"], dtype=torch.float64).reshape(outputs["input"]["shape"])
    with torch.no_grad():
        got = m2(x).flatten().tolist()
    assert got == outputs["eval_output"]["values"], "the .pt CNN does not give cnn_outputs.json's outputs"
    ref["cnn_state_dict.pt"] = expected(torch.load(path("cnn_state_dict.pt"), weights_only=True))

    with open(path("expected.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")
    sizes = {n: os.path.getsize(path(n)) for n in sorted(os.listdir(out))}
    print(f"torch {torch.__version__}: wrote", ", ".join(f"{n} ({s} bytes)" for n, s in sizes.items()))


if __name__ == "__main__":
    main()
