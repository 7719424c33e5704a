// ops/shape/permute.cpp — y = x with its axes reordered: y.shape[i] = x.shape[dims[i]]
//   vjp: grad_x = permute(grad_out, inverse(dims))
// The result is a new row-major array (values are always contiguous here): a permute
// costs one strided copy, and the ops after it read contiguous memory.

#include <xtensor/xmanipulation.hpp>

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x with its axes reordered: y.shape[i] = x.shape[dims[i]] (torch.permute).
template <class T> Var<T> permute(const Var<T>& x, const std::vector<std::size_t>& dims);
//! end

namespace {

using Dims = xt::svector<std::size_t, 4>;

Dims inverse(const Dims& dims)
{
    Dims inv(dims.size());
    for (std::size_t i = 0; i < dims.size(); ++i) inv[dims[i]] = i;
    return inv;
}

// y = x permuted by dims (x row-major of shape `in`), written or added to y in y's
// row-major order. An odometer walks y's leading axes; the innermost axis is one strided
// run of x (contiguous when the permutation keeps the last axis), so the cost is one pass
// over the data with no per-element index arithmetic.
template <class T, class S> void permute_into(const S& in, const Dims& dims, const T* x, T* y, bool add)
{
    const std::size_t rank = dims.size();
    std::size_t total = 1;
    for (std::size_t d : in) total *= d;
    if (total == 0) return;
    if (rank == 0) {
        y[0] = add ? y[0] + x[0] : x[0];
        return;
    }
    Dims in_stride(rank), out_shape(rank), stride(rank);
    std::size_t st = 1;
    for (std::size_t i = rank; i-- > 0;) {
        in_stride[i] = st;
        st *= in[i];
    }
    for (std::size_t i = 0; i < rank; ++i) {
        out_shape[i] = in[dims[i]];
        stride[i] = in_stride[dims[i]];  // x's step for a step along y's axis i
    }
    const std::size_t n = out_shape[rank - 1], step = stride[rank - 1];
    Dims index(rank, 0);
    std::size_t offset = 0;
    for (std::size_t done = 0; done < total; done += n) {
        const T* from = x + offset;
        if (step == 1) {
            kernel::add_or_assign(y, from, n, add);
        } else if (add) {
            for (std::size_t j = 0; j < n; ++j) y[j] += from[j * step];
        } else {
            for (std::size_t j = 0; j < n; ++j) y[j] = from[j * step];
        }
        y += n;
        for (std::size_t i = rank - 1; i-- > 0;) {  // next row: carry through y's leading axes
            offset += stride[i];
            if (++index[i] < out_shape[i]) break;
            offset -= stride[i] * out_shape[i];
            index[i] = 0;
        }
    }
}

struct Permute {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    Dims dims;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        typename xt::xarray<T>::shape_type shape(dims.size());
        for (std::size_t i = 0; i < dims.size(); ++i) shape[i] = x.shape()[dims[i]];
        permute_into(x.shape(), dims, x.data(), c.output(shape).data(), false);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.grad_out();
        const Dims inv = inverse(dims);
        c.add_grad(0, c.input(0).shape(), [&](T* dst, bool add) { permute_into(g.shape(), inv, g.data(), dst, add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Dims inv = inverse(dims);
        v.add_grad(0, permute(v.grad_out(), std::vector<std::size_t>(inv.begin(), inv.end())));
    }
};

}  // namespace

template <class T> Var<T> permute(const Var<T>& x, const std::vector<std::size_t>& dims)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    std::vector<char> seen(s.size(), 0);
    bool ok = dims.size() == s.size();
    for (std::size_t d : dims) {
        ok = ok && d < s.size() && !seen[d];
        if (ok) seen[d] = 1;
    }
    if (!ok) {
        throw Error(std::string(Permute::name) + ": dims " + format_shape(dims) +
                    " are not a permutation of the axes of shape " + format_shape(s));
    }
    return record(Permute{Dims(dims.begin(), dims.end())}, x);
}

template Var<float> permute<float>(const Var<float>&, const std::vector<std::size_t>&);
template Var<double> permute<double>(const Var<double>&, const std::vector<std::size_t>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::vector<std::size_t> dims) {
        std::string torch_dims;
        for (std::size_t i = 0; i < dims.size(); ++i) torch_dims += (i ? ", " : "") + std::to_string(dims[i]);
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape)}, [dims](const auto& v) { return tg::permute(v[0], dims); },
                          [dims](const auto& x) { return xt::xarray<double>(xt::transpose(x[0], dims)); })
                          .with_torch("x[0].permute((" + torch_dims + (dims.size() == 1 ? "," : "") + "))"));
    };
    sample("(2,3,4) (2,0,1)", {2, 3, 4}, {2, 0, 1});
    sample("(2,3,4) (1,2,0)", {2, 3, 4}, {1, 2, 0});
    sample("(2,3,4,5) (0,2,1,3)", {2, 3, 4, 5}, {0, 2, 1, 3});
    sample("(3,4) (1,0)", {3, 4}, {1, 0});
    sample("(1,3,1) (2,1,0)", {1, 3, 1}, {2, 1, 0});
    sample("(2,0,3) (2,1,0)", {2, 0, 3}, {2, 1, 0});
    sample("(5,) (0,)", {5}, {0});
    sample("() ()", {}, {});
    out.push_back(tg::make_sample(
                      "transposed (4,3) (1,0)", {u({4, 3})},
                      [](const auto& v) {
                          return tg::permute(tg::transpose(v[0]), {1, 0});
                      },
                      [](const auto& x) { return x[0]; })
                      .with_torch("x[0].T.permute(1, 0)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Dims = std::vector<std::size_t>;
    const xt::xarray<double> x = xt::ones<double>({2, 3});
    return {tg::make_error_input(
                "dims repeated", {x},
                [](const auto& v) {
                    return tg::permute(v[0], Dims{0, 0});
                },
                "dims [0, 0] are not a permutation of the axes of shape [2, 3]"),
            tg::make_error_input(
                "dim out of range", {x},
                [](const auto& v) {
                    return tg::permute(v[0], Dims{0, 5});
                },
                "dims [0, 5] are not a permutation of the axes of shape [2, 3]"),
            tg::make_error_input(
                "too few dims", {x}, [](const auto& v) { return tg::permute(v[0], Dims{0}); },
                "dims [0] are not a permutation"),
            tg::make_error_input(
                "too many dims", {x},
                [](const auto& v) {
                    return tg::permute(v[0], Dims{0, 1, 2});
                },
                "dims [0, 1, 2] are not a permutation")};
}
