#pragma once
// What the pooling ops share (max_pool1d, max_pool2d, avg_pool2d, adaptive_avg_pool2d):
// the window geometry with PyTorch's rules and error messages, the kernels on raw memory,
// and the op structs. Every pooling is x [N, C, H, W] seen as N * C planes of H x W
// (max_pool1d: x [N, C, L] as planes of 1 x L), each output element reading one window.
//
// Max pooling is y = x at the saved position of each window's maximum, so its vjp is
// linear in grad_out: scatter grad_out to the saved positions. The scatter and its adjoint,
// the gather at the same positions, are a pair of internal ops (<op>_backward and
// <op>_double_backward) whose vjp is each other: derivatives of any order.
//   <op>_backward:         grad_x [x's shape] = scatter-add of g [y's shape] to the positions
//                          vjp: grad_g = gather of gg at the positions
//   <op>_double_backward:  y [y's shape] = gather of gx [x's shape] at the positions
//                          vjp: grad_gx = scatter-add of gy to the positions
// Average pooling is linear in x: its vjp spreads grad_out over the windows (the internal
// op <op>_backward), and the vjp of the spread is the pooling itself.

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg::pool {

using Shape = xt::xarray<double>::shape_type;

/// One spatial axis: output o reads input [begin(o), end(o)), the window clipped to the
/// input (padding is never stored: max pooling treats it as -inf, average pooling as 0).
struct Axis {
    std::size_t in = 1, out = 1, kernel = 1, stride = 1, pad = 0;
    bool adaptive = false;  ///< window [floor(o * in / out), ceil((o + 1) * in / out))

    std::size_t begin(std::size_t o) const noexcept
    {
        if (adaptive) return o * in / out;
        const std::size_t s = o * stride;  // the window's start in the padded input
        return s < pad ? 0 : s - pad;
    }
    std::size_t end(std::size_t o) const noexcept
    {
        if (adaptive) return ((o + 1) * in + out - 1) / out;
        return std::min(o * stride + (kernel - pad), in);  // kernel > pad: checked at entry
    }
    /// The divisor of average pooling along this axis: the whole kernel, padding included
    /// (count_include_pad; with ceil_mode off no window reaches past the padding), or the
    /// adaptive window's length.
    std::size_t divisor(std::size_t o) const noexcept { return adaptive ? end(o) - begin(o) : kernel; }
    /// Whether no input element is in two windows.
    bool disjoint() const noexcept { return adaptive ? in % out == 0 : stride >= kernel; }
};

/// The windows of a pooling over x [N, C, H, W] (or [N, C, L] when one_d: H = 1).
struct Geometry {
    Axis h, w;
    bool one_d = false;

    bool disjoint() const noexcept { return h.disjoint() && w.disjoint(); }
    std::size_t in_plane() const noexcept { return h.in * w.in; }
    std::size_t out_plane() const noexcept { return h.out * w.out; }
    /// y's shape from x's (or any shape starting with N, C).
    template <class S> Shape out_shape(const S& s) const
    {
        return one_d ? Shape{s[0], s[1], w.out} : Shape{s[0], s[1], h.out, w.out};
    }
    /// x's shape from y's.
    template <class S> Shape in_shape(const S& s) const
    {
        return one_d ? Shape{s[0], s[1], w.in} : Shape{s[0], s[1], h.in, w.in};
    }
};

template <class S> std::size_t planes(const S& shape) noexcept
{
    return shape[0] * shape[1];
}

// ---------------------------------------------------------------------------------------
// Checks at entry.

/// A pair of sizes as a message shows it: `3` for a 1-D op (its second element), else `[3, 2]`.
inline std::string show(const std::array<std::size_t, 2>& a, bool one_d)
{
    return one_d ? std::to_string(a[1]) : format_shape(a);
}

/// Checks x's rank and its spatial dims (nonzero: a window must hold an element).
template <class S> void check_input(const char* op, const S& shape, bool one_d)
{
    const std::size_t rank = one_d ? 3 : 4;
    if (shape.size() != rank) {
        throw Error(std::string(op) + ": x must have rank " + std::to_string(rank) +
                    (one_d ? " [N, C, L]" : " [N, C, H, W]") + " (x is " + format_shape(shape) + ")");
    }
    if (shape[rank - 1] == 0 || (!one_d && shape[2] == 0)) {
        throw Error(std::string(op) + ": x must have nonzero " + (one_d ? "L" : "H and W") + " (x is " +
                    format_shape(shape) + ")");
    }
}

/// The geometry of max_pool1d/2d and avg_pool2d (with PyTorch's rules, ceil_mode off):
/// output size (in + 2 * pad - kernel) / stride + 1, stride 0 meaning the kernel, padding
/// at most half the kernel. For one_d, x is [N, C, L] and only the second element of each
/// pair is used.
template <class S>
Geometry window_geometry(const char* op, const S& shape, bool one_d, std::array<std::size_t, 2> kernel,
                         std::array<std::size_t, 2> stride, std::array<std::size_t, 2> padding)
{
    check_input(op, shape, one_d);
    if (one_d) kernel[0] = stride[0] = 1, padding[0] = 0;
    if (kernel[0] == 0 || kernel[1] == 0)
        throw Error(std::string(op) + ": kernel size must be positive (kernel " + show(kernel, one_d) + ")");
    for (std::size_t j = 0; j < 2; ++j) {
        if (stride[j] == 0) stride[j] = kernel[j];
    }
    if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
        throw Error(std::string(op) + ": padding must be at most half of kernel size (padding " + show(padding, one_d) +
                    ", kernel " + show(kernel, one_d) + ")");
    }
    const std::array<std::size_t, 2> in{one_d ? 1 : shape[2], shape[shape.size() - 1]};
    std::array<std::size_t, 2> padded{};
    for (std::size_t j = 0; j < 2; ++j) {
        if (__builtin_add_overflow(in[j], 2 * padding[j], &padded[j])) {
            throw Error(std::string(op) + ": padding is too large (padding " + show(padding, one_d) + ", x " +
                        format_shape(shape) + ")");
        }
    }
    if (kernel[0] > padded[0] || kernel[1] > padded[1]) {
        throw Error(std::string(op) + ": kernel is larger than the padded input (kernel " + show(kernel, one_d) +
                    ", padded input " + show(padded, one_d) + ", x " + format_shape(shape) + ", padding " +
                    show(padding, one_d) + ")");
    }
    Geometry g;
    g.one_d = one_d;
    Axis* axes[2] = {&g.h, &g.w};
    for (std::size_t j = 0; j < 2; ++j) {
        Axis& a = *axes[j];
        a.in = in[j];
        a.kernel = kernel[j];
        a.stride = stride[j];
        a.pad = padding[j];
        a.out = (padded[j] - kernel[j]) / stride[j] + 1;
    }
    checked_size(op, g.out_shape(shape));
    return g;
}

