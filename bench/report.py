"""Writes bench/RESULTS.md from the runs of bench/run-compare (micro-benchmarks, JSON) and
bench/fashion-compare (Fashion-MNIST training logs). Each script replaces its own section."""
import json
import os
import re
import statistics
import subprocess
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

WORKLOADS = [
    # (label, tapegrad benchmark, libtorch benchmark, per-op divisor, unit shown)
    ("W1 seed step (2-3-2 sigmoid, MSE, SGD), per step", "W1_seed_step_tapegrad", "W1_seed_step_libtorch", 1, "us"),
    ("W3 chain of 1000 elementwise ops, 1 element, per op", "W3_chain_tapegrad/1", "W3_chain_libtorch/1", 1000, "ns"),
    ("W3 chain of 1000 elementwise ops, 1000 elements, per op", "W3_chain_tapegrad/1000", "W3_chain_libtorch/1000", 1000, "ns"),
    ("W2 MLP 784-256-256-10, batch 128, forward + backward", "W2_mlp_tapegrad", "W2_mlp_libtorch", 1, "us"),
    ("W4 Hessian-vector product of the W2 MLP's loss, all parameters", "W4_hvp_mlp_tapegrad", "W4_hvp_mlp_libtorch", 1, "us"),
    ("W4 Hessian-vector product of the seed network's loss, one row", "W4_hvp_seed_tapegrad", "W4_hvp_seed_libtorch", 1, "us"),
    ("W5 batched matmul [8, 64, 128] @ [8, 128, 64], forward + backward", "W5_bmm_tapegrad/8/64/128/64", "W5_bmm_libtorch/8/64/128/64", 1, "us"),
    ("W5 batched matmul [32, 16, 16] @ [32, 16, 16], forward + backward", "W5_bmm_tapegrad/32/16/16/16", "W5_bmm_libtorch/32/16/16/16", 1, "us"),
    ("W6 self-attention block [8, 64, 3x64] (chunk, transpose, softmax), forward + backward", "W6_attention_tapegrad", "W6_attention_libtorch", 1, "us"),
    ("W8 LSTM 32 -> 64, batch 8, 50 steps, forward + backward", "W8_recurrent_tapegrad/0/32/64/8/50/1", "W8_recurrent_libtorch/0/32/64/8/50/1", 1, "ms"),
    ("W8 2-layer LSTM 64 -> 256, batch 32, 64 steps (the char-LM's shape), forward + backward", "W8_recurrent_tapegrad/0/64/256/32/64/2", "W8_recurrent_libtorch/0/64/256/32/64/2", 1, "ms"),
    ("W8 2-layer GRU 64 -> 256, batch 32, 64 steps, forward + backward", "W8_recurrent_tapegrad/1/64/256/32/64/2", "W8_recurrent_libtorch/1/64/256/32/64/2", 1, "ms"),
    ("W8 bidirectional LSTM 32 -> 64, 8 packed sequences of 50 down to 15 steps, forward + backward", "W8_packed_bilstm_tapegrad", "W8_packed_bilstm_libtorch", 1, "ms"),
    ("W9 Transformer encoder layer (d_model 128, 4 heads, ff 512) on [64, 16, 128], forward + backward", "W9_transformer_layer_tapegrad", "W9_transformer_layer_libtorch", 1, "ms"),
    ("W9 MultiheadAttention (128, 4 heads), self-attention on [64, 16, 128], forward + backward", "W9_multihead_attention_tapegrad", "W9_multihead_attention_libtorch", 1, "ms"),
]


def medians(*paths):
    """Median time per benchmark over every repetition in the given files (all rounds)."""
    runs = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("run_type") != "iteration":
                continue
            runs.setdefault(b["run_name"], []).append(b["real_time"] * UNIT_NS[b["time_unit"]])
    return {name: statistics.median(times) for name, times in runs.items()}


def rounds(folder, prefix):
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.startswith(prefix) and n.endswith(".json")]


def fmt(ns, unit):
    if ns is None:
        return "n/a"
    v = ns / UNIT_NS[unit]
    return f"{v:.3g} {'µs' if unit == 'us' else unit}"


def machine():
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | head -1"], capture_output=True, text=True).stdout
    return f"{cpu.split(':', 1)[-1].strip()}, {os.cpu_count()} cores"


