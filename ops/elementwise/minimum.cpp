// ops/elementwise/minimum.cpp — y = min(a, b) elementwise with numpy broadcasting; NaN where
// either is NaN (torch.minimum)
//   vjp: grad_a = grad_out where a < b, grad_out / 2 where a == b, 0 where a > b; grad_b the
//        mirror image; where a or b is NaN both get grad_out (PyTorch 1.13's rule). Each is
//        summed back to its input's shape. The masks do not depend on grad_out's history, so
//        the second derivatives in a and b are 0.

#include "unary_samples.hpp"

namespace tg {

//! public
/// The smaller of a and b elementwise, broadcast; NaN if either is; a tie splits the gradient in halves (as PyTorch).
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
//! end

namespace {

struct Minimum : elementwise::Binary<Minimum> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    template <class V> V f(const V& a, const V& b) const { return fn::minimum(a, b); }
    template <class V> V da(const V& g, const V& a, const V& b, const V&) const
    {
        return fn::where(b < a, 0, fn::where(fn::equal(a, b), g / 2, g));
    }
    template <class V> V db(const V& g, const V& a, const V& b, const V&) const
    {
        return fn::where(a < b, 0, fn::where(fn::equal(a, b), g / 2, g));
    }
};

}  // namespace

template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b)
{
    broadcast::shape(Minimum::name, input_shape(TAPEGRAD_OP_NAME, a), input_shape(TAPEGRAD_OP_NAME, b));
    return record(Minimum{}, a, b);
}

template Var<float> minimum<float>(const Var<float>&, const Var<float>&);
template Var<double> minimum<double>(const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    // The scalar forms of the generator become a rank-0 constant: torch.minimum takes tensors only.
    auto with_constant = [](const auto& x, double s) {
        using T = typename std::decay_t<decltype(x)>::value_type;
        return tg::minimum(x, tg::constant(xt::xarray<T>(static_cast<T>(s))));
    };
    auto constant_with = [](double s, const auto& x) {
        using T = typename std::decay_t<decltype(x)>::value_type;
        return tg::minimum(tg::constant(xt::xarray<T>(static_cast<T>(s))), x);
    };
    auto f = [](const auto& v) { return tg::minimum(v[0], v[1]); };
    auto ref = [](const auto& a, const auto& b) { return xt::minimum(a, b); };
    auto out =
        tg::samples::binary(rng, -2.0, 2.0, 0.0, f, with_constant, constant_with, ref, "torch.minimum({0}, {1})");
    out.push_back(tg::make_sample("(2,0,3)+(1,3) empty",
                                  {tg::sample_uniform(rng, {2, 0, 3}, -2, 2), tg::sample_uniform(rng, {1, 3}, -2, 2)},
                                  f, [](const auto& x) { return xt::xarray<double>(xt::minimum(x[0], x[1])); })
                      .with_torch("torch.minimum(x[0], x[1])"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return tg::samples::broadcast_errors([](const auto& v) { return tg::minimum(v[0], v[1]); });
}