/// The geometry of adaptive_avg_pool2d: output o along an axis of length `in` averages
/// [floor(o * in / out), ceil((o + 1) * in / out)).
template <class S> Geometry adaptive_geometry(const char* op, const S& shape, std::array<std::size_t, 2> output_size)
{
    check_input(op, shape, false);
    if (output_size[0] == 0 || output_size[1] == 0) {
        throw Error(std::string(op) + ": output size must be positive (output_size " + format_shape(output_size) +
                    ", x " + format_shape(shape) + ")");
    }
    Geometry g;
    Axis* axes[2] = {&g.h, &g.w};
    for (std::size_t j = 0; j < 2; ++j) {
        Axis& a = *axes[j];
        a.in = shape[2 + j];
        a.out = output_size[j];
        a.adaptive = true;
        std::size_t top = 0;  // the window bounds compute (o + 1) * in + out - 1 for o < out
        if (__builtin_mul_overflow(a.out, a.in + 1, &top)) {
            throw Error(std::string(op) + ": output size is too large (output_size " + format_shape(output_size) +
                        ", x " + format_shape(shape) + ")");
        }
    }
    checked_size(op, g.out_shape(shape));
    return g;
}

// ---------------------------------------------------------------------------------------
// Kernels on contiguous row-major memory, `planes` planes at a time.

