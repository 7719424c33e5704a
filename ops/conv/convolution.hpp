#pragma once
// What conv1d, conv2d and conv_transpose2d share: the geometry of a convolution, checked
// at entry, and one recorded op per role of the trilinear form <conv(x, w), y>:
//   role forward      (x, w[, b]) -> y = conv(x, w) + b           conv1d, conv2d
//   role input_grad   (y, w[, b]) -> x = conv^T(y, w) + b         conv_transpose2d
//   role weight_grad  (x, y)      -> w = the correlation of x and y
// Each role's derivatives are the other two roles (for grad_out g of the role's output):
//   forward:     grad_x = input_grad(g, w)    grad_w = weight_grad(x, g)   grad_b = g summed per channel
//   input_grad:  grad_y = forward(g, w)       grad_w = weight_grad(g, y)   grad_b = g summed per channel
//   weight_grad: grad_x = input_grad(y, g)    grad_y = forward(x, g)
// so derivatives of every order stay convolutions, each computed by im2col + gemm
// (src/kernels/conv.cpp). The recorded ops live in ops/conv/conv2d.cpp.

#include <array>
#include <cstddef>

#include "kernels/conv.hpp"
#include "tapegrad/kit.hpp"

namespace tg::conv {

enum class Role { forward = 0, input_grad = 1, weight_grad = 2 };

using Shape = xt::xarray<double>::shape_type;

/// The shapes of x, w and y (1-D geometries have no H axis).
Shape x_shape(const Geometry& g);
Shape w_shape(const Geometry& g);
Shape y_shape(const Geometry& g);

/// The geometry of `op`'s convolution of x by w (rank 3 for one spatial axis, 4 for two),
/// checked: ranks, channels against the weight and groups, positive stride and dilation,
/// a kernel that fits in the padded input, and the bias shape when `bias` is given.
/// Errors name `op` and the shapes.
Geometry make(const char* op, std::size_t spatial, const Shape& x, const Shape& w, const Shape* bias,
              std::array<std::size_t, 2> stride, std::array<std::size_t, 2> padding,
              std::array<std::size_t, 2> dilation, std::size_t groups);

/// Who records: a public op (its tape entry, and any error about its inputs, carries its
/// name), or a vjp rule (the entry is named after the role: "convolution",
/// "convolution_transpose", "convolution_weight_grad").
enum class Caller { conv1d, conv2d, conv_transpose2d, rule };

/// Records one role of the convolution on (a, b) and, when defined, the bias. The public
/// ops call it with their own Caller and role (conv1d and conv2d: forward,
/// conv_transpose2d: input_grad).
template <class T>
Var<T> apply(Caller caller, Role role, const Geometry& g, const Var<T>& a, const Var<T>& b, const Var<T>& bias);

/// "[2, 3]" for two spatial axes, "2" for one: how the errors show stride, padding, ...
std::string format_pair(std::size_t spatial, std::array<std::size_t, 2> v);

}  // namespace tg::conv
