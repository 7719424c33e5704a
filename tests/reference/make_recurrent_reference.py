"""Writes PyTorch float64 references for the recurrent layers, read by tests/nn/test_recurrent.cpp.

    /usr/bin/python3 tests/reference/make_recurrent_reference.py tests/reference

recurrent_reference.json holds, for each case, the layer's options, its state_dict, the
inputs (padded, or padded with lengths for a packed run), the initial state, the outputs, the
final state, and the gradients of a fixed weighted sum of the outputs and final states with
respect to every parameter, the input and the initial state.

recurrent_lm.safetensors and recurrent_lm.pt hold the state_dict of a small language model
(Embedding -> 2-layer LSTM -> Linear); recurrent_lm.json its input tokens and output logits.
Only PyTorch decides the values; nothing here knows tapegrad.
"""
import json
import os
import sys

import torch
from torch import nn

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from reference_files import listed, write_safetensors


def make_layer(kind, input_size, hidden, opts):
    if kind == "lstm":
        return nn.LSTM(input_size, hidden, **opts)
    if kind == "gru":
        return nn.GRU(input_size, hidden, **opts)
    return nn.RNN(input_size, hidden, **opts)


def layer_case(name, kind, input_size, hidden, opts, steps, batch, lengths=None, with_state=True):
    layer = make_layer(kind, input_size, hidden, opts).double()
    layer.train()
    bf = opts.get("batch_first", False)
    dirs = 2 if opts.get("bidirectional", False) else 1
    rows = opts.get("num_layers", 1) * dirs
    hout = opts.get("proj_size", 0) or hidden
    shape = (batch, steps, input_size) if bf else (steps, batch, input_size)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(rows, batch, hout, dtype=torch.float64, requires_grad=True) if with_state else None
    c0 = torch.randn(rows, batch, hidden, dtype=torch.float64, requires_grad=True) if with_state and kind == "lstm" else None
    state = None
    if with_state:
        state = (h0, c0) if kind == "lstm" else h0
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
        out, fin = layer(packed, state)
        y = out.data
        padded, out_lengths = pad_packed_sequence(out, batch_first=bf)
    else:
        out, fin = layer(x, state)
        y = out
    hn, cn = (fin if kind == "lstm" else (fin, None))
    wy = torch.randn_like(y)
    wh = torch.randn_like(hn)
    loss = (y * wy).sum() + (hn * wh).sum()
    wc = None
    if cn is not None:
        wc = torch.randn_like(cn)
        loss = loss + (cn * wc).sum()
    loss.backward()
    case = {
        "name": name, "kind": kind, "input_size": input_size, "hidden_size": hidden,
        "num_layers": opts.get("num_layers", 1), "bias": opts.get("bias", True), "batch_first": bf,
        "bidirectional": opts.get("bidirectional", False), "proj_size": opts.get("proj_size", 0),
        "nonlinearity": opts.get("nonlinearity", "tanh"),
        "state_dict": {k: listed(v) for k, v in layer.state_dict().items()},
        "state_dict_keys": list(layer.state_dict().keys()),
        "x": listed(x), "output": listed(y), "h_n": listed(hn), "weight_output": listed(wy), "weight_h": listed(wh),
        "grad_x": listed(x.grad),
        "grads": {k: listed(p.grad) for k, p in layer.named_parameters()},
    }
    if with_state:
        case["h0"] = listed(h0)
        case["grad_h0"] = listed(h0.grad)
    if cn is not None:
        case["c_n"] = listed(cn)
        case["weight_c"] = listed(wc)
        if with_state:
            case["c0"] = listed(c0)
            case["grad_c0"] = listed(c0.grad)
    if lengths is not None:
        case["lengths"] = lengths
        case["batch_sizes"] = out.batch_sizes.tolist()
        case["sorted_indices"] = out.sorted_indices.tolist()
        case["unsorted_indices"] = out.unsorted_indices.tolist()
        case["padded_output"] = listed(padded)
    return case


