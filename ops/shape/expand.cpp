// ops/shape/expand.cpp — y = x broadcast to `shape` (numpy broadcast_to)
//   vjp: grad_x = sum_to(grad_out, x.shape)   (the kit's reduction of a broadcast gradient)
// The result is a new array: a gradient flowing into a broadcast input is summed once,
// where it arrives, whatever produced the broadcast.

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x broadcast to `shape` (numpy broadcast_to): dims of size 1 repeat, leading dims are added.
template <class T> Var<T> expand(const Var<T>& x, const std::vector<std::size_t>& shape);
//! end

namespace {

struct Expand {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    broadcast::Shape shape;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.output(shape);
        broadcast::expand(x.data(), x.shape(), y.data(), shape, false);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        c.add_grad(0, shape, [&](T* dst, bool add) { kernel::add_or_assign(dst, g.data(), g.size(), add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const { v.add_grad(0, v.grad_out()); }
};

}  // namespace

template <class T> Var<T> expand(const Var<T>& x, const std::vector<std::size_t>& shape)
{
    if (!broadcast::broadcasts_to(input_shape(TAPEGRAD_OP_NAME, x), shape)) {
        throw Error(std::string(Expand::name) + ": cannot broadcast shape " +
                    format_shape(input_shape(TAPEGRAD_OP_NAME, x)) + " to " + format_shape(shape));
    }
    checked_size(TAPEGRAD_OP_NAME, shape);
    return record(Expand{broadcast::Shape(shape.begin(), shape.end())}, x);
}

template Var<float> expand<float>(const Var<float>&, const std::vector<std::size_t>&);
template Var<double> expand<double>(const Var<double>&, const std::vector<std::size_t>&);

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
    auto sample = [&](std::string label, std::vector<std::size_t> from, std::vector<std::size_t> to) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(from)}, [to](const auto& v) { return tg::expand(v[0], to); },
                          [to](const auto& x) { return xt::xarray<double>(xt::broadcast(x[0], to)); })
                          .with_torch("x[0].expand(" + dims(to) + ")"));
    };
    sample("(4,)->(3,4)", {4}, {3, 4});
    sample("(3,1)->(3,4)", {3, 1}, {3, 4});
    sample("(3,1)->(2,3,4)", {3, 1}, {2, 3, 4});
    sample("()->(2,3)", {}, {2, 3});
    sample("(1,1)->(1,1)", {1, 1}, {1, 1});
    sample("(2,3)->(2,3)", {2, 3}, {2, 3});
    sample("(1,3)->(4,3)", {1, 3}, {4, 3});
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "(2,3) to (4,3)", {x},
                [](const auto& v) {
                    return tg::expand(v[0], Shape{4, 3});
                },
                "cannot broadcast shape [2, 3] to [4, 3]"),
            tg::make_error_input(
                "(2,3) to (3,)", {x}, [](const auto& v) { return tg::expand(v[0], Shape{3}); },
                "cannot broadcast shape [2, 3] to [3]"),
            tg::make_error_input(
                "(1,3) to a shape too large to index", {xt::ones<double>({1, 3})},
                [](const auto& v) {
                    return tg::expand(v[0], Shape{std::size_t(1) << 62, 3});
                },
                "has too many elements")};
}
