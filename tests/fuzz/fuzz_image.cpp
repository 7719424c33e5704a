// libFuzzer entry point: the image target (see targets.hpp).

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    return tg::fuzz::image(data, size);
}
