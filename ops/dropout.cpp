// ops/dropout.cpp — y = x * m, m_i = 1 / (1 - p) with probability 1 - p, else 0
//   (inverted dropout: the expected value of y is x, so evaluation needs no rescaling)
//   backward: grad_x = grad_out * m          (the mask saved in forward)
// Masks are drawn as 53-bit uniforms from a tg::Generator, identically for float and
// double, so a generator in the same state gives the same mask.

#include "op_common.hpp"

namespace tg {
namespace {

template <class T>
struct Dropout {
    static constexpr const char* name = "dropout";
    T p;
    Generator* gen;  // only used during forward
    void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        auto& mask = c.saved();
        if (mask.shape() != x.shape()) mask.resize(x.shape());
        const T keep = T(1) / (T(1) - p);
        T* m = mask.data();
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double u = static_cast<double>((*gen)() >> 11) * 0x1.0p-53;
            m[i] = u < static_cast<double>(p) ? T(0) : keep;
        }
        auto& y = c.out();
        if (y.shape() != x.shape()) y.resize(x.shape());
        kernel::map<false>(x.size(), y.data(), [](auto a, auto b) { return a * b; }, x.data(),
                           static_cast<const T*>(m));
    }
    void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        GradSlot<T> s = c.grad_slot(0);
        kernel::map_to(s.add, c.input(0).size(), s.data, [](auto g, auto m) { return g * m; },
                       c.grad_out().data(), static_cast<const T*>(c.saved().data()));
    }
};

}  // namespace

template <class T>
Var<T> dropout(const Var<T>& x, detail::scalar_t<T> p, Generator& gen)
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
