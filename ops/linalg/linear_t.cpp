// ops/linalg/linear_t.cpp — y [..., out] = x [..., in] @ w^T + b [out] for w [out, in]:
//   torch.nn.functional.linear, whose weight (and nn::Linear's) is stored [out, in]; any
//   leading dims (none: x [in] gives y [out]), seen as rows [batch, in] and [batch, out]
//   vjp: grad_x [batch, in] = grad_out @ w
//        grad_w [out, in]   = grad_out^T @ x
//        grad_b [out]       = grad_out summed over the batch
// One tape entry instead of matmul + add (the bias goes into y first and gemm accumulates
// onto it); the transpose is folded into the products, never copied.

#include "dense_layer.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x @ w^T + b for x [..., in] (any leading dims), w [out, in], b [out] (torch.nn.functional.linear's layout):
/// y [..., out], one tape entry.
template <class T> Var<T> linear_t(const Var<T>& x, const Var<T>& w, const Var<T>& b);
//! end

namespace {

struct LinearT : dense_layer::Kernels<true> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
};

}  // namespace

template <class T> Var<T> linear_t(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    return dense_layer::checked_record<LinearT, true>(x, w, b);
}

template Var<float> linear_t<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear_t<double>(const Var<double>&, const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto f = [](const auto& v) { return tg::linear_t(v[0], v[1], v[2]); };
    auto ref = [](const auto& x) { return tg::dense_layer::reference<true>(x); };
    const std::string torch = "torch.nn.functional.linear(x[0], x[1], x[2])";
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(1,2)x(3,2)^T+(3,)", {u({1, 2}), u({3, 2}), u({3})}, f, ref).with_torch(torch));
    out.push_back(tg::make_sample("(4,3)x(2,3)^T+(2,)", {u({4, 3}), u({2, 3}), u({2})}, f, ref).with_torch(torch));
    out.push_back(tg::make_sample("(16,24)x(30,24)^T+(30,) via BLAS", {u({16, 24}), u({30, 24}), u({30})}, f, ref)
                      .with_torch(torch));
    out.push_back(
        tg::make_sample("(2,3,4)x(5,4)^T+(5,) 3-D", {u({2, 3, 4}), u({5, 4}), u({5})}, f, ref).with_torch(torch));
    out.push_back(
        tg::make_sample("(4,6,20)x(24,20)^T+(24,) 3-D via BLAS", {u({4, 6, 20}), u({24, 20}), u({24})}, f, ref)
            .with_torch(torch));
    out.push_back(tg::make_sample("(3,)x(2,3)^T+(2,) 1-D", {u({3}), u({2, 3}), u({2})}, f, ref).with_torch(torch));
    out.push_back(tg::make_sample("(0,3,2)x(3,2)^T+(3,) empty", {u({0, 3, 2}), u({3, 2}), u({3})}, f, ref));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto f = [](const auto& v) { return tg::linear_t(v[0], v[1], v[2]); };
    return {tg::make_error_input("x (2,3) with w (2,4)", {ones({2, 3}), ones({2, 4}), ones({2})}, f,
                                 "inner dimensions differ: x is [2, 3], w is [2, 4] (w is [out, in])"),
            tg::make_error_input("x () of rank 0", {ones({}), ones({2, 3}), ones({2})}, f,
                                 "expected x [..., in] and a 2-D w [out, in], got x [] and w [2, 3]"),
            tg::make_error_input("w (2,3,4) of rank 3", {ones({2, 2}), ones({2, 3, 4}), ones({4})}, f,
                                 "got x [2, 2] and w [2, 3, 4]"),
            tg::make_error_input("bias (3,) for w (2,3)", {ones({2, 3}), ones({2, 3}), ones({3})}, f,
                                 "bias must have shape [2] to match w [2, 3], got [3]")};
}
