"""Writes PyTorch float64 references for the attention layers, read by tests/nn/test_attention.cpp.

    /usr/bin/python3 tests/reference/make_attention_reference.py tests/reference

attention_reference.json holds, for each case, the layer's options, its state_dict, the inputs
and boolean masks (torch.nn's convention: True = not allowed), the outputs (and attention
weights), and the gradients of a fixed weighted sum of them with respect to every parameter
and every input. Dropout is 0, so training mode is deterministic.

transformer_encoder.safetensors holds the state_dict of a 2-layer TransformerEncoder with a
final LayerNorm; transformer_encoder.json its input, padding mask and output in eval mode.
Only PyTorch decides the values; nothing here knows tapegrad.
"""
import json
import os
import sys

import torch
from torch import nn

from reference_files import listed, write_safetensors


def mask_listed(m):
    return {"shape": list(m.shape), "values": [bool(v) for v in m.flatten().tolist()]}


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def mha_case(name, e, heads, l, s, n, kdim=None, vdim=None, bias=True, batch_first=False, self_attn=False,
             need_weights=True, average=True, attn_mask=None, key_padding_mask=None, unbatched=False):
    layer = nn.MultiheadAttention(e, heads, bias=bias, batch_first=batch_first, kdim=kdim, vdim=vdim).double()
    # Non-zero biases, so that their gradients and their split into q, k and v are checked.
    with torch.no_grad():
        for pname, p in layer.named_parameters():
            if "bias" in pname:
                p.copy_(torch.randn_like(p) * 0.3)

    def shaped(length, features):
        if unbatched:
            return randn(length, features)
        return randn(n, length, features) if batch_first else randn(length, n, features)

    q = shaped(l, e)
    if self_attn:
        k = v = q
    else:
        k = shaped(s, kdim or e)
        v = shaped(s, vdim or e)
    out, weights = layer(q, k, v, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=need_weights,
                         average_attn_weights=average)
    wo = torch.randn_like(out)
    loss = (out * wo).sum()
    case = {"name": name, "embed_dim": e, "num_heads": heads, "kdim": kdim or 0, "vdim": vdim or 0, "bias": bias,
            "batch_first": batch_first, "self_attention": self_attn, "need_weights": need_weights,
            "average_attn_weights": average,
            "state_dict": {k_: listed(v_) for k_, v_ in layer.state_dict().items()},
            "state_dict_keys": list(layer.state_dict().keys()),
            "query": listed(q), "output": listed(out), "weight_output": listed(wo)}
    if need_weights:
        ww = torch.randn_like(weights)
        loss = loss + (weights * ww).sum()
        case["weights"] = listed(weights)
        case["weight_weights"] = listed(ww)
    loss.backward()
    case["grad_query"] = listed(q.grad)
    if not self_attn:
        case.update({"key": listed(k), "value": listed(v), "grad_key": listed(k.grad), "grad_value": listed(v.grad)})
    case["grads"] = {k_: listed(p.grad) for k_, p in layer.named_parameters()}
    if attn_mask is not None:
        case["attn_mask"] = mask_listed(attn_mask)
    if key_padding_mask is not None:
        case["key_padding_mask"] = mask_listed(key_padding_mask)
    return case


