#!/usr/bin/env python3
"""Writes optim_trajectories.json: PyTorch (float64) training trajectories that the C++
tests replay to check that tapegrad's optimisers, schedules and clipping match
torch.optim step for step.

Run with Debian's python3-torch (scripts/install-deps --torch):
    /usr/bin/python3 tests/reference/make_optim_reference.py
Each case: a network (weights stored [in, out], as tapegrad's Dense), its initial weights,
the data, the optimiser and schedule settings, the loss at every step and the final
parameters.
"""
import json
import os

import torch

torch.set_default_dtype(torch.float64)

ROWS = [[2.7810836, 2.550537003], [1.465489372, 2.362125076], [3.396561688, 4.400293529],
        [1.38807019, 1.850220317], [3.06407232, 3.005305973], [7.627531214, 2.759262235],
        [5.332441248, 2.088626775], [6.922596716, 1.77106367], [8.675418651, -0.242068655],
        [7.673756466, 3.508563011]]
CLASSES = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def tutorial_net(gen):
    """2-3-2, sigmoid hidden and output, MSE on one-hot targets, one row per step."""
    sizes = [2, 3, 2]
    weights = []
    for i in range(2):
        weights.append(torch.rand(sizes[i], sizes[i + 1], generator=gen))
        weights.append(torch.rand(sizes[i + 1], generator=gen))
    x = torch.tensor(ROWS)
    t = torch.zeros(10, 2)
    t[torch.arange(10), torch.tensor(CLASSES)] = 1.0
    batches = [(x[i:i + 1], t[i:i + 1]) for i in range(10)] * 2  # two epochs, online

    def loss_fn(params, xb, tb):
        h = torch.sigmoid(xb @ params[0] + params[1])
        y = torch.sigmoid(h @ params[2] + params[3])
        return torch.nn.functional.mse_loss(y, tb)

    net = {"name": "tutorial", "sizes": sizes, "activations": ["sigmoid", "sigmoid"], "loss": "mse_loss"}
    data = {"x": [b[0].tolist() for b in batches], "t": [b[1].tolist() for b in batches]}
    return net, weights, data, batches, loss_fn


def wide_net(gen):
    """4-16-8-3, tanh then relu hidden, linear output, cross-entropy, full batch of 12."""
    sizes = [4, 16, 8, 3]
    weights = []
    for i in range(3):
        bound = 1.0 / sizes[i] ** 0.5
        weights.append((torch.rand(sizes[i], sizes[i + 1], generator=gen) * 2 - 1) * bound)
        weights.append((torch.rand(sizes[i + 1], generator=gen) * 2 - 1) * bound)
    x = torch.randn(12, 4, generator=gen)
    labels = torch.randint(0, 3, (12,), generator=gen)
    batches = [(x, labels)] * 25

    def loss_fn(params, xb, lb):
        h = torch.tanh(xb @ params[0] + params[1])
        h = torch.relu(h @ params[2] + params[3])
        y = h @ params[4] + params[5]
        return torch.nn.functional.cross_entropy(y, lb)

    net = {"name": "wide", "sizes": sizes, "activations": ["tanh", "relu", "none"], "loss": "cross_entropy"}
    data = {"x": [x.tolist()], "labels": [labels.tolist()], "steps": 25}
    return net, weights, data, batches, loss_fn


CONFIGS = [
    {"name": "sgd", "optimizer": "sgd", "options": {"lr": 0.5}},
    {"name": "sgd_momentum_dampening", "optimizer": "sgd", "options": {"lr": 0.1, "momentum": 0.9, "dampening": 0.2}},
    {"name": "sgd_nesterov", "optimizer": "sgd", "options": {"lr": 0.1, "momentum": 0.8, "nesterov": True}},
    {"name": "sgd_weight_decay", "optimizer": "sgd", "options": {"lr": 0.2, "momentum": 0.5, "weight_decay": 0.01}},
    {"name": "adam", "optimizer": "adam", "options": {"lr": 0.01}},
    {"name": "adam_amsgrad", "optimizer": "adam", "options": {"lr": 0.02, "amsgrad": True, "betas": [0.8, 0.99]}},
    {"name": "adam_weight_decay", "optimizer": "adam", "options": {"lr": 0.01, "weight_decay": 0.05, "eps": 1e-6}},
    {"name": "adamw", "optimizer": "adamw", "options": {"lr": 0.01, "weight_decay": 0.1}},
    {"name": "adamw_default_decay", "optimizer": "adamw", "options": {"lr": 0.005}},
    {"name": "sgd_momentum_step_lr", "optimizer": "sgd", "options": {"lr": 0.3, "momentum": 0.9},
     "schedule": {"type": "step_lr", "step_size": 4, "gamma": 0.5}},
    {"name": "adam_cosine", "optimizer": "adam", "options": {"lr": 0.05},
     "schedule": {"type": "cosine", "t_max": 10, "eta_min": 0.001}},
    {"name": "sgd_exponential", "optimizer": "sgd", "options": {"lr": 0.4},
     "schedule": {"type": "exponential", "gamma": 0.9}},
    {"name": "sgd_clip_norm", "optimizer": "sgd", "options": {"lr": 0.5, "momentum": 0.5}, "clip_norm": 0.05},
]


def make_optimizer(cfg, params):
    o = dict(cfg["options"])
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, **o)
    if "betas" in o:
        o["betas"] = tuple(o["betas"])
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(params, **o)
    return torch.optim.AdamW(params, **o)


def make_schedule(cfg, opt):
    s = cfg.get("schedule")
    if s is None:
        return None
    if s["type"] == "step_lr":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s["step_size"], gamma=s["gamma"])
    if s["type"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s["t_max"], eta_min=s["eta_min"])
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s["gamma"])


def run(make_net, cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    net, weights, data, batches, loss_fn = make_net(gen)
    initial = [w.tolist() for w in weights]
    params = [w.clone().requires_grad_(True) for w in weights]
    opt = make_optimizer(cfg, params)
    sched = make_schedule(cfg, opt)
    losses, lrs = [], []
    for xb, tb in batches:
        opt.zero_grad()
        loss = loss_fn(params, xb, tb)
        loss.backward()
        if "clip_norm" in cfg:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip_norm"])
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()  # one schedule step per training step, to exercise it in few steps
        losses.append(loss.item())
    return {"net": net, "config": cfg, "initial": initial, "data": data, "losses": losses, "lrs": lrs,
            "final": [p.detach().tolist() for p in params]}


def main():
    cases = []
    for i, cfg in enumerate(CONFIGS):
        cases.append(run(tutorial_net, cfg, 100 + i))
        cases.append(run(wide_net, cfg, 200 + i))
    out = {"torch_version": torch.__version__, "dtype": "float64", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_trajectories.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} trajectories to {path}")


if __name__ == "__main__":
    main()
