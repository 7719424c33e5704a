// Convolution kernels (see conv.hpp): im2col + gemm per image and group. A 1x1 convolution
// with stride 1 and no padding needs no im2col: the image is its own column matrix.
// Column buffers are per thread and reused, so steady-state training allocates nothing.

#include "kernels/conv.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tapegrad/kit/blas.hpp"
#include "tapegrad/kit/kernels.hpp"

namespace tg::conv {
namespace {

using Index = std::ptrdiff_t;

bool is_pointwise(const Geometry& g)
{
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// The range [lo, hi) of output positions o whose input position o * stride + offset lies
// in [0, size).
inline void valid_range(Index offset, Index stride, Index size, Index out, Index& lo, Index& hi)
{
    lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    hi = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
    lo = std::min(lo, out);
    hi = std::max(lo, std::min(hi, out));
}

// Between one image's channels x [cg, ih, iw] and their columns col [cg * kh * kw, oh * ow]
// (row (c, ki, kj), column (oy, ox) holds x[c, oy * sh + ki * dh - ph, ox * sw + kj * dw - pw],
// zero outside x). Back = false: im2col, writes every element of col. Back = true: col2im,
// adds every column element to its x element (the adjoint).
template <bool Back, class T> void columns(const Geometry& g, std::size_t cg, T* col, T* x)
{
    const Index oh = g.oh, ow = g.ow, ih = g.ih, iw = g.iw, sw = g.sw;
    const std::size_t plane = std::size_t(g.ih) * g.iw, p = std::size_t(g.oh) * g.ow;
    T* row = col;
    for (std::size_t ch = 0; ch < cg; ++ch) {
        T* xc = x + ch * plane;
        for (Index ki = 0; ki < Index(g.kh); ++ki) {
            Index ylo, yhi;
            valid_range(ki * Index(g.dh) - Index(g.ph), g.sh, ih, oh, ylo, yhi);
            for (Index kj = 0; kj < Index(g.kw); ++kj, row += p) {
                const Index xoff = kj * Index(g.dw) - Index(g.pw);
                Index xlo, xhi;
                valid_range(xoff, sw, iw, ow, xlo, xhi);
                if constexpr (!Back) std::fill(row, row + ylo * ow, T(0));
                for (Index oy = ylo; oy < yhi; ++oy) {
                    T* r = row + oy * ow;
                    T* at = xc + (oy * Index(g.sh) + ki * Index(g.dh) - Index(g.ph)) * iw + xoff;
                    if constexpr (Back) {
                        if (sw == 1) {
                            kernel::add_or_assign(at + xlo, static_cast<const T*>(r + xlo), std::size_t(xhi - xlo),
                                                  true);
                        } else {
                            for (Index ox = xlo; ox < xhi; ++ox) at[ox * sw] += r[ox];
                        }
                    } else {
                        std::fill(r, r + xlo, T(0));
                        if (sw == 1) {
                            std::memcpy(r + xlo, at + xlo, std::size_t(xhi - xlo) * sizeof(T));
                        } else {
                            for (Index ox = xlo; ox < xhi; ++ox) r[ox] = at[ox * sw];
                        }
                        std::fill(r + xhi, r + ow, T(0));
                    }
                }
                if constexpr (!Back) std::fill(row + yhi * ow, row + p, T(0));
            }
        }
    }
}

template <class T> void im2col(const Geometry& g, std::size_t cg, const T* x, T* col)
{
    columns<false>(g, cg, col, const_cast<T*>(x));  // reads x only
}

template <class T> void col2im_add(const Geometry& g, std::size_t cg, const T* col, T* x)
{
    columns<true>(g, cg, const_cast<T*>(col), x);  // reads col only
}

template <class T> std::vector<T>& col_buffer()
{
    static thread_local std::vector<T> buf;
    return buf;
}
template <class T> std::vector<T>& sum_buffer()
{
    static thread_local std::vector<T> buf;
    return buf;
}

// Runs `assign(dst)` straight into `out` or, when adding, into a scratch buffer that is
// then added: a gradient added twice is then exactly twice the gradient.
template <class T, class F> void assign_or_add(T* out, std::size_t size, bool add, F assign)
{
    if (!add) {
        assign(out);
        return;
    }
    auto& buf = sum_buffer<T>();
    buf.resize(size);
    assign(buf.data());
    kernel::add_or_assign(out, static_cast<const T*>(buf.data()), size, true);
}

// Whether this call goes to oneDNN: float, and no zero-size axis.
template <class T> bool use_dnnl([[maybe_unused]] const Geometry& g)
{
#ifdef TAPEGRAD_HAVE_DNNL
    return std::is_same<T, float>::value && dnnl_path::usable(g);
#else
    return false;
#endif
}

template <class T> void forward_assign(const Geometry& g, const T* x, const T* w, const T* bias, T* y)
{
#ifdef TAPEGRAD_HAVE_DNNL
    if constexpr (std::is_same<T, float>::value) {
        if (use_dnnl<T>(g)) return dnnl_path::forward(g, x, w, bias, y);
    }
#endif
    const std::size_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw;
    const std::size_t p = std::size_t(g.oh) * g.ow, plane = std::size_t(g.ih) * g.iw;
    const bool pointwise = is_pointwise(g);
    auto& col = col_buffer<T>();
    if (!pointwise) col.resize(k * p);
    for (std::size_t n = 0; n < g.n; ++n) {
        for (std::size_t gi = 0; gi < g.groups; ++gi) {
            const T* xg = x + (n * g.c + gi * cg) * plane;
            T* yg = y + (n * g.o + gi * og) * p;
            const T* cols = xg;
            if (!pointwise) {
                im2col(g, cg, xg, col.data());
                cols = col.data();
            }
            if (bias != nullptr) {
                for (std::size_t r = 0; r < og; ++r) std::fill(yg + r * p, yg + (r + 1) * p, bias[gi * og + r]);
            }
            blas::gemm(false, false, og, p, k, T(1), w + gi * og * k, k, cols, p, bias != nullptr ? T(1) : T(0), yg, p);
        }
    }
}

// x = conv^T(y, w) without the bias, by gemm + col2im.
template <class T> void input_grad_gemm(const Geometry& g, const T* y, const T* w, T* x)
{
    const std::size_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw;
    const std::size_t p = std::size_t(g.oh) * g.ow, plane = std::size_t(g.ih) * g.iw;
    const bool pointwise = is_pointwise(g);
    auto& col = col_buffer<T>();
    if (!pointwise) col.resize(k * p);
    for (std::size_t n = 0; n < g.n; ++n) {
        for (std::size_t gi = 0; gi < g.groups; ++gi) {
            T* xg = x + (n * g.c + gi * cg) * plane;
            const T* yg = y + (n * g.o + gi * og) * p;
            if (pointwise) {
                blas::gemm(true, false, k, p, og, T(1), w + gi * og * k, k, yg, p, T(0), xg, p);
            } else {
                blas::gemm(true, false, k, p, og, T(1), w + gi * og * k, k, yg, p, T(0), col.data(), p);
                std::fill(xg, xg + cg * plane, T(0));
                col2im_add(g, cg, col.data(), xg);
            }
        }
    }
}

template <class T> void input_grad_assign(const Geometry& g, const T* y, const T* w, const T* bias, T* x)
{
    bool done = false;
#ifdef TAPEGRAD_HAVE_DNNL
    if constexpr (std::is_same<T, float>::value) {
        if (use_dnnl<T>(g)) {
            dnnl_path::input_grad(g, y, w, x);
            done = true;
        }
    }
#endif
    if (!done) input_grad_gemm(g, y, w, x);
    if (bias == nullptr) return;
    const std::size_t plane = std::size_t(g.ih) * g.iw;
    for (std::size_t n = 0; n < g.n; ++n) {
        for (std::size_t ch = 0; ch < g.c; ++ch) {
            T* xc = x + (n * g.c + ch) * plane;
            const T b = bias[ch];
            for (std::size_t i = 0; i < plane; ++i) xc[i] += b;
        }
    }
}

template <class T> void weight_grad_assign(const Geometry& g, const T* x, const T* y, T* w)
{
#ifdef TAPEGRAD_HAVE_DNNL
    if constexpr (std::is_same<T, float>::value) {
        if (use_dnnl<T>(g)) return dnnl_path::weight_grad(g, x, y, w);
    }
#endif
    const std::size_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw;
    const std::size_t p = std::size_t(g.oh) * g.ow, plane = std::size_t(g.ih) * g.iw;
    const bool pointwise = is_pointwise(g);
    auto& col = col_buffer<T>();
    if (!pointwise) col.resize(k * p);
    std::fill(w, w + g.w_size(), T(0));
    for (std::size_t n = 0; n < g.n; ++n) {
        for (std::size_t gi = 0; gi < g.groups; ++gi) {
            const T* xg = x + (n * g.c + gi * cg) * plane;
            const T* yg = y + (n * g.o + gi * og) * p;
            const T* cols = xg;
            if (!pointwise) {
                im2col(g, cg, xg, col.data());
                cols = col.data();
            }
            blas::gemm(false, true, og, k, p, T(1), yg, p, cols, p, T(1), w + gi * og * k, k);
        }
    }
}

}  // namespace

template <class T> void forward(const Geometry& g, const T* x, const T* w, const T* bias, T* y, bool add)
{
    assign_or_add(y, g.y_size(), add, [&](T* dst) { forward_assign(g, x, w, bias, dst); });
}

template <class T> void input_grad(const Geometry& g, const T* y, const T* w, const T* bias, T* x, bool add)
{
    assign_or_add(x, g.x_size(), add, [&](T* dst) { input_grad_assign(g, y, w, bias, dst); });
}

template <class T> void weight_grad(const Geometry& g, const T* x, const T* y, T* w, bool add)
{
    assign_or_add(w, g.w_size(), add, [&](T* dst) { weight_grad_assign(g, x, y, dst); });
}

template <class T>
void channel_sum(const T* a, std::size_t n, std::size_t channels, std::size_t spatial, T* b, bool add)
{
    for (std::size_t ch = 0; ch < channels; ++ch) {
        double s = 0;  // float sums over a whole batch keep their precision
        for (std::size_t i = 0; i < n; ++i) {
            const T* row = a + (i * channels + ch) * spatial;
            for (std::size_t j = 0; j < spatial; ++j) s += row[j];
        }
        b[ch] = add ? T(b[ch] + T(s)) : T(s);
    }
}

// NOLINTBEGIN(bugprone-macro-parentheses): T names a type
#define TAPEGRAD_CONV_INSTANTIATE(T)                                                                                   \
    template void forward<T>(const Geometry&, const T*, const T*, const T*, T*, bool);                                 \
    template void input_grad<T>(const Geometry&, const T*, const T*, const T*, T*, bool);                              \
    template void weight_grad<T>(const Geometry&, const T*, const T*, T*, bool);                                       \
    template void channel_sum<T>(const T*, std::size_t, std::size_t, std::size_t, T*, bool);
// NOLINTEND(bugprone-macro-parentheses)
TAPEGRAD_CONV_INSTANTIATE(float)
TAPEGRAD_CONV_INSTANTIATE(double)
#undef TAPEGRAD_CONV_INSTANTIATE

}  // namespace tg::conv
