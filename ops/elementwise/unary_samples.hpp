#pragma once
// Sample calls shared by the unary elementwise ops whose kinks are not all at 0 (clamp's
// bounds, softplus's threshold) or that take parameters: the kit's unary shapes plus a
// zero-size middle dim, with every value kept clear of the op's kinks so that the central
// differences of gradcheck never straddle one.

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::unary_samples {

/// Where an op's sample values come from: [lo, hi), at least `gap` away from every kink.
struct Domain {
    double lo, hi;
    std::vector<double> kinks;
    double gap;
    Domain(double low, double high, std::vector<double> kink_points = {}, double min_gap = 0.0)
        : lo(low), hi(high), kinks(std::move(kink_points)), gap(min_gap)
    {}
};

/// Values drawn from `d` (a value too close to a kink is drawn again).
inline xt::xarray<double> draw(std::mt19937_64& rng, const samples::Shape& shape, const Domain& d)
{
    auto near_kink = [&](double v) {
        return std::any_of(d.kinks.begin(), d.kinks.end(), [&](double k) { return std::abs(v - k) < d.gap; });
    };
    xt::xarray<double> x = sample_uniform(rng, shape, d.lo, d.hi);
    for (double& v : x) {
        while (near_kink(v)) v = sample_uniform(rng, {}, d.lo, d.hi)();
    }
    return x;
}

/// The shapes of tg::samples::unary ((), (1,), (3,4), (2,1,3), (0,3), a transposed (4,3))
/// and (2,0,3), each label followed by `suffix` (to tell apart the parameter settings of
/// one op); `torch` is the PyTorch call with "{0}" for the input.
template <class F, class R>
std::vector<OpSample> unary(std::mt19937_64& rng, const Domain& d, F f, R ref, const std::string& torch = "",
                            const std::string& suffix = "")
{
    auto r = [ref](const auto& x) { return xt::xarray<double>(ref(x[0])); };
    std::vector<OpSample> out;
    for (const auto& shape : std::vector<samples::Shape>{{}, {1}, {3, 4}, {2, 1, 3}}) {
        std::string label = "(";
        for (std::size_t j = 0; j < shape.size(); ++j) label += (j ? "," : "") + std::to_string(shape[j]);
        label += shape.size() == 1 ? ",)" : ")";
        out.push_back(make_sample(label, {draw(rng, shape, d)}, f, r));
    }
    out.push_back(make_sample("(0,3) empty", {draw(rng, {0, 3}, d)}, f, r));
    out.push_back(make_sample("(2,0,3) empty", {draw(rng, {2, 0, 3}, d)}, f, r));
    out.push_back(make_sample(
        "transposed (4,3)", {draw(rng, {4, 3}, d)},
        [f](const auto& v) {
            using V = std::decay_t<decltype(v[0])>;
            return f(std::vector<V>{tg::transpose(v[0])});
        },
        [ref](const auto& x) { return xt::xarray<double>(ref(xt::xarray<double>(xt::transpose(x[0])))); }));
    for (auto& s : out) {
        if (!torch.empty()) s.torch = samples::fill(torch, {s.label.rfind("transposed", 0) == 0 ? "x[0].T" : "x[0]"});
        s.label += suffix;
    }
    return out;
}

/// One sample at chosen values (a 1-D input), e.g. far out in the tails where an op's
/// stable form matters, with its PyTorch call ("{0}" for the input).
template <class F, class R>
OpSample at(const std::string& label, const xt::xarray<double>& values, F f, R ref, const std::string& torch)
{
    return make_sample(label, {values}, f, [ref](const auto& x) { return xt::xarray<double>(ref(x[0])); })
        .with_torch(samples::fill(torch, {"x[0]"}));
}

}  // namespace tg::unary_samples
