#pragma once
/// \file testing/registry.hpp
/// The op registry: what an op tells the generic checks (tg::testing::check_op and the
/// test suite) about itself. An OpInfo gives sample calls, each with a reference value,
/// and error inputs, calls that must be refused with a tg::Error naming the op.
///
/// A built-in op in `ops/` registers with TAPEGRAD_OP_SAMPLES and TAPEGRAD_OP_ERROR_INPUTS
/// (the build names the op after its file); an op written outside the library registers
/// with TAPEGRAD_REGISTER_OP and TAPEGRAD_REGISTER_ERROR_INPUTS, or with tg::register_op.
/// Included by tapegrad/testing.hpp, which adds the checks themselves.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/error.hpp"
#include "tapegrad/var.hpp"

namespace tg {

/// One way to call an op: input values (float64; converted for the float32 pass), the
/// call itself for both scalar types, and an independent computation of the expected
/// forward value (a plain formula on arrays, or values from PyTorch).
struct OpSample {
    /// A short description shown in failures, e.g. the shapes ("(3,4) with (4,)").
    std::string label;
    /// The input values, float64.
    std::vector<xt::xarray<double>> inputs;
    /// The call, in float64.
    std::function<Var<double>(const std::vector<Var<double>>&)> f64;
    /// The same call, in float32.
    std::function<Var<float>(const std::vector<Var<float>>&)> f32;
    /// The expected forward value from the inputs, computed independently of the op.
    std::function<xt::xarray<double>(const std::vector<xt::xarray<double>>&)> reference;
    /// The same call in PyTorch, a Python expression over the float64 input tensors x[0],
    /// x[1], ... (e.g. "torch.sum(x[0], dim=1)"). scripts/update-op-reference evaluates it
    /// with PyTorch to record the forward value and the first- and second-order gradients
    /// that tests/ops/test_op_reference.cpp replays. Empty: no PyTorch counterpart.
    std::string torch;
    /// Inputs the op also accepts undefined (an optional weight or bias given as
    /// `tg::Var<T>()`): the misuse tests do not expect an error for those.
    std::vector<std::size_t> optional;