def layer_case(name, kind, d_model, nhead, ff, n, l, s=None, activation="relu", norm_first=False, batch_first=False,
               masks=None, memory_masks=None):
    cls = nn.TransformerEncoderLayer if kind == "encoder" else nn.TransformerDecoderLayer
    layer = cls(d_model, nhead, dim_feedforward=ff, dropout=0.0, activation=activation, norm_first=norm_first,
                batch_first=batch_first).double()
    with torch.no_grad():
        for pname, p in layer.named_parameters():
            if "norm" in pname or "bias" in pname:
                p.add_(torch.randn_like(p) * 0.2)
    layer.train()
    masks = masks or {}
    memory_masks = memory_masks or {}
    x = randn(n, l, d_model) if batch_first else randn(l, n, d_model)
    case = {"name": name, "kind": kind, "d_model": d_model, "nhead": nhead, "dim_feedforward": ff,
            "activation": activation, "norm_first": norm_first, "batch_first": batch_first,
            "state_dict": {k_: listed(v_) for k_, v_ in layer.state_dict().items()},
            "state_dict_keys": list(layer.state_dict().keys()), "x": listed(x)}
    if kind == "encoder":
        y = layer(x, src_mask=masks.get("attn_mask"), src_key_padding_mask=masks.get("key_padding_mask"))
    else:
        mem = randn(n, s, d_model) if batch_first else randn(s, n, d_model)
        y = layer(x, mem, tgt_mask=masks.get("attn_mask"), memory_mask=memory_masks.get("attn_mask"),
                  tgt_key_padding_mask=masks.get("key_padding_mask"),
                  memory_key_padding_mask=memory_masks.get("key_padding_mask"))
        case["memory"] = listed(mem)
    wy = torch.randn_like(y)
    (y * wy).sum().backward()
    case.update({"output": listed(y), "weight_output": listed(wy), "grad_x": listed(x.grad),
                 "grads": {k_: listed(p.grad) for k_, p in layer.named_parameters()}})
    if kind == "decoder":
        case["grad_memory"] = listed(mem.grad)
    for key, value in masks.items():
        case["mask_" + key] = mask_listed(value)
    for key, value in memory_masks.items():
        case["memory_mask_" + key] = mask_listed(value)
    return case


def causal(size):
    return torch.triu(torch.ones(size, size, dtype=torch.bool), diagonal=1)


def main():
    out_dir = sys.argv[1]
    torch.manual_seed(0)
    kpm = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])
    per_head = torch.rand(2 * 2, 3, 5) < 0.3
    per_head[:, :, 0] = False  # every query keeps a key: PyTorch gives NaN for a row with none
    mha = [
        mha_case("self-attention, causal mask and key padding, averaged weights", 8, 2, 5, 5, 2, self_attn=True,
                 attn_mask=causal(5), key_padding_mask=kpm),
        mha_case("cross-attention, kdim and vdim, batch_first, weights per head", 6, 3, 3, 5, 2, kdim=4, vdim=5,
                 batch_first=True, average=False, key_padding_mask=kpm),
        mha_case("cross-attention without bias, per-head mask, no weights", 8, 2, 3, 5, 2, bias=False,
                 need_weights=False, attn_mask=per_head),
        mha_case("separate query, key and value, one in_proj_weight, no masks", 4, 1, 3, 4, 3),
        mha_case("unbatched self-attention", 6, 2, 4, 4, 1, self_attn=True, unbatched=True, attn_mask=causal(4)),
    ]
    layers = [
        layer_case("encoder layer, post-norm, relu, key padding", "encoder", 8, 2, 16, 2, 5,
                   masks={"key_padding_mask": kpm}),
        layer_case("encoder layer, norm_first, gelu, batch_first, causal", "encoder", 8, 4, 12, 2, 4,
                   activation="gelu", norm_first=True, batch_first=True, masks={"attn_mask": causal(4)}),
        layer_case("decoder layer, post-norm, causal target, memory padding", "decoder", 8, 2, 16, 2, 4, s=5,
                   masks={"attn_mask": causal(4)}, memory_masks={"key_padding_mask": kpm}),
        layer_case("decoder layer, norm_first, gelu, batch_first", "decoder", 6, 3, 10, 2, 3, s=4,
                   activation="gelu", norm_first=True, batch_first=True),
    ]
    with open(os.path.join(out_dir, "attention_reference.json"), "w") as f:
        json.dump({"multihead_attention": mha, "layers": layers}, f)
        f.write("\n")

    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16), enable_nested_tensor=False).double()
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    encoder.eval()
    src = torch.randn(6, 3, 16, dtype=torch.float64)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, 4:] = True
    with torch.no_grad():
        out = encoder(src, src_key_padding_mask=pad)
    state = encoder.state_dict()
    write_safetensors(os.path.join(out_dir, "transformer_encoder.safetensors"), state)
    with open(os.path.join(out_dir, "transformer_encoder.json"), "w") as f:
        json.dump({"state_dict_keys": list(state.keys()), "src": listed(src), "key_padding_mask": mask_listed(pad),
                   "output": listed(out)}, f)
        f.write("\n")
    print("wrote attention_reference.json, transformer_encoder.safetensors and transformer_encoder.json to", out_dir)


if __name__ == "__main__":
    main()