def cell_case(name, kind, input_size, hidden, batch, bias=True, nonlinearity="tanh"):
    if kind == "lstm":
        cell = nn.LSTMCell(input_size, hidden, bias=bias)
    elif kind == "gru":
        cell = nn.GRUCell(input_size, hidden, bias=bias)
    else:
        cell = nn.RNNCell(input_size, hidden, bias=bias, nonlinearity=nonlinearity)
    cell = cell.double()
    x = torch.randn(batch, input_size, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    case = {"name": name, "kind": kind, "input_size": input_size, "hidden_size": hidden, "bias": bias,
            "nonlinearity": nonlinearity, "state_dict": {k: listed(v) for k, v in cell.state_dict().items()},
            "state_dict_keys": list(cell.state_dict().keys()), "x": listed(x), "h0": listed(h0)}
    if kind == "lstm":
        c0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
        h, c = cell(x, (h0, c0))
        wh, wc = torch.randn_like(h), torch.randn_like(c)
        ((h * wh).sum() + (c * wc).sum()).backward()
        case.update({"c0": listed(c0), "c_n": listed(c), "weight_c": listed(wc), "grad_c0": listed(c0.grad)})
    else:
        h = cell(x, h0)
        wh = torch.randn_like(h)
        (h * wh).sum().backward()
    case.update({"h_n": listed(h), "weight_h": listed(wh), "grad_x": listed(x.grad), "grad_h0": listed(h0.grad),
                 "grads": {k: listed(p.grad) for k, p in cell.named_parameters()}})
    return case


class LanguageModel(nn.Module):
    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=2)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.embedding(tokens))
        return self.decoder(out)


def main():
    out_dir = sys.argv[1]
    torch.manual_seed(0)
    cases = [
        layer_case("lstm two layers, bidirectional", "lstm", 3, 4, {"num_layers": 2, "bidirectional": True}, 5, 3),
        layer_case("lstm batch_first, proj_size, two layers, bidirectional", "lstm", 3, 5,
                   {"num_layers": 2, "bidirectional": True, "batch_first": True, "proj_size": 2}, 4, 2),
        layer_case("lstm without bias, zero initial state", "lstm", 2, 3, {"bias": False}, 3, 2, with_state=False),
        layer_case("gru two layers, bidirectional, batch_first", "gru", 3, 4,
                   {"num_layers": 2, "bidirectional": True, "batch_first": True}, 4, 3),
        layer_case("rnn tanh two layers, bidirectional", "rnn", 3, 4, {"num_layers": 2, "bidirectional": True}, 4, 2),
        layer_case("rnn relu without bias", "rnn", 3, 4, {"nonlinearity": "relu", "bias": False}, 4, 2),
        layer_case("packed lstm, unsorted lengths, two layers, bidirectional, proj_size", "lstm", 3, 4,
                   {"num_layers": 2, "bidirectional": True, "proj_size": 3}, 6, 4, lengths=[3, 6, 1, 4]),
        layer_case("packed gru, unsorted lengths, batch_first, bidirectional", "gru", 2, 3,
                   {"bidirectional": True, "batch_first": True}, 5, 3, lengths=[2, 5, 4]),
        layer_case("packed rnn, unsorted lengths, no initial state", "rnn", 2, 3, {"num_layers": 2}, 4, 3,
                   lengths=[1, 4, 2], with_state=False),
    ]
    cells = [
        cell_case("lstm cell", "lstm", 3, 4, 2),
        cell_case("gru cell", "gru", 3, 4, 2),
        cell_case("rnn cell tanh", "rnn", 3, 4, 2),
        cell_case("rnn cell relu without bias", "rnn", 3, 4, 2, bias=False, nonlinearity="relu"),
    ]
    with open(os.path.join(out_dir, "recurrent_reference.json"), "w") as f:
        json.dump({"layers": cases, "cells": cells}, f)
        f.write("\n")

    model = LanguageModel(13, 6, 8).double().eval()
    tokens = torch.randint(0, 13, (7, 3))
    with torch.no_grad():
        logits = model(tokens)
    state = model.state_dict()
    write_safetensors(os.path.join(out_dir, "recurrent_lm.safetensors"), state)
    torch.save(state, os.path.join(out_dir, "recurrent_lm.pt"))
    with open(os.path.join(out_dir, "recurrent_lm.json"), "w") as f:
        json.dump({"state_dict_keys": list(state.keys()), "tokens": {"shape": list(tokens.shape),
                   "values": tokens.flatten().tolist()}, "logits": listed(logits)}, f)
        f.write("\n")
    print("wrote recurrent_reference.json, recurrent_lm.safetensors, recurrent_lm.pt and recurrent_lm.json to", out_dir)


if __name__ == "__main__":
    main()
