// ops/shape/concat.cpp — y = x_0, x_1, ... joined along `axis` (all other dims equal)
//   vjp: grad_x_i = narrow(grad_out, axis, offset_i, len_i)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// The Vars joined along axis; every other dim must agree (torch.cat).
template <class T> Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis);
//! end

namespace {

struct Concat {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    std::size_t axis;

    template <class T> void forward(OpContext<T>& c) const
    {
        auto shape = c.input(0).shape();
        std::size_t total = 0;
        for (std::size_t i = 0; i < c.num_inputs(); ++i) total += c.input(i).shape()[axis];
        shape[axis] = total;
        T* y = c.output(shape).data();
        const axis::Split out = axis::split(name, shape, static_cast<std::ptrdiff_t>(axis));
        std::size_t offset = 0;
        for (std::size_t i = 0; i < c.num_inputs(); ++i) {
            const auto& x = c.input(i);
            const std::size_t len = x.shape()[axis], block = len * out.inner;
            for (std::size_t o = 0; o < out.outer; ++o) {
                std::copy(x.data() + o * block, x.data() + (o + 1) * block, y + (o * total + offset) * out.inner);
            }
            offset += len;
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        const axis::Split out = axis::split(name, g.shape(), static_cast<std::ptrdiff_t>(axis));
        std::size_t offset = 0;
        for (std::size_t i = 0; i < c.num_inputs(); ++i) {
            const std::size_t len = c.input(i).shape()[axis], block = len * out.inner;
            c.add_grad(i, c.input(i).shape(), [&](T* dst, bool add) {
                for (std::size_t o = 0; o < out.outer; ++o)
                    kernel::add_or_assign(dst + o * block, g.data() + (o * out.len + offset) * out.inner, block, add);
            });
            offset += len;
        }
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        std::size_t offset = 0;
        for (std::size_t i = 0; i < v.num_inputs(); ++i) {
            const std::size_t len = v.input_shape(i)[axis];
            if (v.needs_grad(i)) v.add_grad(i, narrow(v.grad_out(), static_cast<std::ptrdiff_t>(axis), offset, len));
            offset += len;
        }
    }
};

}  // namespace

template <class T> Var<T> concat(const std::vector<Var<T>>& xs, std::ptrdiff_t axis)
{
    if (xs.empty()) throw Error(std::string(Concat::name) + ": no inputs given");
    const auto& first = input_shape(TAPEGRAD_OP_NAME, xs[0]);
    if (first.empty()) throw Error(std::string(Concat::name) + ": cannot join rank-0 Vars (unsqueeze them first)");
    const std::size_t a = axis::resolve(Concat::name, first, axis);
    for (std::size_t i = 1; i < xs.size(); ++i) {
        const auto& s = input_shape(TAPEGRAD_OP_NAME, xs[i]);
        bool ok = s.size() == first.size();
        for (std::size_t j = 0; ok && j < s.size(); ++j) ok = j == a || s[j] == first[j];
        if (!ok) {
            throw Error(std::string(Concat::name) + ": input " + std::to_string(i) + " has shape " + format_shape(s) +
                        " but input 0 has " + format_shape(first) + "; only axis " + std::to_string(axis) +
                        " may differ");
        }
    }
    return record(Concat{a}, xs);
}

template Var<float> concat<float>(const std::vector<Var<float>>&, std::ptrdiff_t);
template Var<double> concat<double>(const std::vector<Var<double>>&, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<xt::xarray<double>> in, std::ptrdiff_t a) {
        const std::size_t n = in.size();
        std::string args;
        for (std::size_t i = 0; i < n; ++i) args += (i ? ", x[" : "x[") + std::to_string(i) + "]";
        out.push_back(tg::make_sample(
                          std::move(label), std::move(in), [a](const auto& v) { return tg::concat(v, a); },
                          [a](const auto& x) {
                              const std::size_t r = static_cast<std::size_t>(
                                  a < 0 ? a + static_cast<std::ptrdiff_t>(x[0].dimension()) : a);
                              xt::xarray<double> y = x[0];
                              for (std::size_t i = 1; i < x.size(); ++i) y = xt::concatenate(xt::xtuple(y, x[i]), r);
                              return y;
                          })
                          .with_torch("torch.cat([" + args + "], dim=" + std::to_string(a) + ")"));
    };
    sample("(2,3)+(4,3) axis 0", {u({2, 3}), u({4, 3})}, 0);
    sample("(3,2)+(3,1)+(3,4) axis 1", {u({3, 2}), u({3, 1}), u({3, 4})}, 1);
    sample("(2,3,4)+(2,1,4) axis -2", {u({2, 3, 4}), u({2, 1, 4})}, -2);
    sample("(5,)+(2,) axis 0", {u({5}), u({2})}, 0);
    sample("(2,3) alone axis 1", {u({2, 3})}, 1);
    sample("(0,3)+(2,3) axis 0", {u({0, 3}), u({2, 3})}, 0);
    out.push_back(tg::make_sample(
                      "transposed (3,2)+(2,2) axis 0", {u({2, 3}), u({2, 2})},
                      [](const auto& v) {
                          using V = std::decay_t<decltype(v[0])>;
                          return tg::concat(std::vector<V>{tg::transpose(v[0]), v[1]}, 0);
                      },
                      [](const auto& x) {
                          return xt::xarray<double>(
                              xt::concatenate(xt::xtuple(xt::xarray<double>(xt::transpose(x[0])), x[1]), 0));
                      })
                      .with_torch("torch.cat([x[0].T, x[1]], dim=0)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) {
        using V = std::decay_t<decltype(x)>;
        return tg::concat(std::vector<V>{x, x}, axis);
    });
    errors.pop_back();  // a rank-0 input has its own message, below
    errors.push_back(tg::make_error_input(
        "no inputs", {}, [](const auto& v) { return tg::concat(std::decay_t<decltype(v)>{}, 0); }, "no inputs given"));
    errors.push_back(tg::make_error_input(
        "rank-0 inputs", {xt::xarray<double>(1.0), xt::xarray<double>(2.0)},
        [](const auto& v) { return tg::concat(v, 0); }, "cannot join rank-0 Vars (unsqueeze them first)"));
    errors.push_back(tg::make_error_input(
        "(2,3) and (2,4) along axis 0", {xt::ones<double>({2, 3}), xt::ones<double>({2, 4})},
        [](const auto& v) { return tg::concat(v, 0); },
        "input 1 has shape [2, 4] but input 0 has [2, 3]; only axis 0 may differ"));
    errors.push_back(tg::make_error_input(
        "(2,3) and (2,3,1) along axis 1", {xt::ones<double>({2, 3}), xt::ones<double>({2, 3, 1})},
        [](const auto& v) { return tg::concat(v, 1); },
        "input 1 has shape [2, 3, 1] but input 0 has [2, 3]; only axis 1 may differ"));
    return errors;
}
