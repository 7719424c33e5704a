// ops/shape/chunk.cpp — x cut along `axis` into `chunks` pieces of ceil(len / chunks) (the last
//   may be shorter, and there may be fewer pieces, as torch.chunk) (split's narrows and vjps)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x cut along axis into up to `chunks` pieces of ceil(len / chunks) elements (torch.chunk).
template <class T> std::vector<Var<T>> chunk(const Var<T>& x, std::size_t chunks, std::ptrdiff_t axis);
//! end

template <class T> std::vector<Var<T>> chunk(const Var<T>& x, std::size_t chunks, std::ptrdiff_t axis)
{
    const auto& s = input_shape(TAPEGRAD_OP_NAME, x);
    if (chunks == 0) throw Error(std::string(TAPEGRAD_OP_NAME) + ": chunks must be at least 1, got 0");
    const std::size_t a = axis::resolve(TAPEGRAD_OP_NAME, s, axis);
    const std::size_t len = s[a], size = (len + chunks - 1) / chunks;
    std::vector<std::size_t> sizes;
    for (std::size_t start = 0; start < len; start += size) sizes.push_back(std::min(size, len - start));
    if (sizes.empty()) sizes.push_back(0);  // an empty axis gives one empty piece, as torch.chunk
    return split(x, sizes, static_cast<std::ptrdiff_t>(a));
}

template std::vector<Var<float>> chunk<float>(const Var<float>&, std::size_t, std::ptrdiff_t);
template std::vector<Var<double>> chunk<double>(const Var<double>&, std::size_t, std::ptrdiff_t);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> shape, std::size_t chunks, std::ptrdiff_t a) {
        out.push_back(
            tg::make_sample(
                std::move(label), {u(shape)},
                [chunks, a](const auto& v) {
                    auto pieces = tg::chunk(v[0], chunks, a);
                    for (std::size_t i = 0; i < pieces.size(); ++i) pieces[i] = pieces[i] * double(i + 1);
                    return tg::concat(pieces, a);
                },
                [chunks, a](const auto& x) {
                    const auto r =
                        static_cast<std::size_t>(a < 0 ? a + static_cast<std::ptrdiff_t>(x[0].dimension()) : a);
                    const std::size_t len = x[0].shape()[r], size = (len + chunks - 1) / chunks;
                    xt::xarray<double> y = x[0];
                    for (std::size_t start = 0, i = 1; start < len; start += size, ++i) {
                        xt::xstrided_slice_vector sv(y.dimension(), xt::all());
                        sv[r] = xt::range(start, std::min(len, start + size));
                        xt::strided_view(y, sv) *= double(i);
                    }
                    return y;
                })
                .with_torch("(lambda p: torch.cat([q * (i + 1) for i, q in enumerate(p)], dim=" + std::to_string(a) +
                            "))(torch.chunk(x[0], " + std::to_string(chunks) + ", dim=" + std::to_string(a) + "))"));
    };
    sample("(6,2) 3 axis 0", {6, 2}, 3, 0);
    sample("(2,5) 3 axis 1", {2, 5}, 3, 1);
    sample("(2,5) 4 axis -1", {2, 5}, 4, -1);
    sample("(4,3,2) 2 axis 1", {4, 3, 2}, 2, 1);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    auto errors = tg::samples::axis_errors([](const auto& x, std::ptrdiff_t axis) { return tg::chunk(x, 2, axis); });
    errors.push_back(tg::make_error_input(
        "0 chunks", {xt::ones<double>({4})}, [](const auto& v) { return tg::chunk(v[0], 0, 0); },
        "chunks must be at least 1, got 0"));
    return errors;
}