/// Whether the windows are 2 x 2 with stride 2 and no padding, every one inside x: the
/// common case (a CNN's downsampling), which max_forward_2x2 computes.
inline bool max_2x2(const Geometry& g) noexcept
{
    const auto fits = [](const Axis& a) {
        return !a.adaptive && a.kernel == 2 && a.stride == 2 && a.pad == 0 && 2 * a.out <= a.in;
    };
    return fits(g.h) && fits(g.w) && g.w.in < std::size_t(std::numeric_limits<std::int32_t>::max());
}

/// Outputs [o0, o1) of one output row of max_forward_2x2: r0 and r1 are the windows' two
/// input rows, base the position of r0[0] in its plane. The window a b / c d (row-major
/// order) is reduced as a tree, first within each row, then the rows: "a later element wins
/// when it is greater or NaN" gives the same winner as the generic kernel's scan in
/// row-major order in any tree that only ever compares an earlier contender with a later
/// one (the winner is the last NaN if there is one, else the first maximum), and y is the
/// winner itself, so values and positions agree bit for bit. Branch-free over contiguous
/// outputs: the compiler vectorises it (deinterleaving the even and odd columns).
template <bool Save, class T>
inline void max_2x2_outputs(const T* __restrict r0, const T* __restrict r1, std::size_t W, std::int64_t base,
                            std::size_t o0, std::size_t o1, T* __restrict y, std::int64_t* __restrict pos) noexcept
{
    // The window's offsets in an integer as wide as T: the selects then need no widening of
    // the comparisons' masks (max_2x2 keeps W within int32).
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    const auto below = static_cast<I>(W);
    // Not unrolled into straight-line code when the compiler sees a constant trip count:
    // only the loop vectoriser turns the selects into masks (straight-line code branches).
#pragma GCC unroll 1
    for (std::size_t o = o0; o < o1; ++o) {
        const std::size_t w = 2 * o;
        const T a = r0[w], b = r0[w + 1], c = r1[w], d = r1[w + 1];
        const bool tb = (b > a) | (b != b);
        const bool td = (d > c) | (d != d);
        const T top = tb ? b : a, bottom = td ? d : c;
        // (bottom > top) | (bottom != bottom), written so that the compiler does not turn the
        // NaN test into a select of c's and d's (a select of booleans, which it does not
        // vectorise): bottom is NaN when c or d is.
        const bool t = (bottom > top) | (c != c) | (d != d);
        y[o] = t ? bottom : top;
        if constexpr (Save) {
            const I off = t ? below + I(td) : I(tb);
            pos[o] = base + static_cast<std::int64_t>(w) + off;
        }
    }
}

/// max_forward for 2 x 2 windows with stride 2 and no padding (max_2x2). Each row runs
/// max_2x2_outputs over a multiple of 4 outputs, then over the last 4, overlapping (those
/// outputs are computed twice, to the same values): the vectorised loop does all the work,
/// and the compiler's scalar remainder, whose branches would mispredict on real data, never
/// runs (rows of 7 outputs, a 14 x 14 input's, are common).
template <bool Save, class T>
void max_forward_2x2(const Geometry& g, std::size_t planes, const T* __restrict x, T* __restrict y,
                     std::int64_t* __restrict pos) noexcept
{
    constexpr std::size_t K = 4;
    const std::size_t W = g.w.in, OW = g.w.out, OH = g.h.out, in_plane = g.in_plane();
    const std::size_t bulk = OW < K ? OW : OW - OW % K;
    for (std::size_t p = 0; p < planes; ++p, x += in_plane) {
        for (std::size_t oh = 0; oh < OH; ++oh) {
            const T* r0 = x + 2 * oh * W;
            const auto base = static_cast<std::int64_t>(2 * oh * W);
            max_2x2_outputs<Save>(r0, r0 + W, W, base, 0, bulk, y, pos);
            if (bulk != OW) max_2x2_outputs<Save>(r0, r0 + W, W, base, OW - K, OW, y, pos);
            y += OW;
            if constexpr (Save) pos += OW;
        }
    }
}

