// Catch2's main, with the thread count fixed for the whole run.
//
// By default tapegrad's thread count follows the machine's load, which ctest's parallel jobs
// change from moment to moment; a test that compares two results bit for bit, counts the heap
// or checks which path a layer takes must not see the count change between two of its steps.
// Tests of the default itself call tg::reset_num_threads and set the count back.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tapegrad/runtime.hpp"

int main(int argc, char* argv[])
{
    tg::set_num_threads(tg::get_num_threads());
    return Catch::Session().run(argc, argv);
}
