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

}  // namespace tg
