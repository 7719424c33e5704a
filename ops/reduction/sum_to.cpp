// ops/reduction/sum_to.cpp — y = x summed back to `shape`, a shape that broadcasts to x's
// (torch's sum_to_size): the reduction that undoes a broadcast
//   vjp: grad_x = expand(grad_out, x.shape)
// With expand it forms a pair, each the other's vjp: the kit sums every gradient of a
// broadcast input with it, so broadcasting ops are differentiable to any order.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x summed over the axes along which `shape` was broadcast to x's shape (torch's sum_to_size).
template <class T> Var<T> sum_to(const Var<T>& x, const std::vector<std::size_t>& shape);
//! end

namespace {

struct SumTo {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    broadcast::Shape shape;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.output(shape);
        broadcast::reduce(x.data(), x.shape(), y.data(), shape, false);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        c.add_grad(0, x.shape(),
                   [&](T* dst, bool add) { broadcast::expand(c.grad_out().data(), shape, dst, x.shape(), add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        v.add_grad(0, expand(v.grad_out(), std::vector<std::size_t>(xs.begin(), xs.end())));
    }
};

}  // namespace

template <class T> Var<T> sum_to(const Var<T>& x, const std::vector<std::size_t>& shape)
{
    if (!broadcast::broadcasts_to(shape, input_shape(TAPEGRAD_OP_NAME, x))) {
        throw Error(std::string(SumTo::name) + ": shape " + format_shape(shape) + " does not broadcast to " +
                    format_shape(input_shape(TAPEGRAD_OP_NAME, x)) + ", so x cannot be summed back to it");
    }
    return record(SumTo{broadcast::Shape(shape.begin(), shape.end())}, x);
}

template Var<float> sum_to<float>(const Var<float>&, const std::vector<std::size_t>&);
template Var<double> sum_to<double>(const Var<double>&, const std::vector<std::size_t>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    auto dims = [](const std::vector<std::size_t>& s) {
        std::string out;
        for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
        return out;
    };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> from, std::vector<std::size_t> to,
                      std::vector<std::size_t> axes, bool keep) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(from)}, [to](const auto& v) { return tg::sum_to(v[0], to); },
                          [axes, keep, to](const auto& x) {
                              if (axes.empty()) return x[0];
                              xt::xarray<double> r = keep ? xt::xarray<double>(xt::sum(x[0], axes, xt::keep_dims))
                                                          : xt::xarray<double>(xt::sum(x[0], axes));
                              return xt::xarray<double>(xt::reshape_view(r, to));
                          })
                          .with_torch(to.empty() ? "x[0].sum()" : "x[0].sum_to_size(" + dims(to) + ")"));
    };
    sample("(3,4)->(4,)", {3, 4}, {4}, {0}, false);
    sample("(3,4)->(3,1)", {3, 4}, {3, 1}, {1}, true);
    sample("(2,3,4)->(3,1)", {2, 3, 4}, {3, 1}, {0, 2}, true);
    sample("(3,4)->()", {3, 4}, {}, {0, 1}, false);
    sample("(3,4)->(1,1)", {3, 4}, {1, 1}, {0, 1}, true);
    sample("(3,4)->(3,4)", {3, 4}, {3, 4}, {}, true);
    sample("(1,2,3)->(2,3)", {1, 2, 3}, {2, 3}, {0}, false);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "(2,3) to (4,)", {x}, [](const auto& v) { return tg::sum_to(v[0], Shape{4}); },
                "shape [4] does not broadcast to [2, 3]"),
            tg::make_error_input(
                "(2,3) to (3,3)", {x},
                [](const auto& v) {
                    return tg::sum_to(v[0], Shape{3, 3});
                },
                "shape [3, 3] does not broadcast to [2, 3]"),
            tg::make_error_input(
                "(2,3) to (1,2,3)", {x},
                [](const auto& v) {
                    return tg::sum_to(v[0], Shape{1, 2, 3});
                },
                "shape [1, 2, 3] does not broadcast to [2, 3]")};
}
