#!/usr/bin/python3
"""PyTorch's values for every registered op's samples: forward, first and second order.

Reads the samples that `dump_op_samples` (built with the tests) writes: for each op and
sample, the float64 inputs and the same call as a PyTorch expression over x[0], x[1], ...
For each one it records, in float64:
  y   = the call's value
  g_i = d(<y, v>)/d x_i                 (a vector-Jacobian product, v fixed per sample)
  h_i = d(sum_j <g_j, w_j>)/d x_i       (a second-order product, w fixed per sample)
with v and w drawn from a generator seeded by the op's and the sample's names, and writes
them with the inputs to op_reference.json, which tests/ops/test_op_reference.cpp replays.

    scripts/update-op-reference          (builds dump_op_samples, runs both, writes the JSON)
    /usr/bin/python3 tests/reference/make_op_reference.py SAMPLES.json OUT.json

Needs Debian's PyTorch (scripts/install-deps --torch); the tests only read the JSON.
"""
import json
import math
import sys
import zlib

import torch


def tensor(entry):
    return torch.tensor(entry["data"], dtype=torch.float64).reshape(entry["shape"])


def number(v):
    # JSON has no NaN or infinity; the reader maps these strings back.
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def plain(t):
    t = t.detach().to(torch.float64)
    if t._is_zerotensor():  # some second-order formulas return a symbolic zero without storage
        t = torch.zeros(t.shape, dtype=torch.float64)
    t = t.contiguous()
    return {"shape": list(t.shape), "data": [number(float(v)) for v in t.reshape(-1).tolist()]}


def drawn(generator, like):
    return torch.rand(like.shape, generator=generator, dtype=torch.float64) * 2 - 1


def reference(op, sample):
    x = [tensor(e).requires_grad_(True) for e in sample["inputs"]]
    y = eval(sample["torch"], {"torch": torch, "x": x})  # noqa: S307 (our own expressions)
    generator = torch.Generator().manual_seed(zlib.crc32(f"{op}/{sample['label']}".encode()))
    v = drawn(generator, y)
    w = [drawn(generator, xi) for xi in x]
    g = torch.autograd.grad(y, x, v, create_graph=True, allow_unused=True)
    g = [gi if gi is not None else torch.zeros_like(xi) for gi, xi in zip(g, x)]
    s = sum((gi * wi).sum() for gi, wi in zip(g, w))
    if s.requires_grad:
        h = torch.autograd.grad(s, x, allow_unused=True)
        h = [hi if hi is not None else torch.zeros_like(xi) for hi, xi in zip(h, x)]
    else:
        h = [torch.zeros_like(xi) for xi in x]
    return {
        "torch": sample["torch"],
        "inputs": sample["inputs"],
        "v": plain(v),
        "w": [plain(wi) for wi in w],
        "y": plain(y),
        "g": [plain(gi) for gi in g],
        "h": [plain(hi) for hi in h],
    }


def main():
    samples = json.load(open(sys.argv[1]))
    cases = {}
    for entry in samples["samples"]:
        try:
            cases.setdefault(entry["op"], {})[entry["label"]] = reference(entry["op"], entry)
        except Exception as e:
            sys.exit(f"make_op_reference: {entry['op']} '{entry['label']}': {entry['torch']}: {e}")
    out = {"torch_version": torch.__version__, "dtype": "float64", "ops": cases}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"make_op_reference: {sum(len(c) for c in cases.values())} samples of {len(cases)} ops "
          f"(torch {torch.__version__}) -> {sys.argv[2]}")


if __name__ == "__main__":
    main()
