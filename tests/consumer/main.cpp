// Built against the installed package with default compiler flags: records, backpropagates
// and gradchecks, and exits non-zero if anything is off.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

int main()
{
    tg::Var<double> w = tg::parameter(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
    tg::Var<double> x = tg::constant(xt::xarray<double>{{1.0, -1.0}});
    tg::Var<double> loss = tg::sum(tg::sigmoid(tg::matmul(x, w)));
    loss.backward();
    const double value = loss.item();  // read before the next op starts a new pass
    const auto r = tg::gradcheck([](const std::vector<tg::Var<double>>& v) { return tg::tanh(v[0] * 2.0); },
                                 {xt::xarray<double>{0.5, -0.25}});
    std::printf("loss %.6f, grad shape [%zu, %zu], %s\n", value, w.grad().shape()[0], w.grad().shape()[1],
                r.message.c_str());
    return r.ok && w.grad().shape()[0] == 2 ? 0 : 1;
}
