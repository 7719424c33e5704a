// Every input that ever crashed a fuzz target (tests/fuzz/regressions/<target>/), and the
// targets' seeds, replayed through the targets' bodies in the normal suite: a crash,
// sanitizer report or broken promise here is a regression.

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "targets.hpp"

namespace fs = std::filesystem;

namespace {

using Target = int (*)(const std::uint8_t*, std::size_t);

std::vector<std::uint8_t> read_file(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

Target target_named(const std::string& name)
{
    if (name == "safetensors") return tg::fuzz::safetensors;
    if (name == "checkpoint") return tg::fuzz::checkpoint;
    if (name == "idx") return tg::fuzz::idx;
    if (name == "torch") return tg::fuzz::torch;
    if (name == "image") return tg::fuzz::image;
    return nullptr;
}

// Replays every file under dir/<target>/; returns how many ran.
std::size_t replay(const fs::path& dir)
{
    std::size_t n = 0;
    for (const auto& sub : fs::directory_iterator(dir)) {
        if (!sub.is_directory()) continue;
        const Target t = target_named(sub.path().filename().string());
        INFO("target directory " << sub.path());
        REQUIRE(t != nullptr);
        std::vector<fs::path> files;
        for (const auto& f : fs::directory_iterator(sub.path())) {
            if (f.is_regular_file()) files.push_back(f.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            INFO("input " << f);
            const auto bytes = read_file(f);
            CHECK(t(bytes.data(), bytes.size()) == 0);
            ++n;
        }
    }
    return n;
}

}  // namespace

TEST_CASE("every input that ever crashed a fuzz target is handled", "[fuzz][regressions]")
{
    CHECK(replay(fs::path(TAPEGRAD_FUZZ_DIR) / "regressions") >= 9);
}

TEST_CASE("the fuzz targets' seeds are valid files that load and train", "[fuzz][seeds]")
{
    const fs::path dir = fs::temp_directory_path() / ("tapegrad-fuzz-seeds-" + std::to_string(::getpid()));
    CHECK(tg::fuzz::write_seeds(dir.string()) == 17);
    CHECK(replay(dir) == 17);
    fs::remove_all(dir);
}
