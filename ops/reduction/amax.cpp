// ops/reduction/amax.cpp — y = the largest of all elements of x (rank 0), as torch.amax(x);
//   NaN if any element is NaN; an empty x is an error (no identity), as in PyTorch.
//   vjp: grad_x = grad_out * [x == y] / count(x == y): tied maxima share the gradient
//        evenly (torch.amax's convention, unlike max along an axis)   (extremum.hpp)

#include <algorithm>

#include "extremum.hpp"

namespace tg {

//! public
/// The largest of all elements (rank 0); tied maxima share the gradient evenly (torch.amax).
template <class T> Var<T> amax(const Var<T>& x);
//! end

namespace {
struct AmaxName {
    static constexpr const char* value = TAPEGRAD_OP_NAME;
};
using Amax = reduction::AllExtremum<AmaxName, true>;
}  // namespace

template <class T> Var<T> amax(const Var<T>& x)
{
    reduction::check_not_empty_all(Amax::name, input_shape(TAPEGRAD_OP_NAME, x));
    return record(Amax{}, x);
}

TAPEGRAD_INSTANTIATE_UNARY(amax)

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto out = tg::samples::unary(
        rng, -2.0, 2.0, 0.0, [](const auto& v) { return tg::amax(v[0]); },
        [](const auto& x) { return xt::xarray<double>(xt::amax(x)); }, "torch.amax({0})");
    // An empty Var has no maximum (its error has a test of its own).
    out.erase(std::remove_if(out.begin(), out.end(),
                             [](const tg::OpSample& s) { return s.label.find("empty") != std::string::npos; }),
              out.end());
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    return {tg::make_error_input(
        "empty (0,3)", {xt::ones<double>({0, 3})}, [](const auto& v) { return tg::amax(v[0]); },
        "cannot reduce an empty Var of shape [0, 3]: the reduction has no identity")};
}