    /// Sets `torch` (for chaining after make_sample).
    OpSample&& with_torch(std::string expression) &&
    {
        torch = std::move(expression);
        return std::move(*this);
    }
    /// Sets `optional` (for chaining after make_sample).
    OpSample&& with_optional(std::vector<std::size_t> indices) &&
    {
        optional = std::move(indices);
        return std::move(*this);
    }
};

/// Builds an OpSample from a generic lambda `[](const auto& v) { return tg::mul(v[0], v[1]); }`
/// and a reference `[](const auto& x) { return xt::xarray<double>(x[0] * x[1]); }`.
template <class F, class R>
OpSample make_sample(std::string label, std::vector<xt::xarray<double>> inputs, F f, R reference)
{
    OpSample s;
    s.label = std::move(label);
    s.inputs = std::move(inputs);
    s.f64 = [f](const std::vector<Var<double>>& v) { return f(v); };
    s.f32 = [f](const std::vector<Var<float>>& v) { return f(v); };
    s.reference = [reference](const std::vector<xt::xarray<double>>& x) { return xt::xarray<double>(reference(x)); };
    return s;
}

/// An OpSample without a reference, for calls whose value has no independent formula
/// (a random mask); every op needs at least one sample with a reference.
template <class F> OpSample make_sample(std::string label, std::vector<xt::xarray<double>> inputs, F f)
{
    OpSample s;
    s.label = std::move(label);
    s.inputs = std::move(inputs);
    s.f64 = [f](const std::vector<Var<double>>& v) { return f(v); };
    s.f32 = [f](const std::vector<Var<float>>& v) { return f(v); };
    return s;
}

/// A call that the op must refuse: it must throw a tg::Error whose message starts with
/// the op's name followed by ": " and, when `message` is not empty, contains `message`.
/// The inputs become parameters (requiring grad, so the op would be recorded if it let
/// the call through), in float64 and again in float32.
struct ErrorInput {
    std::string label;  ///< what is wrong with the call, e.g. "inner dimensions differ"
    /// The input values, float64 (converted for the float32 call).
    std::vector<xt::xarray<double>> inputs;
    /// The call, in float64.
    std::function<void(const std::vector<Var<double>>&)> f64;
    /// The same call, in float32.
    std::function<void(const std::vector<Var<float>>&)> f32;
    std::string message;  ///< a part of the expected message; empty: any message naming the op
};

/// Builds an ErrorInput from a generic lambda, e.g.
/// `make_error_input("inner dimensions differ", {a, b}, [](const auto& v) { return tg::matmul(v[0], v[1]); },
/// "inner dimensions differ: a is [2, 3], b is [4, 2]")`. What the lambda returns is ignored.
template <class F>
ErrorInput make_error_input(std::string label, std::vector<xt::xarray<double>> inputs, F f, std::string message = {})
{
    ErrorInput e;
    e.label = std::move(label);
    e.inputs = std::move(inputs);
    e.f64 = [f](const std::vector<Var<double>>& v) { static_cast<void>(f(v)); };
    e.f32 = [f](const std::vector<Var<float>>& v) { static_cast<void>(f(v)); };
    e.message = std::move(message);
    return e;
}

/// The registration entry of one op: its name (for a built-in op also its file name in
/// `ops/`), a generator of sample calls that covers broadcasting, size-1 dims and rank-0
/// scalars with inputs drawn inside the op's domain, and a generator of error inputs
/// (empty, or returning none, for an op that accepts every call its signature allows).
struct OpInfo {
    /// The op's registered name.
    std::string name;
    /// Draws the op's sample calls from the given engine.
    std::function<std::vector<OpSample>(std::mt19937_64&)> samples;
    /// (Default-initialised, so that `OpInfo{name, samples}` still compiles without warnings.)
    std::function<std::vector<ErrorInput>()> error_inputs = {};
};

/// A seed for drawing an op's samples that depends on its name only (FNV-1a), so that adding
/// an op leaves every other op's samples, and their reference values, unchanged.
inline std::uint64_t sample_seed(const std::string& op_name) noexcept
{
    std::uint64_t h = 14695981039346656037ull;
    for (const char ch : op_name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    return h;
}

/// Every registered op: the built-in ones, then those added with register_op.
const std::vector<OpInfo>& registered_ops();

/// Adds an op to the registry so that the generic checks cover it. Throws a tg::Error
/// when the name is empty or taken, or when there is no sample generator.
void register_op(OpInfo info);

/// Random values in [lo, hi) with the given shape (for sample generators).
xt::xarray<double> sample_uniform(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo, double hi);

/// Like sample_uniform, but every value is at least `gap` away from zero (for ops with a
/// kink or pole at zero such as relu or division).
xt::xarray<double> sample_away_from_zero(std::mt19937_64& rng, const std::vector<std::size_t>& shape, double lo,
                                         double hi, double gap);

namespace detail {
/// register_op for a static initialiser (TAPEGRAD_REGISTER_OP); returns true.
bool register_op_at_start(OpInfo info);
}  // namespace detail

}  // namespace tg

#define TAPEGRAD_OP_CAT_(a, b) a##b
#define TAPEGRAD_OP_CAT(a, b) TAPEGRAD_OP_CAT_(a, b)

/// In a built-in op's file in ops/: the body of its sample generator, given the random
/// engine `RNG`, returning std::vector<tg::OpSample>. It registers the op under the file's
/// name (the build defines TAPEGRAD_OP_NAME and TAPEGRAD_OP_ID from it), and the build
/// calls one registration per file in ops/, so a file without one does not link. The file
/// also needs TAPEGRAD_OP_ERROR_INPUTS.
///
/// TAPEGRAD_OP_ERROR_INPUTS(): the body of the op's error-input generator, returning
/// std::vector<tg::ErrorInput>: every misuse the op can be given (shapes that do not
/// match, an axis out of range, an invalid hyperparameter), or none, with a comment why,
/// for an op that accepts every call its signature allows.
///
/// A build that runs no op test (TAPEGRAD_NO_OP_SAMPLES: the ThreadSanitizer build) keeps
/// the registration but turns both bodies into function templates that are never
/// instantiated: the op then has no samples, and its file compiles about a third faster.
// The engine and NAME are declarator names in these macros, where parentheses cannot go.
// NOLINTBEGIN(bugprone-macro-parentheses)
#if defined(TAPEGRAD_SIMD_VARIANT)
// The wide SIMD copy of an op file (kit/simd.hpp): no registration, which the library's own
// copy of the file holds.
#define TAPEGRAD_OP_SAMPLES(RNG) TAPEGRAD_DETAIL_UNUSED_SAMPLES(RNG)
#define TAPEGRAD_OP_ERROR_INPUTS() TAPEGRAD_DETAIL_UNUSED_ERROR_INPUTS()
#elif defined(TAPEGRAD_NO_OP_SAMPLES)
#define TAPEGRAD_OP_SAMPLES(RNG)                                                                                       \
    ::tg::OpInfo TAPEGRAD_OP_CAT(tapegrad_op_info_, TAPEGRAD_OP_ID)()                                                  \
    {                                                                                                                  \
        return ::tg::OpInfo{TAPEGRAD_OP_NAME, [](std::mt19937_64&) { return std::vector<::tg::OpSample>{}; }, {}};     \
    }                                                                                                                  \
    TAPEGRAD_DETAIL_UNUSED_SAMPLES(RNG)
#define TAPEGRAD_OP_ERROR_INPUTS() TAPEGRAD_DETAIL_UNUSED_ERROR_INPUTS()
#else
#define TAPEGRAD_OP_SAMPLES(RNG)                                                                                       \
    static std::vector<::tg::OpSample> TAPEGRAD_OP_CAT(tapegrad_op_samples_, TAPEGRAD_OP_ID)(std::mt19937_64 & RNG);   \
    static std::vector<::tg::ErrorInput> TAPEGRAD_OP_CAT(tapegrad_op_error_inputs_, TAPEGRAD_OP_ID)();                 \
    ::tg::OpInfo TAPEGRAD_OP_CAT(tapegrad_op_info_, TAPEGRAD_OP_ID)()                                                  \
    {                                                                                                                  \
        return ::tg::OpInfo{TAPEGRAD_OP_NAME, &TAPEGRAD_OP_CAT(tapegrad_op_samples_, TAPEGRAD_OP_ID),                  \
                            &TAPEGRAD_OP_CAT(tapegrad_op_error_inputs_, TAPEGRAD_OP_ID)};                              \
    }                                                                                                                  \
    static std::vector<::tg::OpSample> TAPEGRAD_OP_CAT(tapegrad_op_samples_, TAPEGRAD_OP_ID)(std::mt19937_64 & RNG)
#define TAPEGRAD_OP_ERROR_INPUTS()                                                                                     \
    static std::vector<::tg::ErrorInput> TAPEGRAD_OP_CAT(tapegrad_op_error_inputs_, TAPEGRAD_OP_ID)()
#endif
/// The sample generator's body as a function template that is never instantiated (the builds
/// without samples).
#define TAPEGRAD_DETAIL_UNUSED_SAMPLES(RNG)                                                                            \
    template <class Engine>                                                                                            \
    [[maybe_unused]] static std::vector<::tg::OpSample> TAPEGRAD_OP_CAT(tapegrad_op_samples_,                          \
                                                                        TAPEGRAD_OP_ID)(Engine & RNG)
/// The error-input generator's body as a function template that is never instantiated.
#define TAPEGRAD_DETAIL_UNUSED_ERROR_INPUTS()                                                                          \
    template <class Unused = void>                                                                                     \
    [[maybe_unused]] static std::vector<::tg::ErrorInput> TAPEGRAD_OP_CAT(tapegrad_op_error_inputs_, TAPEGRAD_OP_ID)()

/// In a user's source file, at namespace scope: registers the op NAME (an identifier, which
/// is also the registered name) when the program starts, with the body that follows as its
/// sample generator, given the random engine `RNG` and returning std::vector<tg::OpSample>.
/// TAPEGRAD_REGISTER_ERROR_INPUTS(NAME) must follow in the same file with the body of its
/// error-input generator (returning none for an op that accepts every call):
/// \code
/// TAPEGRAD_REGISTER_OP(my_softplus, rng)
/// {
///     return {tg::make_sample("(3,4)", {tg::sample_uniform(rng, {3, 4}, -5, 5)},
///                             [](const auto& v) { return my_softplus(v[0]); },
///                             [](const auto& x) { return xt::log1p(xt::exp(x[0])); })};
/// }
/// TAPEGRAD_REGISTER_ERROR_INPUTS(my_softplus) { return {}; }  // every shape and value is valid
/// \endcode
/// A name that cannot be registered (taken, or empty) stops the program at start with the
/// registry's message on stderr.
#define TAPEGRAD_REGISTER_OP(NAME, RNG)                                                                                \
    static std::vector<::tg::OpSample> TAPEGRAD_OP_CAT(tapegrad_samples_, NAME)(std::mt19937_64 & RNG);                \
    static std::vector<::tg::ErrorInput> TAPEGRAD_OP_CAT(tapegrad_error_inputs_, NAME)();                              \
    [[maybe_unused]] static const bool TAPEGRAD_OP_CAT(tapegrad_registered_, NAME) =                                   \
        ::tg::detail::register_op_at_start(::tg::OpInfo{#NAME, &TAPEGRAD_OP_CAT(tapegrad_samples_, NAME),              \
                                                        &TAPEGRAD_OP_CAT(tapegrad_error_inputs_, NAME)});              \
    static std::vector<::tg::OpSample> TAPEGRAD_OP_CAT(tapegrad_samples_, NAME)(std::mt19937_64 & RNG)

/// The error inputs of an op registered with TAPEGRAD_REGISTER_OP(NAME, ...): the body
/// that follows returns std::vector<tg::ErrorInput>.
#define TAPEGRAD_REGISTER_ERROR_INPUTS(NAME)                                                                           \
    static std::vector<::tg::ErrorInput> TAPEGRAD_OP_CAT(tapegrad_error_inputs_, NAME)()
// NOLINTEND(bugprone-macro-parentheses)

/// \def TAPEGRAD_OP_CAT(a, b)
/// Pastes a and b into one identifier after expanding them (registration names from TAPEGRAD_OP_ID).

/// \def TAPEGRAD_OP_ERROR_INPUTS()
/// In a built-in op's file in ops/, after TAPEGRAD_OP_SAMPLES: the body of the op's error-input generator,
/// returning std::vector<tg::ErrorInput> (see TAPEGRAD_OP_SAMPLES).