def micro(folder, command):
    lines = []
    print_ = lines.append
    tg = medians(*[r for r in rounds(folder, "tapegrad_") if "tuned" not in r])
    tg_tuned = medians(*rounds(folder, "tapegrad_tuned_"))
    base = medians(*rounds(folder, "baseline_"))
    now = medians(*rounds(folder, "now_"))
    base_ref = open(os.path.join(folder, "baseline_ref")).read().strip() if base else None
    td = medians(*rounds(folder, "libtorch_default_"))
    tt = medians(*rounds(folder, "libtorch_tuned_"))
    print_("## Micro-benchmarks: per-op overhead and a dense network\n")
    print_(f"Produced by `{command}` on this machine ({machine()}). Medians over the repetitions; float32.\n")
    print_("Workloads (bench/bench_tapegrad.cpp and bench/bench_libtorch.cpp): W1 is one online training step of the")
    print_("tutorial's 2-3-2 sigmoid network (forward, MSE, backward, SGD update with lr 0.5), cycling over its 10 rows;")
    print_("tapegrad uses `tg::linear`, libtorch `nn::Linear` and `optim::SGD`. W3 is a chain of 1000 elementwise ops")
    print_("(sigmoid and multiply-by-1.5, alternating), then a sum and the backward, timed per op. W2 is an MLP")
    print_("784-256-256-10 with ReLU and cross-entropy on a batch of 128, forward and backward. W4 is a Hessian-vector")
    print_("product by double backward (the gradient recorded with create_graph, then the gradient of its dot product")
    print_("with a fixed direction), with respect to all parameters: of W2's loss, and of the seed network's MSE on one")
    print_("row; libtorch does the same with `torch::autograd::grad(..., create_graph=true)`. W5 is a batched matmul")
    print_("(`tg::matmul` / `torch::matmul` on 3-D inputs) on attention shapes, forward, sum and backward. W6 is a")
    print_("self-attention block: q, k, v cut from one [8, 64, 192] input by `chunk`, softmax(q k^T / 8) v with k^T by")
    print_("`transpose(k, 1, 2)`, summed, forward and backward. W8 runs recurrent layers (`nn::LSTM`, `nn::GRU`;")
    print_("libtorch's `torch::nn::LSTM`, `GRU`) over a padded batch, and a bidirectional LSTM over a packed batch, the")
    print_("loss the sum of the outputs; W9 a Transformer encoder layer (post-norm, relu, dropout 0) and")
    print_("MultiheadAttention alone (`need_weights = false`), forward and backward.\n")
    print_("Ratio = libtorch's time / tapegrad's time at libtorch's best setting (higher means tapegrad is faster).")
    print_("libtorch runs twice: with its defaults (intra-op pool of 2 threads, stock glibc malloc) and tuned")
    print_("(pool of 1 thread; `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`).")
    print_("tapegrad runs with its defaults, no tuning. Each round runs every program once, one after the other; a")
    print_("median is taken over all repetitions of all rounds.")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if coretype:
        print_(f"This environment sets `OPENBLAS_CORETYPE={coretype}` for both (256-bit OpenBLAS kernels on this AVX-512")
        print_("CPU); it matters for W2 and W4 only, see the Fashion-MNIST section for both kernel choices.")
    if base:
        print_(f"\nThe column \"tapegrad at {base_ref}\" is the same benchmark program built from commit {base_ref}; for the")
        print_("first-order workloads the two programs ran one after the other many times over (short runs, alternating),")
        print_("so that both saw the same mix of this machine's fast and slow spells, and \"now / then\" compares the")
        print_("medians of those alternating runs (below 1.10 means within 10%).")
    print_("")
    head = "| workload | tapegrad |"
    rule = "| --- | --- |"
    if base:
        head += f" tapegrad at {base_ref} | now / then |"
        rule += " --- | --- |"
    print_(head + " libtorch default | libtorch tuned | ratio (best libtorch / tapegrad) |")
    print_(rule + " --- | --- | --- |")
    for label, a, b, div, unit in WORKLOADS:
        t = tg.get(a)
        d = td.get(b)
        u = tt.get(b)
        t = t / div if t is not None else None
        d = d / div if d is not None else None
        u = u / div if u is not None else None
        best = min([v for v in (d, u) if v is not None], default=None)
        ratio = f"{best / t:.1f}x" if (best and t) else "n/a"
        row = f"| {label} | {fmt(t, unit)} |"
        if base:
            then, cur = base.get(a), now.get(a)
            then = then / div if then is not None else None
            cur = cur / div if cur is not None else None
            row += f" {fmt(then, unit)} | {f'{cur / then:.2f}' if (cur and then) else 'n/a'} |"
        print_(row + f" {fmt(d, unit)} | {fmt(u, unit)} | {ratio} |")
    if tg_tuned:
        print_("\nWith libtorch's tuned glibc settings for tapegrad too (same environment variable; W2 and W4, where")
        print_("OpenBLAS's multithreaded gemm mallocs and frees a 512 KB job buffer per call, which glibc's defaults")
        print_("return to the kernel and map again, page fault by page fault, in both libraries):\n")
        print_("| workload | tapegrad tuned | libtorch tuned | ratio (libtorch tuned / tapegrad tuned) |")
        print_("| --- | --- | --- | --- |")
        for label, a, b, div, unit in WORKLOADS:
            t, u = tg_tuned.get(a), tt.get(b)
            if t is None:
                continue
            print_(f"| {label} | {fmt(t / div, unit)} | {fmt(u / div if u else None, unit)} | "
                   f"{f'{u / t:.2f}x' if u else 'n/a'} |")
    att, nocopy = tg.get("W6_attention_tapegrad"), tg.get("W6_attention_nocopy_tapegrad")
    if att and nocopy:
        print_(f"\nW6 without the copying shape ops (q, k, v as separate inputs, k^T folded into the gemm): "
               f"{fmt(nocopy, 'us')}; chunk and transpose, which copy, cost {fmt(att - nocopy, 'us')} of the block's "
               f"{fmt(att, 'us')} ({100 * (att - nocopy) / att:.0f}%).")
    hw = tg.get("W1_seed_step_handwritten")
    if hw is not None and tg.get("W1_seed_step_tapegrad"):
        print_(f"\nHand-written C++ backprop of the W1 step (no tape, every derivative by hand): {fmt(hw, 'ns')} per step; "
               f"the tape costs {tg['W1_seed_step_tapegrad'] / hw:.1f}x that.")
    return "\n".join(lines) + "\n"


