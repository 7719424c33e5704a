// The generic op tests: every built-in op (one per file in ops/) goes through
// tg::testing::check_op, which holds the one implementation of each check: the reference
// forward value, gradcheck and gradgradcheck in float64, the fused first-order kernel
// against the vjp rule, gradient shapes, retain_graph accumulation, float32 against
// float64, and the error inputs. One test case per check, so that a failure names its
// check and the suite runs them side by side. A new op is covered the moment its file
// exists.

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"
#include "tapegrad/testing.hpp"

namespace {

// The built-in ops: the names of the files in ops/, sorted.
std::vector<std::string> builtin_ops()
{
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(TAPEGRAD_OPS_DIR)) {
        if (entry.path().extension() == ".cpp") names.push_back(entry.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

// Runs one check on every built-in op; each failure line fails the test case. Returns how
// many samples (or error inputs) the check ran on, over all ops.
std::size_t check_every_op(const std::string& check)
{
    tg::testing::CheckOptions options;
    options.checks = {check};
    std::size_t runs = 0;
    for (const auto& name : builtin_ops()) {
        const tg::testing::CheckReport r = tg::testing::check_op(name, options);
        INFO("samples drawn with tg::sample_seed(\"" << name << "\")");
        for (const auto& line : r.failures) FAIL_CHECK(line);
        for (const auto& c : r.checks) {
            if (c.check == check) runs += c.runs;
        }
    }
    return runs;
}

}  // namespace

TEST_CASE("every built-in op's sample generator gives samples with distinct labels", "[ops][registry]")
{
    CHECK(check_every_op("samples") == builtin_ops().size());
}

TEST_CASE("every built-in op computes its reference forward value", "[ops][forward]")
{
    CHECK(check_every_op("reference") > 100);
}

TEST_CASE("every built-in op passes gradcheck in float64 at tight tolerance", "[ops][gradcheck]")
{
    CHECK(check_every_op("gradcheck") > 100);
}

TEST_CASE("every built-in op passes gradgradcheck in float64: it is twice differentiable", "[ops][gradgradcheck]")
{
    CHECK(check_every_op("gradgradcheck") > 100);
}

TEST_CASE("every built-in op's fused first-order kernel agrees with its vjp rule", "[ops][rule]")
{
    CHECK(check_every_op("kernel_vs_rule") > 100);
}

TEST_CASE("every built-in op gives each input a gradient of the input's shape", "[ops][shapes]")
{
    CHECK(check_every_op("grad_shapes") > 100);
}

TEST_CASE("two backward passes with retain_graph accumulate exactly twice", "[ops][accumulate]")
{
    CHECK(check_every_op("retain_graph") > 100);
}

TEST_CASE("every built-in op agrees in float32 with float64", "[ops][float32]")
{
    CHECK(check_every_op("float32") > 100);
}

TEST_CASE("every built-in op refuses its error inputs with a tg::Error that names it", "[ops][error_inputs]")
{
    CHECK(check_every_op("error_inputs") > 100);
}

TEST_CASE("every built-in op that can be misused has error inputs", "[ops][error_inputs]")
{
    // These accept every call their signature allows: one Var of any shape and any values
    // (an undefined or stale Var is the misuse suite's, tests/ops/test_misuse.cpp).
    const std::set<std::string> accept_everything{"abs",   "cos",         "exp",    "expm1", "gelu",    "log",
                                                  "log1p", "log_sigmoid", "neg",    "relu",  "sigmoid", "silu",
                                                  "sin",   "sqrt",        "square", "tanh"};
    const auto names = builtin_ops();
    for (const auto& info : tg::registered_ops()) {
        if (!std::binary_search(names.begin(), names.end(), info.name)) continue;
        const std::size_t n = info.error_inputs ? info.error_inputs().size() : 0;
        INFO(info.name << " has " << n << " error inputs");
        if (accept_everything.count(info.name) != 0) {
            CHECK(n == 0);
        } else {
            CHECK(n > 0);
        }
    }
}

TEST_CASE("every op file in ops/ has a registration under its own name", "[ops][registry]")
{
    std::set<std::string> names;
    for (const auto& info : tg::registered_ops()) names.insert(info.name);
    const auto files = builtin_ops();
    for (const auto& file : files) {
        INFO("ops/.../" << file << ".cpp has no registration named " << file);
        CHECK(names.count(file) == 1);
    }
    CHECK(files.size() >= 20);
    for (const auto& required : {"add",
                                 "sub",
                                 "mul",
                                 "div",
                                 "neg",
                                 "matmul",
                                 "transpose",
                                 "reshape",
                                 "sum",
                                 "mean",
                                 "exp",
                                 "log",
                                 "sqrt",
                                 "square",
                                 "pow",
                                 "sigmoid",
                                 "tanh",
                                 "relu",
                                 "softmax",
                                 "log_softmax",
                                 "mse_loss",
                                 "cross_entropy",
                                 "binary_cross_entropy_with_logits"}) {
        INFO(required);
        CHECK(names.count(required) == 1);
    }
}
