#pragma once
/// \file testing.hpp
/// The op-testing kit: register an op with sample calls and error inputs, then check it
/// with every generic check the library's own ops pass. Not included by tapegrad.hpp.
///
/// \code
/// #include <tapegrad/testing.hpp>
///
/// TAPEGRAD_REGISTER_OP(my_softplus, rng) { return {tg::make_sample(...)}; }
/// TAPEGRAD_REGISTER_ERROR_INPUTS(my_softplus) { return {tg::make_error_input(...)}; }
///
/// int main()
/// {
///     const tg::testing::CheckReport r = tg::testing::check_op("my_softplus");
///     for (const auto& line : r.failures) std::cerr << line << '\n';
///     return r ? 0 : 1;
/// }
/// \endcode
///
/// The checks, each over every sample (check_names() lists them in this order):
/// - `samples`: the generator gives at least one sample, with distinct labels;
/// - `reference`: the forward value against the sample's reference (1e-12), and at least
///   one sample has a reference;
/// - `gradcheck`: first-order gradients against central differences in float64
///   (eps 1e-6, atol 1e-8, rtol 1e-6);
/// - `gradgradcheck`: the same one order up, through the op's vjp rule;
/// - `kernel_vs_rule`: the fused first-order kernel against the vjp rule (1e-12);
/// - `grad_shapes`: every input gets a gradient of its own shape;
/// - `retain_graph`: two backward passes with retain_graph accumulate exactly twice;
/// - `float32`: values and gradients in float32 against float64;
/// - `error_inputs`: every error input throws a tg::Error that starts with the op's name
///   and holds the expected text, in float64 and in float32.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/kit/samples.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/testing/registry.hpp"

namespace tg::testing {

/// How one check went over an op's samples (or error inputs).
struct CheckCount {
    std::string check;     ///< the check's name, e.g. "gradcheck"
    std::size_t runs = 0;  ///< samples (or error inputs) it ran on
    /// how many of those runs failed
    std::size_t failed = 0;
};

/// What check_op found. Converts to bool (true when every check passed).
struct CheckReport {
    /// Whether every check passed.
    bool ok = true;
    /// One readable line per failure: "<op>: <check> on '<sample>': <detail>", the detail
    /// saying which input and element disagree and by how much, or what was thrown.
    std::vector<std::string> failures;
    /// Every check that ran, in order, with its counts.
    std::vector<CheckCount> checks;
    /// ok.
    explicit operator bool() const { return ok; }
};

/// Which checks to run, and on which draw of the samples.
struct CheckOptions {
    /// Names from check_names(); empty: all of them. `samples` always runs.
    std::vector<std::string> checks;
    /// The seed of the samples' random engine; 0: tg::sample_seed(op name), the draw the
    /// test suite and the PyTorch references use.
    std::uint64_t seed = 0;
};

/// The generic checks, in the order check_op runs them.
const std::vector<std::string>& check_names();

/// Runs every generic check on the registered op `op_name`, over all its samples and
/// error inputs, and reports per check. Throws a tg::Error naming `op_name` when no such
/// op is registered. Records on the calling thread's tape and drops what it recorded;
/// call it between passes (it runs backward passes of its own).
CheckReport check_op(const std::string& op_name);

/// The same with a choice of checks or seed; throws a tg::Error for an unknown check.
CheckReport check_op(const std::string& op_name, const CheckOptions& options);

/// The same for an op description that need not be registered (throws a tg::Error when it
/// has no name or no sample generator).
CheckReport check_op(const OpInfo& op, const CheckOptions& options = {});

}  // namespace tg::testing
