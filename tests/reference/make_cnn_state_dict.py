"""Writes a small PyTorch CNN's state_dict as safetensors, with inputs and outputs, for
tests/nn/test_conv_layers.cpp: tapegrad loads the file into the same architecture and must
reproduce PyTorch's outputs (eval and training mode) and running statistics.

    /usr/bin/python3 tests/reference/make_cnn_state_dict.py tests/reference
    /usr/bin/python3 tests/reference/make_cnn_state_dict.py --check FILE.safetensors

The first form writes cnn_state_dict.safetensors (float64 weights and buffers, written here
in plain Python, not with the safetensors package) and cnn_outputs.json. The second loads a
state_dict written by tapegrad (tg::io::save_parameters) into the PyTorch model and checks
that it gives the outputs recorded in cnn_outputs.json (the reverse direction).
"""
import json
import os
import struct
import sys

import torch
from torch import nn

from reference_files import DTYPES, listed, write_safetensors

NAMES = {v: k for k, v in DTYPES.items()}


def model():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),                       # 0
        nn.BatchNorm2d(4),                                   # 1
        nn.ReLU(),                                           # 2
        nn.MaxPool2d(2),                                     # 3
        nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False),  # 4
        nn.BatchNorm2d(6),                                   # 5
        nn.LeakyReLU(0.1),                                   # 6
        nn.AvgPool2d(2),                                     # 7
        nn.Flatten(),                                        # 8
        nn.Linear(24, 5),                                    # 9
    ).double()


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        dtype = NAMES[e["dtype"]]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(e["shape"])
    return out


def main():
    if sys.argv[1] == "--check":
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "cnn_outputs.json")) as f:
            ref = json.load(f)
        m = model()
        m.load_state_dict(read_safetensors(sys.argv[2]))
        m.eval()
        x = torch.tensor(ref["input"]["values"], dtype=torch.float64).reshape(ref["input"]["shape"])
        want = torch.tensor(ref["eval_output"]["values"], dtype=torch.float64).reshape(ref["eval_output"]["shape"])
        with torch.no_grad():
            got = m(x)
        err = ((got - want).abs() / want.abs().clamp_min(1e-300)).max().item()
        print(f"PyTorch loaded {sys.argv[2]}: worst relative difference of the eval outputs {err:.3g}")
        sys.exit(0 if err <= 1e-12 else 1)

    out_dir = sys.argv[1]
    torch.manual_seed(20261201)
    m = model()
    # A few training steps' worth of batches, so the running statistics are not their
    # initial values (the weights keep PyTorch's default initialisation).
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(4, 2, 8, 8, dtype=torch.float64) * 1.5 + 0.3)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    write_safetensors(os.path.join(out_dir, "cnn_state_dict.safetensors"), state)

    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    m.eval()
    with torch.no_grad():
        eval_out = m(x)
    m.train()
    with torch.no_grad():
        train_out = m(x)
    after = m.state_dict()
    ref = {
        "input": listed(x),
        "eval_output": listed(eval_out),
        "train_output": listed(train_out),
        "after_train": {k: listed(after[k].double()) for k in after if "running" in k or "num_batches" in k},
        "keys": list(state.keys()),
    }
    with open(os.path.join(out_dir, "cnn_outputs.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print("wrote", len(state), "tensors; eval output", list(eval_out.shape))


if __name__ == "__main__":
    main()
