// Built against the installed package with default compiler flags: records, backpropagates,
// gradchecks to second order, and writes an op of its own with the installed kit, as a
// built-in op is written; exits non-zero if anything is off.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

namespace {

// softsign(x) = x / (1 + |x|), derivative 1 / (1 + |x|)^2, written with the kit's
// elementwise helper: one formula for the SIMD kernel and for the recorded rule.
struct Softsign : tg::elementwise::Unary<Softsign> {
    static constexpr const char* name = "softsign";
    template <class V> V f(const V& x) const { return x / (1 + tg::fn::where(x < 0, -x, x)); }
    template <class V> V df(const V& g, const V& x, const V&) const
    {
        const V d = 1 + tg::fn::where(x < 0, -x, x);
        return g / (d * d);
    }
};

tg::Var<double> softsign(const tg::Var<double>& x)
{
    return tg::record(Softsign{}, x);
}

}  // namespace

int main()
{
    tg::Var<double> w = tg::parameter(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
    tg::Var<double> x = tg::constant(xt::xarray<double>{{1.0, -1.0}});
    tg::Var<double> loss = tg::sum(tg::sigmoid(tg::matmul(x, w)));
    loss.backward();
    const double value = loss.item();  // read before the next op starts a new pass
    auto f = [](const std::vector<tg::Var<double>>& v) { return softsign(tg::tanh(v[0] * 2.0)); };
    const auto r1 = tg::gradcheck(f, {xt::xarray<double>{0.5, -0.25}});
    const auto r2 = tg::gradgradcheck(f, {xt::xarray<double>{0.5, -0.25}});
    std::printf("loss %.6f, grad shape [%zu, %zu]\n%s\n%s\n", value, w.grad().shape()[0], w.grad().shape()[1],
                r1.message.c_str(), r2.message.c_str());
    return r1.ok && r2.ok && w.grad().shape()[0] == 2 ? 0 : 1;
}