def parse_tapegrad(path):
    times, acc = [], None
    for line in open(path):
        m = re.search(r"time ([0-9.]+) s", line)
        if line.startswith("epoch") and m:
            times.append(float(m.group(1)))
        m = re.search(r"final test accuracy ([0-9.]+)%", line)
        if m:
            acc = float(m.group(1))
    return times, acc


def parse_libtorch(path):
    times, acc = [], None
    for line in open(path):
        m = re.search(r"time ([0-9.]+) s .*test acc ([0-9.]+)%", line)
        if line.startswith("epoch") and m:
            times.append(float(m.group(1)))
            acc = float(m.group(2))
    return times, acc


def training_runs(folder, setting):
    """Epoch times and final accuracies of every tapegrad and libtorch log of one setting."""
    tt, lt, ta, la = [], [], [], []
    for name in sorted(os.listdir(folder)):
        if name.startswith(f"fashion_tapegrad_{setting}_"):
            t, a = parse_tapegrad(os.path.join(folder, name))
            tt += t
            ta.append(a)
        if name.startswith(f"fashion_libtorch_{setting}_"):
            t, a = parse_libtorch(os.path.join(folder, name))
            lt += t
            la.append(a)
    return tt, lt, ta, la


def fashion(folder, command, env_coretype):
    env_label = f"`OPENBLAS_CORETYPE={env_coretype}` as this environment sets it" if env_coretype else "as the environment sets them"
    lines = ["## Fashion-MNIST: the reference recipe, tapegrad beside libtorch\n",
             f"Produced by `{command}` on this machine ({machine()}).",
             "Recipe: MLP 784-256-128-10, ReLU, cross-entropy, Adam lr 1e-3, batch 128, shuffled every epoch, inputs in",
             "[0, 1], float32, 10 epochs; both programs see the same batches in the same order from the same initial",
             "weights (libtorch's program takes them from tapegrad's loader and initialisers). The two programs",
             "alternate, round after round; epoch time is the training pass only, the median over all epochs of all",
             "rounds. libtorch runs at its best setting: its pool at 1 thread,",
             "`GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`;",
             "tapegrad runs with its defaults. BLAS threads: `--threads` for tapegrad, `OPENBLAS_NUM_THREADS` for libtorch.",
             f"OpenBLAS kernels: \"environment\" = {env_label} (256-bit kernels on this AVX-512 CPU),",
             "\"OpenBLAS's choice\" = the variable unset, so OpenBLAS detects the CPU and uses its AVX-512 kernels (both",
             "programs get the same kernels in each row).\n",
             "| OpenBLAS kernels | BLAS threads | tapegrad s/epoch | libtorch s/epoch | time ratio (tapegrad / libtorch) | tapegrad samples/s | libtorch samples/s | tapegrad test acc | libtorch test acc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kernels, label in (("env", "environment"), ("auto", "OpenBLAS's choice")):
        for threads in (1, 2):
            tt, lt, ta, la = training_runs(folder, f"{kernels}_{threads}")
            if not tt or not lt:
                continue
            tm, lm = statistics.median(tt), statistics.median(lt)
            lines.append(f"| {label} | {threads} | {tm:.3f} | {lm:.3f} | {tm / lm:.2f}x | {60000 / tm:.0f} | {60000 / lm:.0f} | "
                         f"{ta[-1]:.2f}% | {la[-1]:.2f}% |")
    return "\n".join(lines) + "\n"


CONV_SHAPES = [("128/1/28/32", "main job layer 1: x [128, 1, 28, 28], w [32, 1, 3, 3] (no input gradient)"),
               ("128/32/14/64", "main job layer 2: x [128, 32, 14, 14], w [64, 32, 3, 3]"),
               ("64/64/56/64", "ResNet block: x [64, 64, 56, 56], w [64, 64, 3, 3]")]


def conv(folder, command):
    """W7: conv2d forward + backward, tapegrad against libtorch at 1 and 2 threads."""
    lines = [f"## W7: conv2d forward + backward against libtorch\n",
             f"`{command}` on {machine()}: 3x3, padding 1, no bias, float32, grad_out ones; medians of every",
             "repetition of every round, the two programs alternating. Threads: tapegrad's `tg::set_num_threads`",
             "(oneDNN's OpenMP threads), libtorch's `torch::set_num_threads`. Both run the convolution itself",
             "through oneDNN (tapegrad: its convolution primitives on plain NCHW arrays, reordered to oneDNN's",
             "blocked layout and back; libtorch: the same library through ATen).\n",
             "| shapes | threads | tapegrad ms | libtorch ms | time ratio (tapegrad / libtorch) |",
             "| --- | --- | --- | --- | --- |"]
    for threads in (1, 2):
        tg = medians(*rounds(folder, f"conv_tapegrad_{threads}_"))
        lt = medians(*rounds(folder, f"conv_libtorch_{threads}_"))
        for args, label in CONV_SHAPES:
            t = tg.get(f"W7_conv2d_tapegrad/{args}/real_time")
            l = lt.get(f"W7_conv2d_libtorch/{args}/real_time")
            if t is None or l is None:
                continue
            lines.append(f"| {label} | {threads} | {t / 1e6:.2f} | {l / 1e6:.2f} | {t / l:.2f}x |")
    return "\n".join(lines) + "\n"


# Multiply-adds of the main job's CNN per training image: forward (conv 1->32 at 28x28,
# conv 32->64 at 14x14, fc 3136->128, fc 128->10), the same again for the weight gradients,
# and the input gradients of every layer but the first.
_CNN_FORWARD = 32 * 28 * 28 * 9 + 64 * 14 * 14 * 32 * 9 + 3136 * 128 + 128 * 10
_CNN_INPUT_GRADS = _CNN_FORWARD - 32 * 28 * 28 * 9
CNN_EPOCH_FLOP = 2 * (2 * _CNN_FORWARD + _CNN_INPUT_GRADS) * 60000


def fashion_cnn(folder, command):
    """The main job's CNN recipe, tapegrad against libtorch at 1 and 2 threads."""
    lines = ["## Fashion-MNIST: the main job's CNN, tapegrad beside libtorch\n",
             f"Produced by `{command}` on this machine ({machine()}).",
             "Recipe: conv(1->32, 3x3, pad 1, no bias)-BN-ReLU-maxpool 2, conv(32->64, 3x3, pad 1, no bias)-BN-ReLU-",
             "maxpool 2, flatten, Linear(3136->128)-ReLU-Dropout(0.3), Linear(128->10), cross-entropy, Adam lr 1e-3 with",
             "a cosine schedule per epoch, batch 128, float32; the same batches in the same order from the same initial",
             "weights (libtorch's program takes them from tapegrad's loader and layers). The programs alternate, round",
             "after round; epoch time is the training pass only, the median over all epochs of all rounds. Threads:",
             "`--threads` for tapegrad (oneDNN, which also runs its float matrix products); `--threads` (intra-op pool, oneDNN) and",
             "`OPENBLAS_NUM_THREADS` for libtorch, which also runs with its tuned glibc malloc settings.",
             f"GFLOP/s: the epoch's {CNN_EPOCH_FLOP / 1e12:.3f} TFLOP of convolutions and matrix products (forward, weight",
             "gradients and input gradients but the first convolution's, 25.0 MFLOP per image, counted from the layer",
             "shapes; normalisation, pooling and the optimiser left out) over the epoch's time.\n",
             "| threads | tapegrad s/epoch | libtorch s/epoch | time ratio (tapegrad / libtorch) | tapegrad GFLOP/s | libtorch GFLOP/s | tapegrad test acc | libtorch test acc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for threads in (1, 2):
        tt, lt, ta, la = training_runs(folder, f"cnn_{threads}")
        if not tt or not lt:
            continue
        tm, lm = statistics.median(tt), statistics.median(lt)
        lines.append(f"| {threads} | {tm:.2f} | {lm:.2f} | {tm / lm:.2f}x | {CNN_EPOCH_FLOP / tm / 1e9:.0f} | "
                     f"{CNN_EPOCH_FLOP / lm / 1e9:.0f} | {ta[-1]:.2f}% | {la[-1]:.2f}% |")
    return "\n".join(lines) + "\n"


def contention(folder, command):
    """Shared / alone time of the CNN epoch and the W2 step, now and at a baseline commit."""
    ref_path = os.path.join(folder, "baseline_ref")
    builds = [("now", "now")]
    if os.path.exists(ref_path):
        builds.append(("baseline", f"at {open(ref_path).read().strip()}"))
    cpus = os.cpu_count()
    lines = ["## Sharing the machine: alone and beside one busy process\n",
             f"Produced by `{command}` on this machine ({machine()}).",
             "Default settings (no thread count set, no environment variables). \"Shared\" runs beside one",
             "single-threaded process that never sleeps (`bash -c 'while :; do :; done'`); its fair share leaves",
             f"the run {cpus}/{cpus + 1} of the cores, so sharing without waste costs {(cpus + 1) / cpus:.2f}x.",
             "CNN: the main job's recipe, one epoch, the training pass only; MLP: W2's forward and backward step",
             "(784-256-256-10, batch 128). Medians over all rounds; alone and shared alternate within each round.\n",
             "| workload | build | alone | shared | shared / alone |",
             "| --- | --- | --- | --- | --- |"]
    for label, prefix, unit in (("CNN epoch", "cnn", "s"), ("MLP step (W2)", "mlp", "ms")):
        for build, name in builds:
            t = {}
            for mode in ("alone", "shared"):
                files = [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                         if n.startswith(f"{prefix}_{build}_{mode}_")]
                if prefix == "cnn":
                    times = [x for f in files for x in parse_tapegrad(f)[0]]
                    t[mode] = statistics.median(times) if times else None
                else:
                    m = medians(*files)
                    t[mode] = m["W2_mlp_tapegrad"] / 1e6 if m else None
            if t["alone"] is None or t["shared"] is None:
                continue
            fmt_t = (lambda v: f"{v:.2f} s") if unit == "s" else (lambda v: f"{v:.3f} ms")
            lines.append(f"| {label} | {name} | {fmt_t(t['alone'])} | {fmt_t(t['shared'])} | "
                         f"{t['shared'] / t['alone']:.2f}x |")
    return "\n".join(lines) + "\n"


def native(folder, command):
    """The portable default build against -DTAPEGRAD_NATIVE=ON, same tree, alternating."""
    flags = subprocess.run(["sh", "-c", "gcc -march=native -Q --help=target 2>/dev/null | "
                            "grep -E '^ +-march=' | head -1"], capture_output=True, text=True).stdout.split()
    arch = flags[-1] if flags else "native"
    lines = ["## Portable build against a native one\n",
             f"Produced by `{command}` on this machine ({machine()}).",
             "\"Portable\" is the default build (`-march=x86-64-v2` for tapegrad's own code; oneDNN and OpenBLAS",
             f"choose their kernels at run time either way); \"native\" is `-DTAPEGRAD_NATIVE=ON` (`-march=native`, which GCC 12 resolves to {arch} on this CPU,",
             "without AVX-512). Same source tree; the two programs alternate. Medians over all runs.\n",
             "| workload | portable | native | portable / native |",
             "| --- | --- | --- | --- |"]
    runs = {b: medians(*[os.path.join(folder, n) for n in sorted(os.listdir(folder))
                         if n.startswith(f"micro_{b}_")]) for b in ("portable", "native")}
    for label, name, div, unit in (
            ("W2 MLP 784-256-256-10, batch 128, forward + backward", "W2_mlp_tapegrad", 1, "us"),
            ("W3 chain of 1000 elementwise ops, 1 element, per op", "W3_chain_tapegrad/1", 1000, "ns"),
            ("W3 chain of 1000 elementwise ops, 1000 elements, per op", "W3_chain_tapegrad/1000", 1000, "ns"),
            ("W6 self-attention block, forward + backward", "W6_attention_tapegrad", 1, "us")):
        p, n = runs["portable"].get(name), runs["native"].get(name)
        if p is None or n is None:
            continue
        lines.append(f"| {label} | {fmt(p / div, unit)} | {fmt(n / div, unit)} | {p / n:.2f} |")
    cnn = {}
    for b in ("portable", "native"):
        times = [t for n in sorted(os.listdir(folder)) if n.startswith(f"cnn_{b}_")
                 for t in parse_tapegrad(os.path.join(folder, n))[0]]
        cnn[b] = statistics.median(times) if times else None
    if cnn["portable"] and cnn["native"]:
        lines.append(f"| CNN main job, one epoch's training pass | {cnn['portable']:.2f} s | {cnn['native']:.2f} s | "
                     f"{cnn['portable'] / cnn['native']:.2f} |")
    return "\n".join(lines) + "\n"


def dcgan(folder, command):
    """samples/dcgan's step beside its libtorch twin."""
    def step_times(prefix):
        times = []
        for n in sorted(os.listdir(folder)):
            if n.startswith(prefix) and n.endswith(".log"):
                for line in open(os.path.join(folder, n)):
                    m = re.search(r"median step time ([0-9.]+) ms", line)
                    if m:
                        times.append(float(m.group(1)))
        return statistics.median(times) if times else None
    t = step_times("tapegrad_")
    lt = {threads: step_times(f"libtorch_{threads}_") for threads in (1, 2)}
    lines = ["## DCGAN training step beside libtorch\n",
             f"Produced by `{command}` on this machine ({machine()}).",
             "samples/dcgan (generator of 4 transposed convolutions with batch norm and ReLU, discriminator of 4",
             "strided convolutions with batch norm and leaky ReLU, channel counts 64/32/16, batch 64, binary",
             "cross-entropy on logits, Adam 2e-4) against bench/dcgan_libtorch.cpp, the same networks and step in",
             "libtorch on the same batches. A step is one discriminator and one generator update; each run's",
             "median over its steps after the tenth, then the median over the rounds. tapegrad runs with its",
             "defaults; libtorch at 1 and 2 intra-op threads with its tuned glibc malloc settings.\n",
             "| tapegrad ms/step | libtorch 1 thread | libtorch 2 threads | ratio (best libtorch / tapegrad) |",
             "| --- | --- | --- | --- |"]
    best = min(v for v in lt.values() if v is not None) if any(lt.values()) else None
    if t is not None and best is not None:
        lines.append(f"| {t:.2f} | {lt[1]:.2f} | {lt[2]:.2f} | {best / t:.2f}x |")
    return "\n".join(lines) + "\n"


def replace_section(name, body):
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)
    print(body)


def main():
    if sys.argv[1] == "--fashion-cnn":
        replace_section("fashion-cnn", fashion_cnn(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "--contention":
        replace_section("contention", contention(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "--native":
        replace_section("native", native(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "--dcgan":
        replace_section("dcgan", dcgan(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "--conv":
        replace_section("conv", conv(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "--fashion":
        replace_section("fashion", fashion(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else ""))
    else:
        replace_section("micro", micro(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