/// y = the largest element of each window; NaN if the window holds one (the last NaN's
/// position, as PyTorch's CPU kernel); on ties the first maximum in row-major window order.
/// With Save, pos = each maximum's flat position within its plane (h * W + w).
//
// One output row at a time, window column offset dw in the outer loop and the outputs in
// the inner one: each output still sees its window in row-major order, but the inner loop
// is a select over contiguous outputs (the compiler vectorises it), not a branch that
// mispredicts on every other element of real data.
template <bool Save, class T>
void max_forward(const Geometry& g, std::size_t planes, const T* __restrict x, T* __restrict y,
                 std::int64_t* __restrict pos) noexcept
{
    // The common 2 x 2, stride 2 windows have a kernel of their own (the same results, bit
    // for bit).
    if (max_2x2(g)) return max_forward_2x2<Save>(g, planes, x, y, pos);
    const Axis& a = g.w;
    const std::size_t W = a.in, OW = a.out, sw = a.stride, pw = a.pad, in_plane = g.in_plane();
    for (std::size_t p = 0; p < planes; ++p, x += in_plane) {
        for (std::size_t oh = 0; oh < g.h.out; ++oh, y += OW) {
            const std::size_t h0 = g.h.begin(oh), h1 = g.h.end(oh);
            for (std::size_t ow = 0; ow < OW; ++ow) {
                y[ow] = -std::numeric_limits<T>::infinity();
                if constexpr (Save) pos[ow] = static_cast<std::int64_t>(h0 * W + a.begin(ow));
            }
            for (std::size_t h = h0; h < h1; ++h) {
                const T* row = x + h * W;
                for (std::size_t dw = 0; dw < a.kernel; ++dw) {
                    // The outputs whose window column dw is inside x: pw <= ow * sw + dw < W + pw
                    // (without padding, all: ceil_mode off keeps every window inside x).
                    std::size_t lo = 0, hi = OW;
                    if (pw != 0) {
                        lo = dw >= pw ? 0 : (pw - dw + sw - 1) / sw;
                        hi = W + pw > dw ? std::min(OW, (W + pw - dw + sw - 1) / sw) : 0;
                    }
                    for (std::size_t ow = lo; ow < hi; ++ow) {
                        const std::size_t col = ow * sw + dw - pw;
                        const T v = row[col];
                        const bool take = (v > y[ow]) | (v != v);
                        y[ow] = take ? v : y[ow];
                        if constexpr (Save) {
                            // A mask, not `take ? :`, which the compiler turns back into a branch
                            // in the loop's scalar remainder.
                            const auto at = static_cast<std::int64_t>(h * W + col);
                            pos[ow] ^= (pos[ow] ^ at) & -static_cast<std::int64_t>(take);
                        }
                    }
                }
            }
            if constexpr (Save) pos += OW;
        }
    }
}

/// gx[plane, pos[o]] += gy[o] for every output o (gx has x's shape).
template <class T>
void scatter_positions(const Geometry& g, std::size_t planes, const T* gy, const std::int64_t* pos, T* gx) noexcept
{
    const std::size_t in_plane = g.in_plane(), out_plane = g.out_plane();
    for (std::size_t p = 0; p < planes; ++p, gx += in_plane) {
        for (std::size_t o = 0; o < out_plane; ++o) gx[pos[o]] += gy[o];
        gy += out_plane;
        pos += out_plane;
    }
}

/// gy[o] (=|+=) gx[plane, pos[o]] for every output o: the adjoint of scatter_positions.
template <class T>
void gather_positions(const Geometry& g, std::size_t planes, const T* gx, const std::int64_t* pos, T* gy,
                      bool add) noexcept
{
    const std::size_t in_plane = g.in_plane(), out_plane = g.out_plane();
    for (std::size_t p = 0; p < planes; ++p, gx += in_plane) {
        for (std::size_t o = 0; o < out_plane; ++o) gy[o] = add ? gy[o] + gx[pos[o]] : gx[pos[o]];
        gy += out_plane;
        pos += out_plane;
    }
}

