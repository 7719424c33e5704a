#!/usr/bin/python3
"""Writes batch_norm_running.json: PyTorch (float64) batch normalisation run as a layer runs
it, which tests/nn/test_norm_layers.cpp replays with tg::batch_norm to check the outputs and the
running statistics step by step.

Run with Debian's python3-torch (scripts/install-deps --torch):
    /usr/bin/python3 tests/reference/make_batch_norm_reference.py
Each case: weight, bias and the initial running statistics (PyTorch's defaults, zeros and
ones), then four calls of torch.nn.functional.batch_norm on the same running statistics:
three in training mode (momentum 0.1, each on a batch of its own), then one in evaluation
mode. For every call: its input, its output and the running statistics after it. The inputs
come from a torch.Generator with a fixed seed.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

MOMENTUM = 0.1
EPS = 1e-5
SEED = 20260501


def plain(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def case(name, shape, gen):
    channels = shape[1]
    weight = torch.rand(channels, generator=gen) + 0.5
    bias = torch.randn(channels, generator=gen)
    running_mean = torch.zeros(channels)
    running_var = torch.ones(channels)
    out = {
        "name": name,
        "momentum": MOMENTUM,
        "eps": EPS,
        "weight": plain(weight),
        "bias": plain(bias),
        "running_mean": plain(running_mean),
        "running_var": plain(running_var),
        "steps": [],
    }
    for training in (True, True, True, False):
        # Batches with an offset and a scale of their own, so that the statistics move.
        x = torch.randn(shape, generator=gen) * 1.5 + torch.rand((), generator=gen) * 2
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training, MOMENTUM, EPS)
        out["steps"].append({
            "training": training,
            "input": plain(x),
            "output": plain(y),
            "running_mean": plain(running_mean),
            "running_var": plain(running_var),
        })
    return out


def main():
    gen = torch.Generator().manual_seed(SEED)
    cases = [case("[4, 3, 2, 2]", [4, 3, 2, 2], gen), case("[6, 4]", [6, 4], gen)]
    out = {"torch_version": torch.__version__, "dtype": "float64", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_norm_running.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"make_batch_norm_reference: {len(cases)} cases (torch {torch.__version__}) -> {path}")


if __name__ == "__main__":
    main()
