// ops/nn/scaled_dot_product_attention.cpp — attention (torch.nn.functional.scaled_dot_product_attention)
//   for q [..., L, E], k [..., S, E], v [..., S, Ev] with the same leading dims:
//     s [..., L, S] = scale q k^T            (scale = 1 / sqrt(E) unless given)
//     p = softmax of s along S over the allowed keys only (a mask's true entries, and j <= i when
//         causal; both together when both are given), 0 at the others
//     y [..., L, Ev] = (p m) v               (m: the dropout mask, 1 / (1 - dropout_p) or 0; else 1)
//   vjp: grad_v = (p m)^T grad_out
//        dp = (grad_out v^T) m,   ds = scale p (dp - sum_S(dp p))
//        grad_q = ds k,   grad_k = ds^T q
// A query row that may attend to no key at all gives y = 0 and zero gradients. PyTorch gives
// NaN there (a softmax over nothing but -inf), which then spreads through every gradient.
// One fused entry: per matrix of the leading dims a gemm for the scores, the masked softmax
// in place, a gemm for y; it keeps p (and the allowed keys and the dropout mask, when there
// are any) in buffers owned by the tape entry, reused pass after pass. The rule recomputes
// p from q and k with tg ops, so attention is differentiable twice.

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "mask_hash.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Attention softmax(scale q k^T) v over the allowed keys (torch's scaled_dot_product_attention): its options.
struct AttentionOptions {
    /// Query i attends only to keys j <= i (top-left aligned, as PyTorch); combines with a mask.
    bool is_causal = false;
    /// Dropout probability of the attention weights, in [0, 1).
    double dropout_p = 0.0;
    /// The factor of q k^T; unset: 1 / sqrt(E).
    std::optional<double> scale;
    /// The generator of the dropout masks (same generator state, same mask); null: tg::default_generator().
    Generator* generator = nullptr;
};
///@{
/// softmax(scale q k^T over the allowed keys) v for q [..., L, E], k [..., S, E], v [..., S, Ev] with the same
/// leading dims (torch.nn.functional.scaled_dot_product_attention); attn_mask (broadcast to [..., L, S]) is true
/// where a query may attend (PyTorch 2's boolean mask). A query with no allowed key gives 0 and a zero gradient
/// (PyTorch gives NaN).
template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v,
                                    const AttentionOptions& options = {});
template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v,
                                    const xt::xarray<bool>& attn_mask, const AttentionOptions& options = {});
///@}
//! end

namespace {

struct ScaledDotProductAttention {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    const xt::xarray<bool>* mask;  // the caller's mask (or null), read by forward only (its result is saved)
    bool has_mask;
    bool causal;
    double scale;
    double p;
    Generator* gen;  // the caller's generator, read by forward only

    bool restricted() const noexcept { return has_mask || causal; }

    // Slots of saved(): the weights p, the allowed keys (1 or 0), the dropout mask, scratch.
    static constexpr std::size_t probs = 0, allowed = 1, drop = 2, scratch = 3, scores_grad = 4;

    struct Dims {
        std::size_t batch = 1, l = 0, s = 0, e = 0, ev = 0;
    };
    template <class T> static Dims dims_of(const OpContext<T>& c)
    {
        Dims d;
        const auto& q = c.input(0).shape();
        const auto& v = c.input(2).shape();
        const std::size_t r = q.size();
        for (std::size_t j = 0; j + 2 < r; ++j) d.batch *= q[j];
        d.l = q[r - 2];
        d.e = q[r - 1];
        d.s = c.input(1).shape()[r - 2];
        d.ev = v[r - 1];
        return d;
    }