/// y (=|+=) the sum of each window divided by its divisor.
template <class T> void window_mean(const Geometry& g, std::size_t planes, const T* x, T* y, bool add) noexcept
{
    const std::size_t W = g.w.in, in_plane = g.in_plane();
    for (std::size_t p = 0; p < planes; ++p, x += in_plane) {
        for (std::size_t oh = 0; oh < g.h.out; ++oh) {
            const std::size_t h0 = g.h.begin(oh), h1 = g.h.end(oh), dh = g.h.divisor(oh);
            for (std::size_t ow = 0; ow < g.w.out; ++ow) {
                const std::size_t w0 = g.w.begin(ow), w1 = g.w.end(ow);
                T s = 0;
                for (std::size_t h = h0; h < h1; ++h) {
                    const T* row = x + h * W;
                    for (std::size_t w = w0; w < w1; ++w) s += row[w];
                }
                const T mean = s / static_cast<T>(dh * g.w.divisor(ow));
                *y = add ? *y + mean : mean;
                ++y;
            }
        }
    }
}

/// gx += gy spread evenly over each window (gy / divisor to every element of it): the
/// adjoint of window_mean.
template <class T> void spread_mean(const Geometry& g, std::size_t planes, const T* gy, T* gx) noexcept
{
    const std::size_t W = g.w.in, in_plane = g.in_plane();
    for (std::size_t p = 0; p < planes; ++p, gx += in_plane) {
        for (std::size_t oh = 0; oh < g.h.out; ++oh) {
            const std::size_t h0 = g.h.begin(oh), h1 = g.h.end(oh), dh = g.h.divisor(oh);
            for (std::size_t ow = 0; ow < g.w.out; ++ow) {
                const std::size_t w0 = g.w.begin(ow), w1 = g.w.end(ow);
                const T share = *gy++ / static_cast<T>(dh * g.w.divisor(ow));
                for (std::size_t h = h0; h < h1; ++h) {
                    T* row = gx + h * W;
                    for (std::size_t w = w0; w < w1; ++w) row[w] += share;
                }
            }
        }
    }
}

/// dst (n elements) (=|+=) what `scatter(T* zeroed)` adds up into a zeroed buffer. When
/// windows overlap, an element gets several contributions: adding them one by one onto an
/// existing gradient would round differently from adding their sum (and a gradient added
/// twice would not be exactly twice the gradient), so they are summed in a scratch buffer
/// first. Disjoint windows, the common case, scatter straight into dst.
template <class T, class F> void scatter_into(T* dst, std::size_t n, bool add, bool disjoint, F scatter)
{
    if (!add) {
        std::fill(dst, dst + n, T(0));
        scatter(dst);
        return;
    }
    if (disjoint) {
        scatter(dst);
        return;
    }
    static thread_local std::vector<T> sum;  // kept: steady-state training allocates nothing
    sum.assign(n, T(0));
    scatter(sum.data());
    kernel::add_or_assign(dst, static_cast<const T*>(sum.data()), n, true);
}

/// f(begin, end) over chunks of planes [begin, end), on the convolution threads when the
/// work is large (kit/parallel.hpp): planes are independent, so the result does not depend
/// on the thread count.
template <class F> void for_planes(const Geometry& g, std::size_t planes, F&& f) noexcept
{
    kernel::parallel_for(planes, g.in_plane() + g.out_plane(), std::forward<F>(f));
}

/// dst [planes x in_plane] (=|+=) g scattered to the positions of the maxima. Each chunk of
/// planes zeroes its own part first (when not adding), so the zeroing is split too.
template <class T>
void scatter_planes(const Geometry& geo, std::size_t n, const T* g, const std::int64_t* pos, T* dst, bool add)
{
    const std::size_t ip = geo.in_plane(), op = geo.out_plane();
    auto chunk = [&](T* out, bool zero) {
        for_planes(geo, n, [&](std::size_t b, std::size_t e) {
            T* d = out + b * ip;
            if (zero) std::fill(d, d + (e - b) * ip, T(0));
            scatter_positions(geo, e - b, g + b * op, pos + b * op, d);
        });
    };
    if (add && !geo.disjoint()) {
        scatter_into(dst, n * ip, true, false, [&](T* zeroed) { chunk(zeroed, false); });
    } else {
        chunk(dst, !add);
    }
}

