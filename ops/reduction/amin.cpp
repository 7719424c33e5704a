// ops/reduction/amin.cpp — y = the smallest of all elements of x (rank 0), as torch.amin(x);
//   NaN if any element is NaN; an empty x is an error (no identity), as in PyTorch.
//   vjp: grad_x = grad_out * [x == y] / count(x == y): tied minima share the gradient
//        evenly (torch.amin's convention, unlike min along an axis)   (extremum.hpp)

#include <algorithm>

#include "extremum.hpp"

namespace tg {

//! public
/// The smallest of all elements (rank 0); tied minima share the gradient evenly (torch.amin).
template <class T> Var<T> amin(const Var<T>& x);
//! end

namespace {
struct AminName {
    static constexpr const char* value = TAPEGRAD_OP_NAME;
};
using Amin = reduction::AllExtremum<AminName, false>;
}  // namespace

template <class T> Var<T> amin(const Var<T>& x)
{
    reduction::check_not_empty_all(Amin::name, input_shape(TAPEGRAD_OP_NAME, x));
    return record(Amin{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(amin)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto out = tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::amin(v[0]); },
        [](const auto& x) { return xt::xarray<double>(xt::amin(x)); }, "torch.amin({0})");
    // An empty Var has no maximum (its error has a test of its own).
    out.erase(std::remove_if(out.begin(), out.end(),
                             [](const tg::OpSample& s) { return s.label.find("empty") != std::string::npos; }),
              out.end());
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {tg::make_error_input(
        "empty (0,3)", {xt::ones<double>({0, 3})}, [](const auto& v) { return tg::amin(v[0]); },
        "cannot reduce an empty Var of shape [0, 3]: the reduction has no identity")};
}
