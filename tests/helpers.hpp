#pragma once
// What the test files share: a scratch directory, PyTorch reference arrays read from the
// generator scripts' JSON, the worst relative difference between two arrays, and whole-file
// reads and writes.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>

#include "tapegrad/gradcheck.hpp"

namespace tg_test {

/// gradcheck and gradgradcheck of a module's loss over its parameters, each failure shown
/// with the check's message.
inline void check_twice_differentiable(tg::nn::Module<double>& module, const std::function<tg::Var<double>()>& loss)
{
    const tg::GradcheckResult first = tg::gradcheck(module, loss);
    INFO(first.message);
    CHECK(first.ok);
    const tg::GradcheckResult second = tg::gradgradcheck(module, loss);
    INFO(second.message);
    CHECK(second.ok);
}

/// A new, empty directory under the system's temporary directory (its name starts with
/// `prefix`, the rest is random), removed with its contents when the object goes.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "tapegrad-test")
    {
        std::random_device device;
        do {
            path = std::filesystem::temp_directory_path() /
                   (prefix + "-" + std::to_string(device()) + std::to_string(device()));
        } while (!std::filesystem::create_directory(path));
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// The path of `name` inside the directory.
    std::string file(const std::string& name) const { return (path / name).string(); }
    /// The names of what the directory holds, sorted.
    std::vector<std::string> entries() const
    {
        std::vector<std::string> names;
        for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }

    std::filesystem::path path;
};

/// An array written by a reference generator as {"shape": [...], "values" or "data": [...]},
/// values in row-major order; non-finite values are the strings "nan", "inf" and "-inf"
/// (JSON has no number for them).
inline xt::xarray<double> json_array(const nlohmann::json& j)
{
    const auto shape = j.at("shape").get<std::vector<std::size_t>>();
    const nlohmann::json& values = j.contains("values") ? j.at("values") : j.at("data");
    xt::xarray<double> a = xt::zeros<double>(shape);
    REQUIRE(a.size() == values.size());
    std::size_t k = 0;
    for (const nlohmann::json& v : values) {
        if (v.is_string()) {
            const std::string s = v.get<std::string>();
            REQUIRE((s == "nan" || s == "inf" || s == "-inf"));
            a.data()[k++] = s == "nan" ? std::nan("") : (s == "inf" ? HUGE_VAL : -HUGE_VAL);
        } else {
            a.data()[k++] = v.get<double>();
        }
    }
    return a;
}

/// The largest |got - want| / max(|want|, floor) over the elements (the shapes must be equal;
/// any dtype). NaN where `want` has NaN, and the same infinity, count as equal; any other NaN
/// makes the result infinite.
template <class A, class B> double worst_relative(const A& got, const B& want, double floor)
{
    REQUIRE(std::vector<std::size_t>(got.shape().begin(), got.shape().end()) ==
            std::vector<std::size_t>(want.shape().begin(), want.shape().end()));
    double worst = 0;
    for (std::size_t k = 0; k < want.size(); ++k) {
        const double a = static_cast<double>(got.data()[k]), b = static_cast<double>(want.data()[k]);
        if (std::isnan(a) && std::isnan(b)) continue;
        if (std::isinf(b) && a == b) continue;
        const double err = std::abs(a - b) / std::max(std::abs(b), floor);
        worst = std::max(worst, std::isnan(err) ? HUGE_VAL : err);
    }
    return worst;
}

/// A generator's JSON under tests/reference (TAPEGRAD_REFERENCE_DIR, set by the build for the
/// test targets); a missing file fails the test and names the script that writes it.
inline nlohmann::json reference_json(const std::string& dir, const char* file, const char* generator)
{
    std::ifstream in(dir + "/" + file);
    INFO("tests/reference/" << file << " is missing; run tests/reference/" << generator);
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

/// A reference case's "state_dict": {name: array} as a module's state dict.
inline std::map<std::string, xt::xarray<double>> state_dict_of(const nlohmann::json& c)
{
    std::map<std::string, xt::xarray<double>> s;
    for (const auto& [name, value] : c.at("state_dict").items()) s[name] = json_array(value);
    return s;
}

/// Checks that `got` is within `tolerance` of the reference array `want`, relative to
/// max(|want|, floor), and reports the worst difference under `what`.
inline void check_close(const std::string& what, const xt::xarray<double>& got, const nlohmann::json& want,
                        double floor, double tolerance)
{
    const double error = worst_relative(got, json_array(want), floor);
    INFO(what << ": worst relative difference " << error);
    CHECK(error <= tolerance);
}

/// The whole file's bytes ("" when it cannot be opened).
inline std::string read_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes `bytes` as the whole file.
inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes)
{
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

}  // namespace tg_test