/// gy [planes x out_plane] (=|+=) gx at the positions of the maxima.
template <class T>
void gather_planes(const Geometry& geo, std::size_t n, const T* gx, const std::int64_t* pos, T* gy, bool add)
{
    const std::size_t ip = geo.in_plane(), op = geo.out_plane();
    for_planes(geo, n, [&](std::size_t b, std::size_t e) {
        gather_positions(geo, e - b, gx + b * ip, pos + b * op, gy + b * op, add);
    });
}

// ---------------------------------------------------------------------------------------
// The ops. `Names` gives the public op's name (`op`) and its internal ops' (`backward`,
// `double_backward`).

template <class Names, bool Scatter> struct MaxRoute;

/// y = the maximum of each window; saves the positions of the maxima (int64, y's shape).
template <class Names> struct MaxPool {
    static constexpr const char* name = Names::op;
    Geometry geo;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        auto& y = c.output(geo.out_shape(x.shape()));
        const std::size_t ip = geo.in_plane(), op = geo.out_plane();
        const T* xd = x.data();
        T* yd = y.data();
        if (!c.recording()) {
            for_planes(geo, planes(x.shape()), [&](std::size_t b, std::size_t e) {
                max_forward<false>(geo, e - b, xd + b * ip, yd + b * op, nullptr);
            });
            return;
        }
        auto& pos = c.saved_indices(0);
        if (!detail::shapes_equal(pos.shape(), y.shape())) pos.resize(y.shape());
        std::int64_t* pd = pos.data();
        for_planes(geo, planes(x.shape()), [&](std::size_t b, std::size_t e) {
            max_forward<true>(geo, e - b, xd + b * ip, yd + b * op, pd + b * op);
        });
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const T* g = c.grad_out().data();
        const std::int64_t* pos = c.saved_indices(0).data();
        c.add_grad(0, x.shape(), [&](T* dst, bool add) { scatter_planes(geo, planes(x.shape()), g, pos, dst, add); });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        if (!v.needs_grad(0)) return;
        v.add_grad(0, record(MaxRoute<Names, true>{geo, &v.saved_indices(0)}, v.grad_out()));
    }
};

