// ops/nn/dropout2d.cpp — channel dropout (torch.nn.functional.dropout2d) of x [N, C, L] or
//   [N, C, H, W]: y[n, c, ...] = x[n, c, ...] * m[n, c], with m[n, c] = 1 / (1 - p) with
//   probability 1 - p, else 0: a whole channel is kept or zeroed, so that neighbouring
//   (strongly correlated) activations do not leak what dropout removed.
//   vjp: grad_x [N, C, ...] = grad_out * m[n, c]      (the mask [N, C] saved in forward; a constant)
// The mask is drawn as in dropout.cpp: one 64-bit draw from the tg::Generator keys a
// counter-based hash giving channel n * C + c a 24-bit uniform, so the same generator
// state gives the same mask for float and double.

#include "mask_hash.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Zeroes each channel x[n, c] of x [N, C, L] or [N, C, H, W] with probability p, scales the others by 1 / (1 - p)
/// (torch.nn.functional.dropout2d). The mask is drawn from `gen` (same generator state, same mask).
template <class T> Var<T> dropout2d(const Var<T>& x, detail::scalar_t<T> p, Generator& gen);
//! end

namespace {

// The finaliser of dropout.cpp (avalanching 32-bit hash), so that both ops draw alike.
template <class T> struct Dropout2d {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T p;
    Generator* gen;  // the caller's generator, read by forward only

    void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const std::size_t channels = x.shape()[0] * x.shape()[1];
        const std::size_t inner = channels == 0 ? 0 : x.size() / channels;
        auto& mask = c.saved(0);
        const typename xt::xarray<T>::shape_type mshape{x.shape()[0], x.shape()[1]};
        if (mask.shape() != mshape) mask.resize(mshape);
        const T keep = T(1) / (T(1) - p);
        const std::uint64_t key = (*gen)();
        const std::uint32_t threshold = dropout_mask::threshold(static_cast<double>(p));
        T* m = mask.data();
        for (std::size_t i = 0; i < channels; ++i) {
            m[i] = dropout_mask::uniform24(i, key) < threshold ? T(0) : keep;
        }
        const T* px = x.data();
        T* py = c.output(x.shape()).data();
        for (std::size_t i = 0; i < channels; ++i) {
            kernel::map<false>(
                inner, py + i * inner, [](auto a, auto b) { return a * b; }, px + i * inner, kernel::Bcast<T>{m[i]});
        }
    }
    void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const auto& mask = c.saved(0);
        const std::size_t channels = mask.size();
        const std::size_t inner = channels == 0 ? 0 : x.size() / channels;
        const T* m = mask.data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            for (std::size_t i = 0; i < channels; ++i) {
                kernel::map_to(
                    add, inner, dst + i * inner, [](auto gv, auto mv) { return gv * mv; }, g + i * inner,
                    kernel::Bcast<T>{m[i]});
            }
        });
    }
    void vjp(VjpContext<T>& v) const
    {
        // The mask [N, C] as [N, C, 1(, 1)], broadcast over each channel.
        xt::xarray<T> m = v.saved(0);
        std::vector<std::size_t> shape(v.input_shape(0).size(), 1);
        shape[0] = m.shape()[0];
        shape[1] = m.shape()[1];
        m.reshape(shape);
        v.add_grad(0, v.grad_out() * constant(std::move(m)));
    }
};

}  // namespace

template <class T> Var<T> dropout2d(const Var<T>& x, detail::scalar_t<T> p, Generator& gen)
{
    const char* op = Dropout2d<T>::name;
    const auto& s = input_shape(op, x);
    if (s.size() != 3 && s.size() != 4) {
        throw Error(std::string(op) + ": x must be 3-D [N, C, L] or 4-D [N, C, H, W], got " + format_shape(s));
    }
    if (!(p >= T(0) && p < T(1))) throw Error(std::string(op) + ": p must be in [0, 1), got " + format_number(p));
    return record(Dropout2d<T>{p, &gen}, x);
}

template Var<float> dropout2d<float>(const Var<float>&, float, Generator&);
template Var<double> dropout2d<double>(const Var<double>&, double, Generator&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    // Every call draws the same mask (a fresh generator with a fixed seed), so gradcheck's
    // repeated evaluations see one fixed function. A random mask has no independent
    // formula; with p = 0 the op must return x itself.
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -2.0, 2.0); };
    auto drop = [](double p) {
        return [p](const auto& v) {
            tg::Generator g(1234);
            return tg::dropout2d(v[0], p, g);
        };
    };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(2,3,2,2) p=0.5", {u({2, 3, 2, 2})}, drop(0.5)));
    out.push_back(tg::make_sample("(3,4,3) p=0.3", {u({3, 4, 3})}, drop(0.3)));
    out.push_back(tg::make_sample("(2,3,2,2) p=0", {u({2, 3, 2, 2})}, drop(0.0), [](const auto& x) {
                      return x[0];
                  }).with_torch("torch.nn.functional.dropout2d(x[0], 0.0)"));
    out.push_back(tg::make_sample("(2,2,5) p=0", {u({2, 2, 5})}, drop(0.0), [](const auto& x) {
                      return x[0];
                  }).with_torch("torch.nn.functional.dropout1d(x[0], 0.0)"));
    out.push_back(tg::make_sample("(0,3,2,2) empty p=0.5", {u({0, 3, 2, 2})}, drop(0.5)));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    std::vector<tg::ErrorInput> errors;
    for (const double p : {1.0, -0.5, std::numeric_limits<double>::quiet_NaN()}) {
        const std::string shown = tg::format_number(p);
        errors.push_back(tg::make_error_input(
            "p " + shown, {xt::ones<double>({2, 3, 4})},
            [p](const auto& v) {
                tg::Generator g(1);
                return tg::dropout2d(v[0], p, g);
            },
            "p must be in [0, 1), got " + shown));
    }
    for (const auto& shape : {std::vector<std::size_t>{2, 3}, std::vector<std::size_t>{1, 2, 3, 4, 5}}) {
        errors.push_back(tg::make_error_input(
            "x " + tg::format_shape(shape), {xt::ones<double>(shape)},
            [](const auto& v) {
                tg::Generator g(1);
                return tg::dropout2d(v[0], 0.5, g);
            },
            "x must be 3-D [N, C, L] or 4-D [N, C, H, W], got " + tg::format_shape(shape)));
    }
    return errors;
}
