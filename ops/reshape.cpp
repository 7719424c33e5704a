// ops/reshape.cpp — y = x with a new shape of the same size (row-major order kept)
//   backward: grad_x = grad_out read in x's shape

#include "op_common.hpp"

namespace tg {
namespace {

struct Reshape {
    static constexpr const char* name = "reshape";
    const std::vector<std::size_t>* shape;  // only read during forward
    template <class T> void forward(Ctx<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.out();
        if (!std::equal(y.shape().begin(), y.shape().end(), shape->begin(), shape->end())) y.resize(*shape);
        std::copy(x.data(), x.data() + x.size(), y.data());
    }
    template <class T> void backward(Ctx<T>& c) const
    {
        if (!c.needs_grad(0)) return;
        GradSlot<T> s = c.grad_slot(0);
        const T* g = c.grad_out().data();
        const std::size_t n = c.input(0).size();
        for (std::size_t i = 0; i < n; ++i) s.data[i] = s.add ? s.data[i] + g[i] : g[i];
    }
};

}  // namespace

template <class T> Var<T> reshape(const Var<T>& x, const std::vector<std::size_t>& shape)
{
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    if (n != x.size()) {
        throw Error("reshape: cannot reshape " + format_shape(x.shape()) + " (" + std::to_string(x.size()) +
                    " elements) into " + format_shape(shape) + " (" + std::to_string(n) + " elements)");
    }
    return record(Reshape{&shape}, x);
}

template Var<float> reshape<float>(const Var<float>&, const std::vector<std::size_t>&);
template Var<double> reshape<double>(const Var<double>&, const std::vector<std::size_t>&);

}  // namespace tg

TAPEGRAD_REGISTER_OP(reshape)
{
    return {"reshape", [](std::mt19937_64& rng) {
                std::vector<tg::OpSample> out;
                out.push_back(tg::make_sample("(3,4)->(12,)", {tg::sample_uniform(rng, {3, 4}, -1.0, 1.0)},
                                              [](const auto& v) { return tg::reshape(v[0], {12}); }));
                out.push_back(
                    tg::make_sample("(2,6)->(3,2,2)", {tg::sample_uniform(rng, {2, 6}, -1.0, 1.0)}, [](const auto& v) {
                        return tg::reshape(v[0], {3, 2, 2});
                    }));
                out.push_back(tg::make_sample("()->(1,1)", {tg::sample_uniform(rng, {}, -1.0, 1.0)}, [](const auto& v) {
                    return tg::reshape(v[0], {1, 1});
                }));
                out.push_back(tg::make_sample("transposed (4,3)->(2,6)", {tg::sample_uniform(rng, {4, 3}, -1.0, 1.0)},
                                              [](const auto& v) {
                                                  return tg::reshape(tg::transpose(v[0]), {2, 6});
                                              }));
                return out;
            }};
}
