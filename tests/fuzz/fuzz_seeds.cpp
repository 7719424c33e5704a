// Writes the fuzz targets' seed inputs, made by the library itself: fuzz_seeds <dir>.

#include <cstdio>

#include "targets.hpp"

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_seeds <dir>\n");
        return 2;
    }
    const int n = tg::fuzz::write_seeds(argv[1]);
    std::printf("fuzz_seeds: wrote %d seed files under %s\n", n, argv[1]);
    return 0;
}
