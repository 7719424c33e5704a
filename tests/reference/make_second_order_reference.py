#!/usr/bin/env python3
"""Writes second_order.json: PyTorch (float64) second- and third-order derivatives that
tests/autograd/test_second_order_reference.cpp replays with tapegrad's grad(create_graph) and its
functional transforms (jacobian, hessian, hvp, vjp, jvp), to 1e-10 relative.

Run with Debian's python3-torch (scripts/install-deps --torch):
    /usr/bin/python3 tests/reference/make_second_order_reference.py
Each case under "cases" is named and holds its "inputs" (every number the C++ side needs,
so it never draws its own) and its "outputs". An array is stored as
{"shape": [...], "data": [row-major values]}; a scalar has shape []. Weights are stored
[in, out], so linear(x, w, b) = x @ w + b as in tapegrad.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def arr(t):
    t = torch.as_tensor(t).detach()
    return {"shape": list(t.shape), "data": t.reshape(-1).tolist()}


def uniform(gen, shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=gen) * (hi - lo) + lo


def linear(x, w, b):
    return x @ w + b


def gradient_penalty():
    """WGAN-GP: total = mean(D(x)) + 10 mean((|dD/dx|_row - 1)^2), differentiated for the weights."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=gen)
    w1, b1 = uniform(gen, (3, 5)), uniform(gen, (5,), -0.5, 0.5)
    w2, b2 = uniform(gen, (5, 1)), uniform(gen, (1,), -0.5, 0.5)
    inputs = {"x": arr(x), "w1": arr(w1), "b1": arr(b1), "w2": arr(w2), "b2": arr(b2), "lambda": 10.0}

    xr = x.clone().requires_grad_(True)
    params = [t.clone().requires_grad_(True) for t in (w1, b1, w2, b2)]
    d = linear(torch.tanh(linear(xr, params[0], params[1])), params[2], params[3])
    g = torch.autograd.grad(d.sum(), xr, create_graph=True)[0]
    norms = torch.sqrt((g * g).sum(dim=1))
    penalty = ((norms - 1) ** 2).mean()
    total = d.mean() + 10.0 * penalty
    grads = torch.autograd.grad(total, params + [xr])
    outputs = {"critic": arr(d), "grad_x": arr(g), "norms": arr(norms), "penalty": arr(penalty),
               "total": arr(total), "d_total_d_w1": arr(grads[0]), "d_total_d_b1": arr(grads[1]),
               "d_total_d_w2": arr(grads[2]), "d_total_d_b2": arr(grads[3]), "d_total_d_x": arr(grads[4])}
    return {"inputs": inputs, "outputs": outputs}