    // Writes allowed [batch, L, S] (1 or 0) from the mask (broadcast) and causality.
    template <class T, class S> void fill_allowed(const Dims& d, const S& full, T* out) const
    {
        const std::size_t r = full.size();
        S step(r, 0);  // small vectors: no allocation up to rank 4
        if (mask != nullptr) {
            const auto& ms = mask->shape();
            std::size_t st = 1;
            for (std::size_t j = ms.size(); j-- > 0;) {
                step[r - ms.size() + j] = ms[j] == 1 ? 0 : st;
                st *= ms[j];
            }
        }
        S idx(r - 2, 0);
        for (std::size_t b = 0; b < d.batch; ++b) {
            std::size_t off = 0;
            for (std::size_t j = 0; j < idx.size(); ++j) off += idx[j] * step[j];
            for (std::size_t i = 0; i < d.l; ++i) {
                T* row = out + (b * d.l + i) * d.s;
                for (std::size_t j = 0; j < d.s; ++j) {
                    bool ok = !causal || j <= i;
                    if (ok && mask != nullptr) ok = mask->data()[off + i * step[r - 2] + j * step[r - 1]];
                    row[j] = ok ? T(1) : T(0);
                }
            }
            for (std::size_t j = idx.size(); j-- > 0;) {  // the next batch index, last dim fastest
                if (++idx[j] < full[j]) break;
                idx[j] = 0;
            }
        }
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const Dims d = dims_of(c);
        auto& scratch_buf = c.saved(scratch);  // the highest slot first: creating a slot may move the others
        auto& drop_mask = c.saved(drop);
        auto& allow = c.saved(allowed);
        auto& prob = c.saved(probs);
        const auto& qs = c.input(0).shape();
        auto full = qs;  // [..., L, S]
        full.back() = d.s;
        if (!detail::shapes_equal(prob.shape(), full)) prob.resize(full);
        if (restricted()) {
            if (!detail::shapes_equal(allow.shape(), full)) allow.resize(full);
            fill_allowed(d, full, allow.data());
        }
        const T keep = p > 0 ? T(1) / (T(1) - static_cast<T>(p)) : T(1);
        if (p > 0) {
            if (!detail::shapes_equal(drop_mask.shape(), full)) drop_mask.resize(full);
            const std::uint64_t key = (*gen)();
            const std::uint32_t threshold = dropout_mask::threshold(p);
            T* m = drop_mask.data();
            for (std::size_t i = 0; i < drop_mask.size(); ++i) {
                m[i] = dropout_mask::uniform24(i, key) < threshold ? T(0) : keep;
            }
            if (scratch_buf.size() != d.l * d.s) scratch_buf.resize({d.l, d.s});
        }
        auto out_shape = qs;  // [..., L, Ev]
        out_shape.back() = d.ev;
        T* y = c.output(out_shape).data();
        const T* q = c.input(0).data();
        const T* k = c.input(1).data();
        const T* v = c.input(2).data();
        const std::size_t ls = d.l * d.s;
        for (std::size_t b = 0; b < d.batch; ++b) {
            T* pb = prob.data() + b * ls;
            blas::gemm(false, true, d.l, d.s, d.e, static_cast<T>(scale), q + b * d.l * d.e, d.e, k + b * d.s * d.e,
                       d.e, T(0), pb, d.s);
            const T* ab = restricted() ? allow.data() + b * ls : nullptr;
            for (std::size_t i = 0; i < d.l; ++i)
                softmax_row(pb + i * d.s, ab != nullptr ? ab + i * d.s : nullptr, d.s);
            const T* weights = pb;
            if (p > 0) {
                kernel::map<false>(
                    ls, scratch_buf.data(), [](auto a, auto m) { return a * m; }, static_cast<const T*>(pb),
                    static_cast<const T*>(drop_mask.data() + b * ls));
                weights = scratch_buf.data();
            }
            blas::gemm(false, false, d.l, d.ev, d.s, T(1), weights, d.s, v + b * d.s * d.ev, d.ev, T(0),
                       y + b * d.l * d.ev, d.ev);
        }
    }