/// Scatter: grad_x [x's shape] = g [y's shape] added at the positions of the maxima.
/// Gather (not Scatter): gy [y's shape] = gx [x's shape] at those positions.
template <class Names, bool Scatter> struct MaxRoute {
    static constexpr const char* name = Scatter ? Names::backward : Names::double_backward;
    Geometry geo;
    const xt::xarray<std::int64_t>* positions;  // read by forward only (copied into the entry)

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& in = c.input(0);
        const std::size_t n = planes(in.shape());
        if constexpr (Scatter) {
            auto& gx = c.output(geo.in_shape(in.shape()));
            scatter_planes(geo, n, in.data(), positions->data(), gx.data(), false);
        } else {
            auto& gy = c.output(geo.out_shape(in.shape()));
            gather_planes(geo, n, in.data(), positions->data(), gy.data(), false);
        }
        if (c.recording()) {
            auto& keep = c.saved_indices(0);
            if (!detail::shapes_equal(keep.shape(), positions->shape())) keep.resize(positions->shape());
            std::copy(positions->begin(), positions->end(), keep.begin());
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& in = c.input(0);
        const std::size_t n = planes(in.shape());
        const T* g = c.grad_out().data();
        const std::int64_t* pos = c.saved_indices(0).data();
        c.add_grad(0, in.shape(), [&](T* dst, bool add) {
            if constexpr (Scatter) {
                gather_planes(geo, n, g, pos, dst, add);
            } else {
                scatter_planes(geo, n, g, pos, dst, add);
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        if (!v.needs_grad(0)) return;
        v.add_grad(0, record(MaxRoute<Names, !Scatter>{geo, &v.saved_indices(0)}, v.grad_out()));
    }
};

/// Not Transposed: y = the mean of each window (avg_pool2d, adaptive_avg_pool2d).
/// Transposed: grad_x [x's shape] = g [y's shape] spread evenly over the windows.
/// Each is linear, and the vjp of each is the other.
template <class Names, bool Transposed> struct WindowMean {
    static constexpr const char* name = Transposed ? Names::backward : Names::op;
    Geometry geo;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& in = c.input(0);
        const std::size_t n = planes(in.shape());
        if constexpr (Transposed) {
            auto& gx = c.output(geo.in_shape(in.shape()));
            scatter_into(gx.data(), gx.size(), false, true, [&](T* dst) { spread_mean(geo, n, in.data(), dst); });
        } else {
            window_mean(geo, n, in.data(), c.output(geo.out_shape(in.shape())).data(), false);
        }
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& in = c.input(0);
        const std::size_t n = planes(in.shape());
        const T* g = c.grad_out().data();
        c.add_grad(0, in.shape(), [&](T* dst, bool add) {
            if constexpr (Transposed) {
                window_mean(geo, n, g, dst, add);
            } else {
                scatter_into(dst, in.size(), add, geo.disjoint(), [&](T* gx) { spread_mean(geo, n, g, gx); });
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        if (!v.needs_grad(0)) return;
        v.add_grad(0, record(WindowMean<Names, !Transposed>{geo}, v.grad_out()));
    }
};

// ---------------------------------------------------------------------------------------
// Samples.

/// Values of the given shape that are a random permutation of evenly spaced numbers in
/// [-1, 1]: no two within 2 / size of each other, so that finite differences never cross
/// a tie in max pooling.
inline xt::xarray<double> distinct_values(std::mt19937_64& rng, const std::vector<std::size_t>& shape)
{
    xt::xarray<double> x = xt::xarray<double>::from_shape(shape);
    const std::size_t n = x.size();
    for (std::size_t i = 0; i < n; ++i) x.data()[i] = n == 1 ? 0.5 : -1.0 + 2.0 * double(i) / double(n - 1);
    for (std::size_t i = n; i-- > 1;) std::swap(x.data()[i], x.data()[rng() % (i + 1)]);  // Fisher-Yates
    return x;
}

/// A pair as a PyTorch argument: `(2, 3)`.
inline std::string torch_pair(const std::array<std::size_t, 2>& a)
{
    return "(" + std::to_string(a[0]) + ", " + std::to_string(a[1]) + ")";
}

/// Independent references for the samples: x [N, C, H, W] padded explicitly (max: -inf,
/// average: 0), then each window reduced by a plain loop.
inline xt::xarray<double> reference_pool(const xt::xarray<double>& x, std::array<std::size_t, 2> k,
                                         std::array<std::size_t, 2> s, std::array<std::size_t, 2> p, bool max)
{
    const std::size_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    const std::size_t hp = h + 2 * p[0], wp = w + 2 * p[1];
    const std::size_t oh = (hp - k[0]) / s[0] + 1, ow = (wp - k[1]) / s[1] + 1;
    const double fill = max ? -std::numeric_limits<double>::infinity() : 0.0;
    xt::xarray<double> padded = xt::xarray<double>::from_shape({n, c, hp, wp});
    std::fill(padded.begin(), padded.end(), fill);
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = 0; b < c; ++b)
            for (std::size_t i = 0; i < h; ++i)
                for (std::size_t j = 0; j < w; ++j) padded(a, b, i + p[0], j + p[1]) = x(a, b, i, j);
    xt::xarray<double> y = xt::zeros<double>({n, c, oh, ow});
    for (std::size_t a = 0; a < n; ++a)
        for (std::size_t b = 0; b < c; ++b)
            for (std::size_t i = 0; i < oh; ++i)
                for (std::size_t j = 0; j < ow; ++j) {
                    double r = fill;
                    for (std::size_t u = 0; u < k[0]; ++u)
                        for (std::size_t v = 0; v < k[1]; ++v) {
                            const double e = padded(a, b, i * s[0] + u, j * s[1] + v);
                            r = max ? std::max(r, e) : r + e;
                        }
                    y(a, b, i, j) = max ? r : r / double(k[0] * k[1]);
                }
    return y;
}

}  // namespace tg::pool
