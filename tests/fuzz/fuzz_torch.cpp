// libFuzzer entry point: the torch target (see targets.hpp).

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    return tg::fuzz::torch(data, size);
}
