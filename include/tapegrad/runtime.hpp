#pragma once
/// \file runtime.hpp
/// Process-wide settings.

#include <string>

#include "tapegrad/error.hpp"

namespace tg {

/// Threads used by matrix products (BLAS) and by float convolutions (oneDNN, through
/// OpenMP). Elementwise work always runs on the calling thread, so the two never compete
/// for the cores. Default: the libraries' own choice (all cores, or OPENBLAS_NUM_THREADS
/// and OMP_NUM_THREADS).
void set_num_threads(int n);

/// The current thread count of matrix products.
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
