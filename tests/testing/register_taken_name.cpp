// A user op registered under a name the library already uses: TAPEGRAD_REGISTER_OP must stop
// the program before main, with the registry's message (ctest checks the output).

#include <cstdio>

#include "tapegrad/testing.hpp"

TAPEGRAD_REGISTER_OP(add, rng)
{
    return {tg::make_sample("(2,)", {tg::sample_uniform(rng, {2}, -1, 1)}, [](const auto& v) { return v[0] * 2.0; })};
}

TAPEGRAD_REGISTER_ERROR_INPUTS(add)
{
    return {};
}

int main()
{
    std::printf("main reached: the taken name was registered\n");
    return 0;
}
