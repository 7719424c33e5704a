#pragma once
// The dropout masks' randomness (dropout, dropout2d): one 64-bit draw from the caller's
// tg::Generator keys a counter-based hash that gives element (or channel) i a 24-bit
// uniform, so a mask costs one generator call, the loop vectorises, and float and double
// get the same mask from a generator in the same state.

#include <cstddef>
#include <cstdint>

namespace tg::dropout_mask {

// A 32-bit finaliser (avalanching: every input bit flips each output bit with
// probability about one half).
inline std::uint32_t mix32(std::uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

// Position i's uniform in [0, 2^24) for the draw `key`.
inline std::uint32_t uniform24(std::size_t i, std::uint64_t key)
{
    const auto lo = static_cast<std::uint32_t>(key), hi = static_cast<std::uint32_t>(key >> 32);
    return mix32(mix32(static_cast<std::uint32_t>(i) ^ lo) + hi) >> 8;
}

// Drop when the uniform falls below this (p in steps of 2^-24).
inline std::uint32_t threshold(double p)
{
    return static_cast<std::uint32_t>(p * 16777216.0);
}

}  // namespace tg::dropout_mask
