"""Writes a nested PyTorch model's names and values for tests/nn/test_modules.cpp, which builds
the same architecture from tapegrad modules (register_parameter, register_buffer,
register_module, ModuleList, Sequential) and must give the same names in the same order,
the same shapes, and, with these values loaded, the same output.

    /usr/bin/python3 tests/reference/make_module_reference.py tests/reference

writes module_state_dict.safetensors (the state_dict in float64, written in plain Python, not
with the safetensors package) and module_reference.json (the key lists in PyTorch's order,
the input and the eval-mode output). Only PyTorch's own naming and traversal decide the
names; nothing here knows tapegrad's.
"""
import json
import os
import sys

import torch
from torch import nn

from reference_files import listed, write_safetensors



class ResidualBlock(nn.Module):
    """x + fc2(gelu(fc1(norm(x)))): a GELU registered as a child that has no parameters."""

    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class Head(nn.Module):
    """A parameter of its own registered after two children: PyTorch still lists it first."""

    def __init__(self, width, classes):
        super().__init__()
        self.bn = nn.BatchNorm1d(width)
        self.proj = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, classes))
        self.scale = nn.Parameter(torch.ones(classes))

    def forward(self, h):
        return self.proj(torch.relu(self.bn(h))) * self.scale


class Net(nn.Module):
    """A rank-0 parameter and a buffer of its own, a ModuleList of blocks, a Dropout (no
    parameters) and the head."""

    def __init__(self):
        super().__init__()
        self.temperature = nn.Parameter(torch.tensor(1.5))
        self.register_buffer("offset", torch.zeros(6))
        self.stem = nn.Linear(6, 8)
        self.blocks = nn.ModuleList([ResidualBlock(8) for _ in range(2)])
        self.dropout = nn.Dropout(0.1)
        self.head = Head(8, 3)

    def forward(self, x):
        h = self.stem(x - self.offset)
        for block in self.blocks:
            h = block(h)
        return self.head(self.dropout(h)) / self.temperature


def main():
    out_dir = sys.argv[1]
    torch.manual_seed(0)
    net = Net().double()
    with torch.no_grad():
        # Values away from the defaults, so a value loaded into the wrong place shows.
        net.temperature.fill_(1.25)
        net.offset.copy_(torch.linspace(-0.5, 0.5, 6, dtype=torch.float64))
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # A few training batches give the batch norm running statistics of their own.
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(5, 6, dtype=torch.float64))
    net.eval()
    x = torch.randn(4, 6, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
    state = net.state_dict()
    write_safetensors(os.path.join(out_dir, "module_state_dict.safetensors"), state)
    ref = {
        "state_dict_keys": list(state.keys()),
        "named_parameters": [[n, list(p.shape)] for n, p in net.named_parameters()],
        "named_buffers": [[n, list(b.shape)] for n, b in net.named_buffers()],
        "named_children": [n for n, _ in net.named_children()],
        "named_modules": [[n, type(m).__name__] for n, m in net.named_modules()],
        "input": listed(x),
        "eval_output": listed(y),
    }
    with open(os.path.join(out_dir, "module_reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print("wrote module_state_dict.safetensors and module_reference.json to", out_dir)


if __name__ == "__main__":
    main()
