// ops/nn/dropout.cpp — y = x * m, m_i = 1 / (1 - p) with probability 1 - p, else 0
//   (inverted dropout: the expected value of y is x, so evaluation needs no rescaling)
//   vjp: grad_x = grad_out * m          (the mask saved in forward; a constant)
// One 64-bit draw from the tg::Generator keys a counter-based hash that gives every
// element a 24-bit uniform: one generator call per mask instead of one per element (a
// 100k-element mask costs microseconds, and the loop vectorises), and the same mask for
// float and double from a generator in the same state.

#include "mask_hash.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Zeroes each element with probability p, scales the rest by 1 / (1 - p).
/// The mask is drawn from `gen` (same generator state, same mask). Layers use tg::nn::Dropout.
template <class T> Var<T> dropout(const Var<T>& x, detail::scalar_t<T> p, Generator& gen);
//! end

namespace {

template <class T> struct Dropout {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    T p;
    Generator* gen;  // the caller's generator, read by forward only

    void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& mask = c.saved(0);
        if (mask.shape() != x.shape()) mask.resize(x.shape());
        const T keep = T(1) / (T(1) - p);
        const std::uint64_t key = (*gen)();
        const std::uint32_t threshold = dropout_mask::threshold(static_cast<double>(p));
        T* m = mask.data();
        const std::size_t n = x.size();
        for (std::size_t i = 0; i < n; ++i) {
            m[i] = dropout_mask::uniform24(i, key) < threshold ? T(0) : keep;
        }
        kernel::map<false>(
            n, c.output(x.shape()).data(), [](auto a, auto b) { return a * b; }, x.data(), static_cast<const T*>(m));
    }
    void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* m = c.saved(0).data();
        const T* g = c.grad_out().data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) {
            kernel::map_to(
                add, x.size(), dst, [](auto gv, auto mv) { return gv * mv; }, g, m);
        });
    }
    void vjp(VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * constant(v.saved(0))); }
};

}  // namespace

template <class T> Var<T> dropout(const Var<T>& x, detail::scalar_t<T> p, Generator& gen)
{
    if (!(p >= T(0) && p < T(1)))
        throw Error(std::string(Dropout<T>::name) + ": p must be in [0, 1), got " + format_number(p));
    return record(Dropout<T>{p, &gen}, x);
}

template Var<float> dropout<float>(const Var<float>&, float, Generator&);
template Var<double> dropout<double>(const Var<double>&, double, Generator&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    // Every call draws the same mask (a fresh generator with a fixed seed), so gradcheck's
    // repeated evaluations see one fixed function. A random mask has no independent
    // formula; with p = 0 the op must return x itself.
    auto out = tg::samples::unary(
        rng, -2.0, 2.0, 0.0,
        [](const auto& v) {
            tg::Generator g(1234);
            return tg::dropout(v[0], 0.3, g);
        },
        [](const auto& x) { return x; });
    for (auto& s : out) {
        s.label += " p=0.3";
        s.reference = nullptr;
    }
    out.push_back(tg::make_sample(
                      "(3,4) p=0", {tg::sample_uniform(rng, {3, 4}, -2.0, 2.0)},
                      [](const auto& v) {
                          tg::Generator g(1234);
                          return tg::dropout(v[0], 0.0, g);
                      },
                      [](const auto& x) { return x[0]; })
                      .with_torch("torch.nn.functional.dropout(x[0], 0.0)"));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    std::vector<tg::ErrorInput> errors;
    for (const double p : {1.0, -0.5, std::numeric_limits<double>::quiet_NaN()}) {
        const std::string shown = tg::format_number(p);
        errors.push_back(tg::make_error_input(
            "p " + shown, {xt::ones<double>({2, 3})},
            [p](const auto& v) {
                tg::Generator g(1);
                return tg::dropout(v[0], p, g);
            },
            "p must be in [0, 1), got " + shown));
    }
    return errors;
}