    // The row's softmax over its allowed entries (all when `allow` is null), 0 elsewhere and
    // everywhere in a row without an allowed entry. Vectorised: the maximum, the exponentials
    // with their sum, the scaling; a NaN score makes its row NaN, as the plain formula would.
    template <class T> static void softmax_row(T* row, const T* allow, std::size_t n)
    {
        using B = kernel::batch<T>;
        constexpr std::size_t w = B::size;
        const T lowest = -std::numeric_limits<T>::infinity();
        const B vlow(lowest), zero(T(0));
        // A disallowed entry reads as -inf for the maximum and gives exp = 0.
        auto load = [&](std::size_t j) {
            const B x = B::load_unaligned(row + j);
            return allow == nullptr ? x : xsimd::select(B::load_unaligned(allow + j) != zero, x, vlow);
        };
        auto scalar = [&](std::size_t j) { return allow == nullptr || allow[j] != T(0) ? row[j] : lowest; };
        bool any = allow == nullptr && n != 0;
        if (allow != nullptr) {
            for (std::size_t j = 0; j < n && !any; ++j) any = allow[j] != T(0);
        }
        if (!any) {
            std::fill_n(row, n, T(0));
            return;
        }
        std::size_t j = 0;
        B vm = vlow;
        for (; j + w <= n; j += w) vm = xsimd::max(vm, load(j));
        alignas(64) T lanes[w];
        vm.store_aligned(lanes);
        T m = lowest;
        for (std::size_t i = 0; i < w; ++i) m = lanes[i] > m ? lanes[i] : m;
        for (; j < n; ++j) m = scalar(j) > m ? scalar(j) : m;
        const B bm(m);
        B vt = zero;
        for (j = 0; j + w <= n; j += w) {
            B e = fn::exp(B::load_unaligned(row + j) - bm);
            if (allow != nullptr) e = xsimd::select(B::load_unaligned(allow + j) != zero, e, zero);
            e.store_unaligned(row + j);
            vt += e;
        }
        T total = xsimd::hadd(vt);
        for (; j < n; ++j) {
            const T e = allow != nullptr && allow[j] == T(0) ? T(0) : std::exp(row[j] - m);
            row[j] = e;
            total += e;
        }
        const T inv = T(1) / total;
        const kernel::Bcast<T> s{inv};
        kernel::map<false>(
            n, row, [](auto a, auto f) { return a * f; }, static_cast<const T*>(row), s);
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const Dims d = dims_of(c);
        auto& ds = c.saved(scores_grad);  // the highest slot first: creating a slot may move the others
        auto& scratch_buf = c.saved(scratch);
        const auto& prob = c.saved(probs);
        const T* drop_mask = p > 0 ? c.saved(drop).data() : nullptr;
        if (ds.shape() != prob.shape()) ds.resize(prob.shape());
        const T* q = c.input(0).data();
        const T* k = c.input(1).data();
        const T* v = c.input(2).data();
        const T* g = c.grad_out().data();
        const std::size_t ls = d.l * d.s;
        const auto sc = static_cast<T>(scale);
        if (c.needs_grad(0) || c.needs_grad(1)) {
            for (std::size_t b = 0; b < d.batch; ++b) {
                T* db = ds.data() + b * ls;
                const T* pb = prob.data() + b * ls;
                blas::gemm(false, true, d.l, d.s, d.ev, T(1), g + b * d.l * d.ev, d.ev, v + b * d.s * d.ev, d.ev, T(0),
                           db, d.s);
                if (drop_mask != nullptr) {
                    kernel::map<false>(
                        ls, db, [](auto a, auto m) { return a * m; }, static_cast<const T*>(db), drop_mask + b * ls);
                }
                for (std::size_t i = 0; i < d.l; ++i) {
                    T* row = db + i * d.s;
                    const T* pr = pb + i * d.s;
                    T dot = 0;
                    for (std::size_t j = 0; j < d.s; ++j) dot += row[j] * pr[j];
                    const kernel::Bcast<T> dt{dot}, s{sc};
                    kernel::map<false>(
                        d.s, row, [](auto a, auto pv, auto t, auto f) { return f * pv * (a - t); },
                        static_cast<const T*>(row), pr, dt, s);
                }
            }
        }
        c.add_grad(0, c.input(0).shape(), [&](T* dst, bool add) {
            for (std::size_t b = 0; b < d.batch; ++b) {
                blas::gemm_to(dst + b * d.l * d.e, add, false, false, d.l, d.e, d.s, ds.data() + b * ls, d.s,
                              k + b * d.s * d.e, d.e);
            }
        });
        c.add_grad(1, c.input(1).shape(), [&](T* dst, bool add) {
            for (std::size_t b = 0; b < d.batch; ++b) {
                blas::gemm_to(dst + b * d.s * d.e, add, true, false, d.s, d.e, d.l, ds.data() + b * ls, d.s,
                              q + b * d.l * d.e, d.e);
            }
        });
        c.add_grad(2, c.input(2).shape(), [&](T* dst, bool add) {
            if (drop_mask != nullptr && scratch_buf.size() != ls) scratch_buf.resize({d.l, d.s});
            for (std::size_t b = 0; b < d.batch; ++b) {
                const T* weights = prob.data() + b * ls;
                if (drop_mask != nullptr) {
                    kernel::map<false>(
                        ls, scratch_buf.data(), [](auto a, auto m) { return a * m; }, weights, drop_mask + b * ls);
                    weights = scratch_buf.data();
                }
                blas::gemm_to(dst + b * d.s * d.ev, add, true, false, d.s, d.ev, d.l, weights, d.s, g + b * d.l * d.ev,
                              d.ev);
            }
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const auto sc = static_cast<T>(scale);
        const Var<T> q = v.input(0), k = v.input(1), val = v.input(2);
        const Var<T> scores = matmul(q, k, false, true) * sc;
        Var<T> prob;
        if (restricted()) {
            // Scores of keys that may not be attended to become the lowest value, whose weight
            // is exactly 0; rows without any allowed key keep their scores (a finite softmax,
            // then zeroed with its gradient), so nothing here is ever NaN.
            const xt::xarray<T>& allow = v.saved(allowed);
            const std::size_t s = allow.shape().back(), rows = s == 0 ? 0 : allow.size() / s;
            xt::xarray<bool> masked_out = xt::xarray<bool>::from_shape(allow.shape());
            xt::xarray<bool> hidden = xt::xarray<bool>::from_shape(allow.shape());
            for (std::size_t r = 0; r < rows; ++r) {
                bool any = false;
                for (std::size_t j = 0; j < s; ++j) any = any || allow.data()[r * s + j] != T(0);
                for (std::size_t j = 0; j < s; ++j) {
                    masked_out.data()[r * s + j] = allow.data()[r * s + j] == T(0);
                    hidden.data()[r * s + j] = any && allow.data()[r * s + j] == T(0);
                }
            }
            prob = tg::masked_fill(softmax(tg::masked_fill(scores, hidden, std::numeric_limits<T>::lowest()), -1),
                                   masked_out, T(0));
        } else {
            prob = softmax(scores, -1);
        }
        const Var<T>& g = v.grad_out();
        const Var<T> drop_mask = p > 0 ? constant(v.saved(drop)) : Var<T>();
        if (v.needs_grad(2)) v.add_grad(2, matmul(p > 0 ? prob * drop_mask : prob, g, true, false));
        if (!v.needs_grad(0) && !v.needs_grad(1)) return;
        Var<T> dp = matmul(g, val, false, true);
        if (p > 0) dp = dp * drop_mask;
        const Var<T> ds = prob * (dp - sum(dp * prob, {-1}, true)) * sc;
        if (v.needs_grad(0)) v.add_grad(0, matmul(ds, k));
        if (v.needs_grad(1)) v.add_grad(1, matmul(ds, q, true, false));
    }
};

template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, const xt::xarray<bool>* mask,
                 const AttentionOptions& options)
{
    const char* op = ScaledDotProductAttention::name;
    const auto& sq = input_shape(op, q);
    const auto& sk = input_shape(op, k);
    const auto& sv = input_shape(op, v);
    // The messages are built only when a check fails: a valid call allocates nothing here.
    auto all = [&] { return "q is " + format_shape(sq) + ", k is " + format_shape(sk) + ", v is " + format_shape(sv); };
    if (sq.size() < 2 || sk.size() != sq.size() || sv.size() != sq.size()) {
        throw Error(std::string(op) +
                    ": q, k and v must be [..., L, E], [..., S, E] and [..., S, Ev] of one rank >= 2: " + all());
    }
    const std::size_t r = sq.size();
    for (std::size_t j = 0; j + 2 < r; ++j) {
        if (sk[j] != sq[j] || sv[j] != sq[j])
            throw Error(std::string(op) + ": q, k and v must have the same leading dims: " + all());
    }
    if (sk[r - 1] != sq[r - 1]) {
        throw Error(std::string(op) + ": q and k must have the same embedding size E (last dim): " + all());
    }
    if (sv[r - 2] != sk[r - 2]) throw Error(std::string(op) + ": k and v must have the same length S: " + all());
    if (mask != nullptr) {
        // The scores' shape is q's with S last.
        auto score_dim = [&](std::size_t j) { return j + 1 == r ? sk[r - 2] : sq[j]; };
        bool fits = mask->dimension() <= r;
        for (std::size_t j = 0; fits && j < mask->dimension(); ++j) {
            const std::size_t dm = mask->shape()[mask->dimension() - 1 - j];
            fits = dm == 1 || dm == score_dim(r - 1 - j);
        }
        if (!fits) {
            std::vector<std::size_t> scores(sq.begin(), sq.end());
            scores.back() = sk[r - 2];
            throw Error(std::string(op) + ": attn_mask " + format_shape(mask->shape()) +
                        " does not broadcast to the scores [..., L, S] " + format_shape(scores));
        }
    }
    if (!(options.dropout_p >= 0 && options.dropout_p < 1)) {
        throw Error(std::string(op) + ": dropout_p must be in [0, 1), got " + format_number(options.dropout_p));
    }
    const double scale = options.scale ? *options.scale : 1.0 / std::sqrt(static_cast<double>(sq[r - 1]));
    if (!std::isfinite(scale)) throw Error(std::string(op) + ": scale must be finite, got " + format_number(scale));
    Generator* gen = options.generator != nullptr ? options.generator : &default_generator();
    return record(ScaledDotProductAttention{mask, mask != nullptr, options.is_causal, scale, options.dropout_p, gen}, q,
                  k, v);
}

}  // namespace

template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, const AttentionOptions& options)
{
    return attention(q, k, v, static_cast<const xt::xarray<bool>*>(nullptr), options);
}