def mlp_hvp(activation, seed):
    """MLP 6-5-3 with cross-entropy; the Hessian (over all four parameters) times a direction v."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        x = torch.randn(4, 6, generator=gen)
        w1, b1 = uniform(gen, (6, 5)), uniform(gen, (5,), -0.5, 0.5)
        w2, b2 = uniform(gen, (5, 3)), uniform(gen, (3,), -0.5, 0.5)
        pre = linear(x, w1, b1)
        # relu has a kink at 0: keep every pre-activation clear of it (draw again otherwise).
        if activation != "relu" or pre.abs().min().item() > 1e-3:
            break
    labels = torch.randint(0, 3, (4,), generator=gen)
    v = [torch.randn(*t.shape, generator=gen) for t in (w1, b1, w2, b2)]
    names = ["w1", "b1", "w2", "b2"]
    inputs = {"activation": activation, "x": arr(x), "labels": labels.tolist()}
    for n, t in zip(names, (w1, b1, w2, b2)):
        inputs[n] = arr(t)
    for n, t in zip(names, v):
        inputs["v_" + n] = arr(t)

    act = torch.tanh if activation == "tanh" else torch.relu
    params = [t.clone().requires_grad_(True) for t in (w1, b1, w2, b2)]
    logits = linear(act(linear(x, params[0], params[1])), params[2], params[3])
    loss = F.cross_entropy(logits, labels)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    dot = sum((g * d).sum() for g, d in zip(grads, v))
    hv = torch.autograd.grad(dot, params)
    outputs = {"loss": arr(loss)}
    if activation == "relu":
        outputs["min_abs_preactivation"] = pre.abs().min().item()
    for n, g in zip(names, grads):
        outputs["grad_" + n] = arr(g)
    for n, h in zip(names, hv):
        outputs["hv_" + n] = arr(h)
    return {"inputs": inputs, "outputs": outputs}


def third_derivative():
    """An elementwise f on positive x: the first, second (diagonal) and third derivatives."""
    x = torch.tensor([0.35, 0.8, 1.25, 1.9, 2.6])

    def f(t):
        return (torch.tanh(t) * torch.exp(t) + torch.sigmoid(t) ** 2 + torch.log(t) * torch.sqrt(t) + t ** 2.5).sum()

    xr = x.clone().requires_grad_(True)
    y = f(xr)
    d1 = torch.autograd.grad(y, xr, create_graph=True)[0]
    d2 = torch.autograd.grad(d1.sum(), xr, create_graph=True)[0]
    d3 = torch.autograd.grad(d2.sum(), xr)[0]
    return {"inputs": {"x": arr(x)},
            "outputs": {"f": arr(y), "d1": arr(d1), "d2": arr(d2), "d3": arr(d3)}}


def softmax_jacobian():
    gen = torch.Generator().manual_seed(3)
    x1 = torch.randn(4, generator=gen)
    x2 = torch.randn(2, 3, generator=gen)
    j1 = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=0), x1)
    j2 = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, dim=1), x2)
    return {"inputs": {"x_vector": arr(x1), "x_matrix": arr(x2)},
            "outputs": {"jacobian_vector_dim0": arr(j1), "jacobian_matrix_dim1": arr(j2)}}


def hessian_and_hvp():
    """f(x) = sum(log_softmax(x[1,4] @ W, dim=1) * c) + sum(x^3) / 3: its Hessian and H v."""
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(4, 3, generator=gen)
    c = torch.randn(1, 3, generator=gen)
    x = torch.randn(4, generator=gen)
    v = torch.randn(4, generator=gen)

    def f(t):
        return (torch.log_softmax(t.reshape(1, 4) @ w, dim=1) * c).sum() + (t ** 3).sum() / 3

    h = torch.autograd.functional.hessian(f, x)
    value, hv = torch.autograd.functional.hvp(f, x, v)
    return {"inputs": {"w": arr(w), "c": arr(c), "x": arr(x), "v": arr(v)},
            "outputs": {"f": arr(value), "hessian": arr(h), "hvp": arr(hv)}}


def jvp_and_vjp():
    """f(x) = 2 tanh(x[1,4] @ W): J v and u^T J."""
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(4, 3, generator=gen)
    x = torch.randn(4, generator=gen)
    v = torch.randn(4, generator=gen)
    u = torch.randn(1, 3, generator=gen)

    def f(t):
        return torch.tanh(t.reshape(1, 4) @ w) * 2

    value, jv = torch.autograd.functional.jvp(f, x, v)
    _, uj = torch.autograd.functional.vjp(f, x, u)
    return {"inputs": {"w": arr(w), "x": arr(x), "v": arr(v), "u": arr(u)},
            "outputs": {"f": arr(value), "jvp": arr(jv), "vjp": arr(uj)}}


def main():
    cases = {
        "gradient_penalty": gradient_penalty(),
        "mlp_cross_entropy_hvp": mlp_hvp("tanh", 2),
        "mlp_relu_hvp": mlp_hvp("relu", 12),
        "third_derivative": third_derivative(),
        "softmax_jacobian": softmax_jacobian(),
        "hessian_and_hvp": hessian_and_hvp(),
        "jvp_and_vjp": jvp_and_vjp(),
    }
    out = {"torch_version": torch.__version__, "dtype": "float64", "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "second_order.json")
    with open(path, "w") as f:
        # json writes floats with repr: the shortest text that reads back to the same double.
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases ({os.path.getsize(path)} bytes) to {path}")


if __name__ == "__main__":
    main()
