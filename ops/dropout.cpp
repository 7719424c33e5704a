// ops/dropout.cpp — y = x * m, m_i = 1 / (1 - p) with probability 1 - p, else 0
//   (inverted dropout: the expected value of y is x, so evaluation needs no rescaling)
//   backward: grad_x = grad_out * m          (the mask saved in forward)
// One 64-bit draw from the tg::Generator keys a counter-based hash that gives every
// element a 24-bit uniform: one generator call per mask instead of one per element (a
// 100k-element mask costs microseconds, and the loop vectorises), and the same mask for
// float and double from a generator in the same state.

#include "op_common.hpp"

namespace tg {
namespace {

// A 32-bit finaliser (avalanching: every input bit flips each output bit with
// probability about one half).
inline std::uint32_t mix32(std::uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

template <class T> struct Dropout {
    static constexpr const char* name = "dropout";
    T p;
    Generator* gen;  // only used during forward
    void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        auto& mask = c.saved();
        if (mask.shape() != x.shape()) mask.resize(x.shape());
        const T keep = T(1) / (T(1) - p);
        const std::uint64_t key = (*gen)();
        const auto lo = static_cast<std::uint32_t>(key), hi = static_cast<std::uint32_t>(key >> 32);
        // Drop when the element's 24-bit uniform falls below p (p in steps of 2^-24).
        const auto threshold = static_cast<std::uint32_t>(static_cast<double>(p) * 16777216.0);
        T* m = mask.data();
        const std::size_t n = x.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t u = mix32(mix32(static_cast<std::uint32_t>(i) ^ lo) + hi) >> 8;
            m[i] = u < threshold ? T(0) : keep;
        }
        auto& y = c.out();
        if (y.shape() != x.shape()) y.resize(x.shape());
        kernel::map<false>(
            x.size(), y.data(), [](auto a, auto b) { return a * b; }, x.data(), static_cast<const T*>(m));
    }
    void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        GradSlot<T> s = c.grad_slot(0);
        kernel::map_to(
            s.add, c.input(0).size(), s.data, [](auto g, auto m) { return g * m; }, c.grad_out().data(),
            static_cast<const T*>(c.saved().data()));
    }
};

}  // namespace

template <class T> Var<T> dropout(const Var<T>& x, detail::scalar_t<T> p, Generator& gen)
{
    if (!(p >= T(0) && p < T(1))) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
    return record(Dropout<T>{p, &gen}, x);
}

template Var<float> dropout<float>(const Var<float>&, float, Generator&);
template Var<double> dropout<double>(const Var<double>&, double, Generator&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(dropout)
{
    // Every call draws the same mask (a fresh generator with a fixed seed), so gradcheck's
    // repeated evaluations see one fixed function.
    auto f = [](const auto& v) {
        tg::Generator g(1234);
        return tg::dropout(v[0], 0.3, g);
    };
    return {"dropout", [f](std::mt19937_64& rng) { return tg::samples::unary(rng, -2.0, 2.0, 0.0, f); }};
}
