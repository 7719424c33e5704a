#pragma once
// Convolution kernels on raw contiguous memory: im2col + gemm, per image and group.
//
// One geometry describes a convolution y = conv(x, w), x [n, c, ih, iw], w [o, c / groups,
// kh, kw], y [n, o, oh, ow] (1-D: ih = oh = kh = 1 and the arrays have no H axis). The three
// kernels are the three bilinear maps of the one trilinear form <conv(x, w), y>:
//   forward      (x, w) -> y     the convolution (cross-correlation, as in PyTorch)
//   input_grad   (y, w) -> x     its adjoint in x: the transposed convolution
//   weight_grad  (x, y) -> w     its adjoint in w
// so each one's derivatives are the other two (see ops/conv/convolution.hpp).

#include <cstddef>
#include <cstdint>

namespace tg::conv {

struct Geometry {
    std::uint32_t n = 0, c = 0, o = 0, groups = 1;
    std::uint32_t ih = 1, iw = 0, oh = 1, ow = 0, kh = 1, kw = 0;
    std::uint32_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
    std::uint32_t spatial = 2;  // 1 or 2 spatial axes

    std::size_t x_size() const noexcept { return std::size_t(n) * c * ih * iw; }
    std::size_t y_size() const noexcept { return std::size_t(n) * o * oh * ow; }
    std::size_t w_size() const noexcept { return std::size_t(o) * (c / groups) * kh * kw; }
};

/// y = conv(x, w) (+ bias[o] when bias is not null); assigns, or adds when `add`.
template <class T> void forward(const Geometry& g, const T* x, const T* w, const T* bias, T* y, bool add);
/// x = conv^T(y, w) (+ bias[c] when not null: the transposed convolution's bias).
template <class T> void input_grad(const Geometry& g, const T* y, const T* w, const T* bias, T* x, bool add);
/// w = sum over images and positions of y (x) im2col(x).
template <class T> void weight_grad(const Geometry& g, const T* x, const T* y, T* w, bool add);
/// b[k] = sum of a [n, channels, spatial] over n and spatial.
template <class T>
void channel_sum(const T* a, std::size_t n, std::size_t channels, std::size_t spatial, T* b, bool add);

#ifdef TAPEGRAD_HAVE_DNNL
// Float convolutions through oneDNN (src/kernels/conv_dnnl.cpp); usable for geometries
// with no zero-size axis. Each assigns its result.
namespace dnnl_path {
bool usable(const Geometry& g);
void forward(const Geometry& g, const float* x, const float* w, const float* bias, float* y);
void input_grad(const Geometry& g, const float* y, const float* w, float* x);
void weight_grad(const Geometry& g, const float* x, const float* y, float* w);
}  // namespace dnnl_path
#endif

}  // namespace tg::conv
