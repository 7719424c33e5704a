// Fails (exit status != 0) where the compiler, with the flags under test, builds a small
// constant aggregate wrongly. GCC 12.2 does so (its PR target/108599) whenever it may copy
// 32 bytes or more at a time by pieces: AVX2 with a tuning that asks for it (skylake-avx512,
// icelake-*, sapphirerapids), or any AVX-512 target. A 32-byte constant such as {1, 1, 0, 0}
// is then stored as one broadcast of its first element, so nn::Conv2d(1, 10, 5, {}) received
// padding {1, 1}.
#include <cstdio>

#include "probe.hpp"

using namespace tapegrad_probe;

int main()
{
    int bad = check_defaults({});
    bad |= check_padding(0, {});
    bad |= check_padding(2, {{1, 1}, {2, 2}, {1, 1}, 1, true});
    bad |= check_quad(16, 0, 0, 0, {16, 0, 0, 0});
    bad |= check_quad(16, 16, 0, 0, {16, 16, 0, 0});
    bad |= check_quad(7, 7, 7, 9, {7, 7, 7, 9});
    bad |= check_list({1.0, 1.0, 1.0, 0.0}, 1.0, 1.0, 1.0, 0.0);
    bad |= check_list({-1.0, 2.0, 2.0, 2.0}, -1.0, 2.0, 2.0, 2.0);
    std::printf("codegen check: %s (code %d)\n", bad == 0 ? "constants arrive intact" : "constants arrive WRONG", bad);
    return bad;
}
