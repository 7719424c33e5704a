"""Turns the benchmark JSON of bench/run-compare into bench/RESULTS.md: medians and ratios."""
import json
import os
import platform
import subprocess
import sys

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

WORKLOADS = [
    # (label, tapegrad benchmark, libtorch benchmark, per-op divisor, unit shown)
    ("W1 seed step (2-3-2 sigmoid, MSE, SGD), per step", "W1_seed_step_tapegrad", "W1_seed_step_libtorch", 1, "us"),
    ("W3 chain of 1000 elementwise ops, 1 element, per op", "W3_chain_tapegrad/1", "W3_chain_libtorch/1", 1000, "ns"),
    ("W3 chain of 1000 elementwise ops, 1000 elements, per op", "W3_chain_tapegrad/1000", "W3_chain_libtorch/1000", 1000, "ns"),
    ("W2 MLP 784-256-256-10, batch 128, forward + backward", "W2_mlp_tapegrad", "W2_mlp_libtorch", 1, "us"),
]


def medians(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        out[name] = b["real_time"] * UNIT_NS[b["time_unit"]]
    return out


def fmt(ns, unit):
    if ns is None:
        return "n/a"
    v = ns / UNIT_NS[unit]
    return f"{v:.3g} {'µs' if unit == 'us' else unit}"


def main():
    folder, command = sys.argv[1], sys.argv[2]
    tg = medians(os.path.join(folder, "tapegrad.json"))
    td = medians(os.path.join(folder, "libtorch_default.json"))
    tt = medians(os.path.join(folder, "libtorch_tuned.json"))
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | head -1"], capture_output=True, text=True).stdout
    print("# Benchmark results\n")
    print(f"Produced by `{command}` on {platform.node() and 'this machine'}: "
          f"{cpu.split(':', 1)[-1].strip()}, {os.cpu_count()} cores. Medians over the repetitions; float32.\n")
    print("Ratio = libtorch's time / tapegrad's time at libtorch's best setting (higher means tapegrad is faster).")
    print("libtorch runs twice: with its defaults (intra-op pool of 2 threads, stock glibc malloc) and tuned")
    print("(pool of 1 thread; `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`).")
    print("tapegrad runs with its defaults, no tuning.\n")
    print("| workload | tapegrad | libtorch default | libtorch tuned | ratio (best libtorch / tapegrad) |")
    print("| --- | --- | --- | --- | --- |")
    for label, a, b, div, unit in WORKLOADS:
        t = tg.get(a)
        d = td.get(b)
        u = tt.get(b)
        t = t / div if t is not None else None
        d = d / div if d is not None else None
        u = u / div if u is not None else None
        best = min([v for v in (d, u) if v is not None], default=None)
        ratio = f"{best / t:.1f}x" if (best and t) else "n/a"
        print(f"| {label} | {fmt(t, unit)} | {fmt(d, unit)} | {fmt(u, unit)} | {ratio} |")
    hw = tg.get("W1_seed_step_handwritten")
    if hw is not None and tg.get("W1_seed_step_tapegrad"):
        print(f"\nHand-written C++ backprop of the W1 step (no tape, every derivative by hand): {fmt(hw, 'ns')} per step; "
              f"the tape costs {tg['W1_seed_step_tapegrad'] / hw:.1f}x that.")


if __name__ == "__main__":
    main()
