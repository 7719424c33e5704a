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
