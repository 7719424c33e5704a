// ops/linalg/linear.cpp — y [..., out] = x [..., in] @ w [in, out] + b [out], any leading dims
//   (none: x [in] gives y [out]); below, x and grad_out are seen as rows [batch, in], [batch, out]
//   with batch the product of the leading dims (their memory is already laid out so)
//   vjp: grad_x [batch, in] = grad_out @ w^T      (matmul with the transpose folded in)
//        grad_w [in, out]   = x^T @ grad_out
//        grad_b [out]       = grad_out summed over the batch (the kit's broadcast reduction)
// One entry for a dense layer instead of matmul + add: half the tape overhead, and the
// bias is written into y before gemm accumulates onto it (beta = 1), so no temporary. One
// gemm for all the leading dims, not one per matrix.

#include "dense_layer.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// x @ w + b for x [..., in] (any leading dims), w [in, out], b [out]: y [..., out], one tape entry instead of two.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
//! end

namespace {

struct Linear : dense_layer::Kernels<false> {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
};

}  // namespace

template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b)
{
    return dense_layer::checked_record<Linear, false>(x, w, b);
}

template Var<float> linear<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear<double>(const Var<double>&, const Var<double>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto f = [](const auto& v) { return tg::linear(v[0], v[1], v[2]); };
    auto ref = [](const auto& x) { return tg::dense_layer::reference<false>(x); };
    std::vector<tg::OpSample> out;
    out.push_back(
        tg::make_sample("(1,2)x(2,3)+(3,)", {u({1, 2}), u({2, 3}), u({3})}, f, ref).with_torch("x[0] @ x[1] + x[2]"));
    out.push_back(
        tg::make_sample("(4,3)x(3,2)+(2,)", {u({4, 3}), u({3, 2}), u({2})}, f, ref).with_torch("x[0] @ x[1] + x[2]"));
    out.push_back(tg::make_sample("(16,24)x(24,30)+(30,) via BLAS", {u({16, 24}), u({24, 30}), u({30})}, f, ref)
                      .with_torch("x[0] @ x[1] + x[2]"));
    // Leading dims of any number, as torch.nn.functional.linear (whose weight is w^T).
    out.push_back(tg::make_sample("(2,3,4)x(4,5)+(5,) 3-D", {u({2, 3, 4}), u({4, 5}), u({5})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(2,1,3,2)x(2,3)+(3,) 4-D", {u({2, 1, 3, 2}), u({2, 3}), u({3})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(4,6,20)x(20,24)+(24,) 3-D via BLAS", {u({4, 6, 20}), u({20, 24}), u({24})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(3,)x(3,2)+(2,) 1-D", {u({3}), u({3, 2}), u({2})}, f, ref)
                      .with_torch("torch.nn.functional.linear(x[0], x[1].T, x[2])"));
    out.push_back(tg::make_sample("(0,3,2)x(2,3)+(3,) empty", {u({0, 3, 2}), u({2, 3}), u({3})}, f, ref));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto f = [](const auto& v) { return tg::linear(v[0], v[1], v[2]); };
    return {tg::make_error_input("x (2,3) with w (4,2)", {ones({2, 3}), ones({4, 2}), ones({2})}, f,
                                 "inner dimensions differ: x is [2, 3], w is [4, 2]"),
            tg::make_error_input("x (2,5,3) with w (4,2)", {ones({2, 5, 3}), ones({4, 2}), ones({2})}, f,
                                 "inner dimensions differ: x is [2, 5, 3], w is [4, 2]"),
            tg::make_error_input("x () of rank 0", {ones({}), ones({3, 2}), ones({2})}, f,
                                 "expected x [..., in] and a 2-D w [in, out], got x [] and w [3, 2]"),
            tg::make_error_input("w (2,3,4) of rank 3", {ones({2, 2}), ones({2, 3, 4}), ones({4})}, f,
                                 "got x [2, 2] and w [2, 3, 4]"),
            tg::make_error_input("bias (3,) for w (3,2)", {ones({2, 3}), ones({3, 2}), ones({3})}, f,
                                 "bias must have shape [2] to match w [3, 2], got [3]"),
            tg::make_error_input("bias (1,2) for w (3,2)", {ones({2, 3}), ones({3, 2}), ones({1, 2})}, f,
                                 "bias must have shape [2] to match w [3, 2], got [1, 2]")};
}