template <class T>
Var<T> scaled_dot_product_attention(const Var<T>& q, const Var<T>& k, const Var<T>& v,
                                    const xt::xarray<bool>& attn_mask, const AttentionOptions& options)
{
    return attention(q, k, v, &attn_mask, options);
}

#define TAPEGRAD_INSTANTIATE_SDPA(T)                                                                                   \
    template Var<T> scaled_dot_product_attention<T>(const Var<T>&, const Var<T>&, const Var<T>&,                       \
                                                    const AttentionOptions&);                                          \
    template Var<T> scaled_dot_product_attention<T>(const Var<T>&, const Var<T>&, const Var<T>&,                       \
                                                    const xt::xarray<bool>&, const AttentionOptions&);
TAPEGRAD_INSTANTIATE_SDPA(float)
TAPEGRAD_INSTANTIATE_SDPA(double)
#undef TAPEGRAD_INSTANTIATE_SDPA

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.5, 1.5); };
    // The plain formula, matrix by matrix: scores, the softmax over allowed keys (0 for a row
    // without any), the product with v.
    struct Ref {
        std::optional<xt::xarray<bool>> mask;
        bool causal;
        double scale;
        xt::xarray<double> operator()(const std::vector<xt::xarray<double>>& x) const
        {
            const std::size_t r = x[0].dimension();
            const std::size_t l = x[0].shape()[r - 2], e = x[0].shape()[r - 1], s = x[1].shape()[r - 2],
                              ev = x[2].shape()[r - 1];
            const std::size_t batch = x[0].size() / (l * e);
            std::vector<std::size_t> full(x[0].shape().begin(), x[0].shape().end());
            full.back() = s;
            xt::xarray<double> allow = xt::ones<double>(full);
            if (mask) {
                xt::xarray<double> md = xt::xarray<double>::from_shape(mask->shape());
                for (std::size_t i = 0; i < mask->size(); ++i) md.data()[i] = mask->data()[i] ? 1 : 0;
                allow = xt::broadcast(md, full);
            }
            std::vector<std::size_t> out_shape(x[0].shape().begin(), x[0].shape().end());
            out_shape.back() = ev;
            xt::xarray<double> y = xt::zeros<double>(out_shape);
            for (std::size_t b = 0; b < batch; ++b) {
                for (std::size_t i = 0; i < l; ++i) {
                    std::vector<double> w(s, 0.0);
                    double m = -1e300, total = 0;
                    for (std::size_t j = 0; j < s; ++j) {
                        if (allow.data()[(b * l + i) * s + j] == 0 || (causal && j > i)) continue;
                        double dot = 0;
                        for (std::size_t t = 0; t < e; ++t)
                            dot += x[0].data()[(b * l + i) * e + t] * x[1].data()[(b * s + j) * e + t];
                        w[j] = dot * scale;
                        m = std::max(m, w[j]);
                    }
                    for (std::size_t j = 0; j < s; ++j) {
                        const bool ok = allow.data()[(b * l + i) * s + j] != 0 && !(causal && j > i);
                        w[j] = ok ? std::exp(w[j] - m) : 0.0;
                        total += w[j];
                    }
                    for (std::size_t t = 0; t < ev; ++t) {
                        double acc = 0;
                        for (std::size_t j = 0; j < s; ++j) acc += w[j] * x[2].data()[(b * s + j) * ev + t];
                        y.data()[(b * l + i) * ev + t] = total > 0 ? acc / total : 0.0;
                    }
                }
            }
            return y;
        }
    };
    auto number = [](double v) {
        std::ostringstream o;
        o.precision(17);
        o << v;
        return o.str();
    };
    std::vector<tg::OpSample> out;
    // `mask`: true = may attend. The PyTorch expression writes the documented semantics out
    // (a row without an allowed key gives 0), since PyTorch 1.13 has no such function.
    auto sample = [&](std::string label, std::vector<std::size_t> sq, std::size_t s, std::size_t ev,
                      std::optional<xt::xarray<bool>> mask, bool causal, std::optional<double> scale) {
        std::vector<std::size_t> sk = sq, sv = sq;
        sk[sk.size() - 2] = s;
        sv[sv.size() - 2] = s;
        sv.back() = ev;
        std::vector<xt::xarray<double>> in{u(sq), u(sk), u(sv)};
        const double used = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(sq.back()));
        std::string allowed;
        if (mask) allowed = tg::samples::torch_literal(*mask);
        if (causal) {
            const std::string tril = "torch.ones(" + std::to_string(sq[sq.size() - 2]) + ", " + std::to_string(s) +
                                     ", dtype=torch.bool).tril()";
            allowed = allowed.empty() ? tril : "(" + allowed + " & " + tril + ")";
        }
        std::string torch;
        const std::string scores = "(x[0] @ x[1].transpose(-2, -1) * " + number(used) + ")";
        if (allowed.empty()) {
            torch = "torch.softmax(" + scores + ", -1) @ x[2]";
        } else {
            torch = "(lambda s, a: (torch.softmax(s.masked_fill(~a & a.any(-1, keepdim=True), float('-inf')), -1)"
                    ".masked_fill(~a, 0.0)) @ x[2])(" +
                    scores + ", " + allowed + ".expand(" + scores + ".shape))";
        }
        out.push_back(tg::make_sample(
                          std::move(label), std::move(in),
                          [mask, causal, scale](const auto& v) {
                              tg::AttentionOptions o;
                              o.is_causal = causal;
                              o.scale = scale;
                              if (mask) return tg::scaled_dot_product_attention(v[0], v[1], v[2], *mask, o);
                              return tg::scaled_dot_product_attention(v[0], v[1], v[2], o);
                          },
                          Ref{mask, causal, used})
                          .with_torch(torch));
    };
    sample("(3,4) (5,4) (5,2)", {3, 4}, 5, 2, std::nullopt, false, std::nullopt);
    sample("(2,3,4) batch", {2, 3, 4}, 4, 3, std::nullopt, false, std::nullopt);
    sample("(2,2,3,4) heads causal", {2, 2, 3, 4}, 3, 4, std::nullopt, true, std::nullopt);
    sample("(4,3) (2,3) causal L > S", {4, 3}, 2, 3, std::nullopt, true, std::nullopt);
    sample("(1,1) (1,1) scale 0.7", {1, 1}, 1, 1, std::nullopt, false, 0.7);
    {
        const xt::xarray<bool> m{{true, false, true, true}, {false, true, true, false}, {true, true, false, true}};
        sample("(2,3,2) mask (3,4)", {2, 3, 2}, 4, 3, m, false, std::nullopt);
    }
    {
        const xt::xarray<bool> m{{{true, true, false}}, {{false, true, true}}};
        sample("(2,4,3) mask (2,1,3) causal", {2, 4, 3}, 3, 2, m, true, std::nullopt);
    }
    {
        // Rows without an allowed key: the second (by the mask), the first (by causality and the mask).
        const xt::xarray<bool> m{{false, true, true}, {false, false, false}, {true, false, true}};
        sample("(3,2) mask with empty rows", {3, 2}, 3, 2, m, false, std::nullopt);
        sample("(3,2) mask causal empty rows", {3, 2}, 3, 2, m, true, std::nullopt);
    }
    {
        std::vector<xt::xarray<double>> in{u({6, 8}), u({12, 8}), u({12, 10})};
        out.push_back(
            tg::make_sample(
                "(6,8) (12,8) (12,10) via BLAS", std::move(in),
                [](const auto& v) { return tg::scaled_dot_product_attention(v[0], v[1], v[2]); },
                Ref{std::nullopt, false, 1.0 / std::sqrt(8.0)})
                .with_torch("torch.softmax(x[0] @ x[1].T * " + number(1.0 / std::sqrt(8.0)) + ", -1) @ x[2]"));
    }
    // Dropout: a fresh generator with a fixed seed per call, so that gradcheck's repeated
    // evaluations see one fixed function (no independent formula for a random mask).
    {
        std::vector<xt::xarray<double>> in{u({2, 3, 4}), u({2, 5, 4}), u({2, 5, 3})};
        out.push_back(tg::make_sample("(2,3,4) dropout 0.3", std::move(in), [](const auto& v) {
            tg::Generator g(99);
            tg::AttentionOptions o;
            o.dropout_p = 0.3;
            o.generator = &g;
            return tg::scaled_dot_product_attention(v[0], v[1], v[2], o);
        }));
    }
    {
        std::vector<xt::xarray<double>> in{u({4, 3}), u({4, 3}), u({4, 2})};
        out.push_back(tg::make_sample("(4,3) dropout 0.5 causal", std::move(in), [](const auto& v) {
            tg::Generator g(5);
            tg::AttentionOptions o;
            o.dropout_p = 0.5;
            o.is_causal = true;
            o.generator = &g;
            return tg::scaled_dot_product_attention(v[0], v[1], v[2], o);
        }));
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto f = [](const auto& v) { return tg::scaled_dot_product_attention(v[0], v[1], v[2]); };
    auto with = [](tg::AttentionOptions o) {
        return [o](const auto& v) { return tg::scaled_dot_product_attention(v[0], v[1], v[2], o); };
    };
    tg::AttentionOptions p1, pneg, pnan, sinf;
    p1.dropout_p = 1.0;
    pneg.dropout_p = -0.1;
    pnan.dropout_p = std::numeric_limits<double>::quiet_NaN();
    sinf.scale = std::numeric_limits<double>::infinity();
    const std::vector<xt::xarray<double>> ok{ones({2, 3, 4}), ones({2, 5, 4}), ones({2, 5, 6})};
    const xt::xarray<bool> mask34 = xt::ones<bool>({3, 4});
    return {
        tg::make_error_input("q of rank 1", {ones({4}), ones({5, 4}), ones({5, 6})}, f,
                             "q, k and v must be [..., L, E], [..., S, E] and [..., S, Ev] of one rank >= 2: q is "
                             "[4], k is [5, 4], v is [5, 6]"),
        tg::make_error_input("k of rank 2 for q of rank 3", {ones({2, 3, 4}), ones({5, 4}), ones({2, 5, 6})}, f,
                             "of one rank >= 2: q is [2, 3, 4], k is [5, 4], v is [2, 5, 6]"),
        tg::make_error_input("leading dims differ", {ones({2, 3, 4}), ones({3, 5, 4}), ones({3, 5, 6})}, f,
                             "q, k and v must have the same leading dims: q is [2, 3, 4], k is [3, 5, 4]"),
        tg::make_error_input("q and k embeddings differ", {ones({2, 3, 4}), ones({2, 5, 3}), ones({2, 5, 6})}, f,
                             "q and k must have the same embedding size E (last dim): q is [2, 3, 4], k is [2, 5, 3]"),
        tg::make_error_input("k and v lengths differ", {ones({2, 3, 4}), ones({2, 5, 4}), ones({2, 6, 6})}, f,
                             "k and v must have the same length S: q is [2, 3, 4], k is [2, 5, 4], v is [2, 6, 6]"),
        tg::make_error_input(
            "mask (3,4) for scores (2,3,5)", ok,
            [mask34](const auto& v) { return tg::scaled_dot_product_attention(v[0], v[1], v[2], mask34); },
            "attn_mask [3, 4] does not broadcast to the scores [..., L, S] [2, 3, 5]"),
        tg::make_error_input(
            "mask (3,2,3,5) for scores (2,3,5)", ok,
            [](const auto& v) {
                return tg::scaled_dot_product_attention(v[0], v[1], v[2],
                                                        xt::xarray<bool>(xt::ones<bool>({3, 2, 3, 5})));
            },
            "attn_mask [3, 2, 3, 5] does not broadcast"),
        tg::make_error_input("dropout_p 1", ok, with(p1), "dropout_p must be in [0, 1), got 1"),
        tg::make_error_input("dropout_p -0.1", ok, with(pneg), "dropout_p must be in [0, 1), got -0.1"),
        tg::make_error_input("dropout_p NaN", ok, with(pnan), "dropout_p must be in [0, 1), got nan"),
        tg::make_error_input("scale inf", ok, with(sinf), "scale must be finite, got inf")};
}
