#pragma once
/// \file runtime.hpp
/// Process-wide settings.

#include <string>

#include "tapegrad/error.hpp"

namespace tg {

/// Fixes the number of threads that multi-threaded work uses: matrix products (oneDNN's
/// for float, OpenBLAS's for double), convolutions, oneDNN's recurrent layers, and the
/// pooling and normalisation kernels that split their channels (through OpenMP). The rest
/// runs on the calling thread. Results may differ in the last bits between thread counts,
/// as sums are split differently. Throws tg::Error for n < 1.
///
/// Without it (the default, or after reset_num_threads) the count follows the machine: all
/// of the process's CPUs (at most OMP_NUM_THREADS or OPENBLAS_NUM_THREADS when set), less
/// the cores that other processes kept busy over the last quarter of a second. On a shared
/// machine this gives up the cores another job is using instead of competing for them:
/// threads of one team that each get part of a core wait on one another at every step, and
/// one thread with a whole core is faster than two with two thirds of one each. The load is
/// read from /proc/stat about four times a second while work runs.
void set_num_threads(int n);

/// Returns to the default: a thread count that follows the machine's load (see
/// set_num_threads).
void reset_num_threads();

/// The number of threads multi-threaded work would use now: the fixed count, or the one
/// the machine's load gives.
int get_num_threads();

/// Whether this build and this CPU have the elementwise ops' wide SIMD loops. The library is
/// compiled for any x86-64 CPU of the last ten years (SSE4.2: four floats per instruction);
/// its elementwise ops (the arithmetic operators, exp, log, sigmoid, tanh, relu and the rest
/// of ops/elementwise) are compiled a second time for AVX2 (eight floats), and on a CPU that
/// has AVX2 their forward and first-order backward run those loops for tensors of 32
/// elements or more. Both compute every element with the same operations, so the values are
/// the same bit for bit. Builds without optimisation, with sanitizers or with
/// TAPEGRAD_NATIVE (already compiled for the CPU) have no second copy.
bool wide_simd_available() noexcept;

/// Switches the wide loops on (the default) or off, process-wide; without wide_simd_available
/// it changes nothing.
void set_wide_simd(bool on) noexcept;

/// Whether the elementwise ops run their wide loops now.
bool wide_simd() noexcept;

/// How the recurrent layers nn::LSTM and nn::GRU run a float layer over sequences of equal
/// length (no packed input of different lengths, no proj_size); everything else, and double
/// always, runs the tape's fused cell ops, one per step.
enum class RecurrentBackend {
    /// oneDNN's RNN primitives on one thread, or where a step's products reach 2^20
    /// multiply-adds (batch x gates x hidden x (input + hidden)); the tape's cells below that,
    /// where oneDNN's threading costs more than it saves. The default.
    automatic,
    /// Always the tape's cells.
    tape,
    /// oneDNN wherever it applies.
    onednn,
};

/// Chooses how recurrent layers run (see RecurrentBackend); process-wide, read when a layer
/// runs. Both ways give the same values up to float rounding and both can be differentiated
/// twice (oneDNN's layer replays its sequence with the tape's ops for that). Without oneDNN
/// in the build every setting runs the tape's cells.
void set_recurrent_backend(RecurrentBackend backend);

/// The current setting.
RecurrentBackend get_recurrent_backend();

/// Whether the build has oneDNN's RNN primitives.
bool onednn_recurrent_available() noexcept;

}  // namespace tg
