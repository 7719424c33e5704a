// What the configure-time code generation check passes across a translation unit boundary:
// small aggregates built from constants, as tapegrad's layer options and a user's braced
// arguments are. Kept free of any library header so that it compiles in a second.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace tapegrad_probe {

// Laid out as nn::Conv2dOptions: 32 bytes of size_t pairs, then more.
struct Options {
    std::array<std::size_t, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1};
    std::size_t groups = 1;
    bool bias = true;
};

struct Quad {
    std::uint64_t a, b, c, d;
};

// Each returns 0 when its argument arrived as the caller wrote it, else a nonzero code.
int check_defaults(Options o);
int check_padding(std::size_t in, Options o);
int check_quad(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, Quad q);
int check_list(std::initializer_list<double> values, double w, double x, double y, double z);

}  // namespace tapegrad_probe
