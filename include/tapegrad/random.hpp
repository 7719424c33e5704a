#pragma once
/// \file random.hpp
/// The random generator behind initialisers, shuffling and dropout masks.

#include <cstdint>
#include <random>

namespace tg {

/// tapegrad's random generator type (64-bit Mersenne Twister: same sequence everywhere).
using Generator = std::mt19937_64;

/// The calling thread's default generator, used when no generator is passed.
Generator& default_generator();

/// Reseeds the calling thread's default generator (as torch.manual_seed).
void manual_seed(std::uint64_t seed);

}  // namespace tg
