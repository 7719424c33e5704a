// ops/shape/reshape.cpp — y = x with a new shape of the same size (row-major order kept)
//   vjp: grad_x = reshape(grad_out, x.shape)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// The same elements in a new shape with the same number of elements (row-major order).
template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::size_t>& shape);
//! end

namespace {

struct Reshape {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    broadcast::Shape shape;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        std::copy(x.data(), x.data() + x.size(), c.output(shape).data());
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        c.add_grad(0, x.shape(),
                   [&](T* dst, bool add) { kernel::add_or_assign(dst, c.grad_out().data(), x.size(), add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        v.add_grad(0, reshape(v.grad_out(), std::vector<std::size_t>(xs.begin(), xs.end())));
    }
};

}  // namespace

template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::size_t>& shape)
{
    // Checked: a product that wraps (2^62 + 1 times 4 is 4) must not pass for the right size.
    const std::size_t n = checked_size(TAPEGRAD_OP_NAME, shape);
    if (n != input_value(TAPEGRAD_OP_NAME, x).size()) {
        throw Error(std::string(Reshape::name) + ": cannot reshape " + format_shape(input_shape(TAPEGRAD_OP_NAME, x)) +
                    " (" + std::to_string(input_value(TAPEGRAD_OP_NAME, x).size()) + " elements) into " +
                    format_shape(shape) + " (" + std::to_string(n) + " elements)");
    }
    return record(Reshape{broadcast::Shape(shape.begin(), shape.end())}, x);
}

template Var<float> reshape<float>(const Var<float>&, const std::vector<std::size_t>&);
template Var<double> reshape<double>(const Var<double>&, const std::vector<std::size_t>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto dims = [](const std::vector<std::size_t>& s) {
        std::string out;
        for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
        return out;
    };
    auto sample = [dims](std::string label, xt::xarray<double> input, std::vector<std::size_t> to, bool transposed) {
        return tg::make_sample(
                   std::move(label), {std::move(input)},
                   [to, transposed](const auto& v) { return tg::reshape(transposed ? tg::transpose(v[0]) : v[0], to); },
                   [to, transposed](const auto& x) {
                       const xt::xarray<double> in = transposed ? xt::xarray<double>(xt::transpose(x[0])) : x[0];
                       return xt::xarray<double>(xt::reshape_view(in, to));
                   })
            .with_torch(std::string(transposed ? "x[0].T" : "x[0]") + ".reshape(" + dims(to) + ")");
    };
    std::vector<tg::OpSample> out;
    out.push_back(sample("(3,4)->(12,)", u({3, 4}), {12}, false));
    out.push_back(sample("(2,6)->(3,2,2)", u({2, 6}), {3, 2, 2}, false));
    out.push_back(sample("()->(1,1)", u({}), {1, 1}, false));
    out.push_back(sample("transposed (4,3)->(2,6)", u({4, 3}), {2, 6}, true));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "(2,3) into (4,)", {x}, [](const auto& v) { return tg::reshape(v[0], Shape{4}); },
                "cannot reshape [2, 3] (6 elements) into [4] (4 elements)"),
            tg::make_error_input(
                "(2,3) into (3,3)", {x},
                [](const auto& v) {
                    return tg::reshape(v[0], Shape{3, 3});
                },
                "cannot reshape [2, 3] (6 elements) into [3, 3] (9 elements)"),
            tg::make_error_input(
                "(4,) into a shape whose size wraps to 4", {xt::ones<double>({4})},
                [](const auto& v) {
                    return tg::reshape(v[0], Shape{(std::size_t(1) << 62) + 1, 4});
                },
                "has too many elements")};
}
