// ops/nn/batch_norm.cpp — batch normalisation over the channel axis 1 of x [N, C] or [N, C, *]
//   (torch.nn.functional.batch_norm). Per channel c, over its n = N * prod(*) values:
//     training: mean_c = sum(x) / n,  var_c = sum((x - mean_c)^2) / n  (biased),
//               and, in forward, running = (1 - momentum) running + momentum stat, with the
//               unbiased var_c n / (n - 1) for running_var
//     eval:     mean_c = running_mean_c,  var_c = running_var_c
//     invstd_c = 1 / sqrt(var_c + eps),  xhat = (x - mean_c) invstd_c
//     y [N, C, *] = xhat weight_c + bias_c        (weight [C], bias [C], each optional)
//   vjp: gxhat = grad_out weight_c
//        grad_x [N, C, *] = invstd_c / n (n gxhat - sum(gxhat) - xhat sum(gxhat xhat))   (training)
//                         = gxhat invstd_c                                           (eval: an affine map)
//        grad_weight [C]  = sum(grad_out xhat),   grad_bias [C] = sum(grad_out)
//   (sums per channel, over N and *). The rule recomputes xhat from x with tg ops, so that
//   the batch statistics are differentiated too.
// Statistics: each (n, c) block of prod(*) contiguous values gets a vectorised corrected
// two-pass mean and squared deviation (the block is in L1 for the second pass), and a
// channel's blocks are merged in double with Chan's formula; [N, C] takes two exact passes
// in double. So a large common offset costs no precision, and float inputs keep their
// accuracy over batches of millions of values. Every pass runs in memory order (a channel's
// blocks lie far apart; walking them channel by channel measured 30-50% slower). forward
// keeps mean_c and invstd_c for the fused backward; running statistics are read and written
// by forward only, so the backward never sees them change.

#include <algorithm>
#include <cmath>
#include <vector>

#include "moments.hpp"
#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Batch normalisation of x [N, C] or [N, C, *] per channel (axis 1), as torch.nn.functional.batch_norm.
/// training: batch mean and biased variance; running_mean / running_var (each [C], nullptr for none) are updated in
/// place as (1 - momentum) running + momentum stat, with the unbiased variance. eval (training = false): normalises
/// with running_mean and running_var, both required. weight and bias [C] are optional (an undefined Var: none).
template <class T>
Var<T> batch_norm(const Var<T>& x, typename detail::identity<xt::xarray<T>>::type* running_mean,
                  typename detail::identity<xt::xarray<T>>::type* running_var, const Var<T>& weight, const Var<T>& bias,
                  bool training, double momentum = 0.1, double eps = 1e-5);
//! end

namespace {

// x [N, C, *] as N blocks per channel of `inner` = prod(*) contiguous values.
struct Layout {
    std::size_t batch = 0, channels = 0, inner = 1;
    std::size_t count() const noexcept { return batch * inner; }  // values per channel
    std::size_t offset(std::size_t n, std::size_t c) const noexcept { return (n * channels + c) * inner; }
};

template <class S> Layout layout_of(const S& shape)
{
    Layout l;
    l.batch = shape[0];
    l.channels = shape[1];
    for (std::size_t j = 2; j < shape.size(); ++j) l.inner *= shape[j];
    return l;
}

// Per-channel accumulators (one buffer per thread, grown once): steady-state passes allocate nothing.
inline double* doubles(std::size_t n)
{
    static thread_local std::vector<double> buffer;
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
}

// sum(g) and sum(g (x - m)) of n contiguous values.
template <class T> void block_grad_sums(const T* g, const T* x, T m, std::size_t n, double& sg, double& sgx)
{
    using B = kernel::batch<T>;
    constexpr std::size_t w = B::size;
    T s1 = 0, s2 = 0;
    std::size_t i = 0;
    if (n >= w) {
        const B mb(m);
        B a1(T(0)), a2(T(0));
        for (; i + w <= n; i += w) {
            const B gv = B::load_unaligned(g + i);
            a1 += gv;
            a2 += gv * (B::load_unaligned(x + i) - mb);
        }
        s1 = xsimd::hadd(a1);
        s2 = xsimd::hadd(a2);
    }
    for (; i < n; ++i) {
        s1 += g[i];
        s2 += g[i] * (x[i] - m);
    }
    sg += static_cast<double>(s1);
    sgx += static_cast<double>(s2);
}

template <class T> struct BatchNorm {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    xt::xarray<T>* running_mean;  // read (eval) or updated (training) by forward only
    xt::xarray<T>* running_var;
    double momentum, eps;
    bool training, has_weight, has_bias;

    std::size_t bias_index() const noexcept { return has_weight ? 2 : 1; }

    // Mean and biased variance of every channel, in double, into mean[C] and var[C].
    static void batch_stats(const T* x, const Layout& l, double* mean, double* var)
    {
        const std::size_t nc = l.channels;
        const auto count = static_cast<double>(l.count());
        if (l.inner == 1) {
            // [N, C]: rows of C channels, two exact passes in double (vectorised across channels).
            std::fill_n(mean, nc, 0.0);
            std::fill_n(var, nc, 0.0);
            for (std::size_t n = 0; n < l.batch; ++n) {
                const T* row = x + n * nc;
                for (std::size_t c = 0; c < nc; ++c) mean[c] += static_cast<double>(row[c]);
            }
            for (std::size_t c = 0; c < nc; ++c) mean[c] /= count;
            for (std::size_t n = 0; n < l.batch; ++n) {
                const T* row = x + n * nc;
                for (std::size_t c = 0; c < nc; ++c) {
                    const double d = static_cast<double>(row[c]) - mean[c];
                    var[c] += d * d;
                }
            }
            for (std::size_t c = 0; c < nc; ++c) var[c] /= count;
            return;
        }
        // In memory order (the hardware prefetcher follows it; a channel's blocks are far
        // apart): block n of every channel merges into the channel's running mean and
        // squared deviation, all channels having seen n blocks so far.
        const auto inner = static_cast<double>(l.inner);
        std::fill_n(mean, nc, 0.0);
        std::fill_n(var, nc, 0.0);
        // Channels split over the convolution threads (kit/parallel.hpp); each channel's
        // blocks merge in the same order at any thread count.
        kernel::parallel_for(nc, l.count(), [&](std::size_t c0, std::size_t c1) {
            for (std::size_t n = 0; n < l.batch; ++n) {
                const double seen = static_cast<double>(n) * inner, total = seen + inner;
                for (std::size_t c = c0; c < c1; ++c) {
                    double bm = 0, bm2 = 0;
                    normalization::moments(x + l.offset(n, c), l.inner, bm, bm2);
                    const double delta = bm - mean[c];
                    mean[c] += delta * (inner / total);
                    var[c] += bm2 + delta * delta * (seen * inner / total);
                }
            }
        });
        for (std::size_t c = 0; c < nc; ++c) var[c] /= count;
    }

    void forward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const Layout l = layout_of(x.shape());
        const std::size_t nc = l.channels;
        // saved(2) first: creating a slot may move the others.
        auto& affine = c.saved(2);  // forward: scale and shift per channel; backward: its coefficients
        auto& mean = c.saved(0);
        auto& invstd = c.saved(1);
        // Each slot on its own: a reused tape entry may hold another op's buffers.
        if (mean.shape() != typename xt::xarray<T>::shape_type{nc}) mean.resize({nc});
        if (invstd.shape() != typename xt::xarray<T>::shape_type{nc}) invstd.resize({nc});
        if (affine.shape() != typename xt::xarray<T>::shape_type{4, nc}) affine.resize({4, nc});
        const T* w = has_weight ? c.input(1).data() : nullptr;
        const T* b = has_bias ? c.input(bias_index()).data() : nullptr;
        T* scale = affine.data();
        T* shift = scale + nc;
        T* py = c.output(x.shape()).data();

        if (training) {
            double* stats = doubles(2 * nc);
            if (l.count() == 0) {
                // An empty batch: no statistics, no update, and an empty output (as PyTorch).
                for (std::size_t k = 0; k < nc; ++k) {
                    mean(k) = T(0);
                    invstd(k) = T(1);
                }
                return;
            }
            batch_stats(x.data(), l, stats, stats + nc);
            const double n = static_cast<double>(l.count());
            T* rm = running_mean != nullptr ? running_mean->data() : nullptr;
            T* rv = running_var != nullptr ? running_var->data() : nullptr;
            for (std::size_t k = 0; k < nc; ++k) {
                const double m = stats[k], v = stats[nc + k];
                mean(k) = static_cast<T>(m);
                invstd(k) = static_cast<T>(1.0 / std::sqrt(v + eps));
                if (rm != nullptr) rm[k] = static_cast<T>((1 - momentum) * static_cast<double>(rm[k]) + momentum * m);
                if (rv != nullptr) {
                    rv[k] = static_cast<T>((1 - momentum) * static_cast<double>(rv[k]) + momentum * v * n / (n - 1));
                }
            }
        } else {
            const T* rm = running_mean->data();
            const T* rv = running_var->data();
            for (std::size_t k = 0; k < nc; ++k) {
                mean(k) = rm[k];
                invstd(k) = static_cast<T>(1.0 / std::sqrt(static_cast<double>(rv[k]) + eps));
            }
        }
        // y = x * scale + shift, scale = invstd weight, shift = bias - mean scale (as PyTorch's CPU kernel).
        for (std::size_t k = 0; k < nc; ++k) {
            scale[k] = w != nullptr ? invstd(k) * w[k] : invstd(k);
            shift[k] = (b != nullptr ? b[k] : T(0)) - mean(k) * scale[k];
        }
        const T* px = x.data();
        auto affine_map = [](auto xv, auto s, auto t) { return xv * s + t; };
        if (l.inner == 1) {
            for (std::size_t n = 0; n < l.batch; ++n) {
                kernel::map<false>(nc, py + n * nc, affine_map, px + n * nc, static_cast<const T*>(scale),
                                   static_cast<const T*>(shift));
            }
            return;
        }
        kernel::parallel_for(l.batch, nc * l.inner, [&](std::size_t n0, std::size_t n1) {
            for (std::size_t n = n0; n < n1; ++n) {
                for (std::size_t k = 0; k < nc; ++k) {
                    const std::size_t off = l.offset(n, k);
                    kernel::map<false>(l.inner, py + off, affine_map, px + off, kernel::Bcast<T>{scale[k]},
                                       kernel::Bcast<T>{shift[k]});
                }
            }
        });
    }

    void backward(OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        const Layout l = layout_of(x.shape());
        const std::size_t nc = l.channels;
        const T* px = x.data();
        const T* g = c.grad_out().data();
        const T* mean = c.saved(0).data();
        const T* invstd = c.saved(1).data();
        const T* w = has_weight ? c.input(1).data() : nullptr;
        const bool need_x = c.needs_grad(0);
        const bool need_w = has_weight && c.needs_grad(1);
        const bool need_b = has_bias && c.needs_grad(bias_index());
        const bool need_sums = (training && need_x) || need_w || need_b;

        // sums[c] = sum(grad_out), sums[C + c] = sum(grad_out (x - mean_c)), over channel c.
        double* sums = doubles(2 * nc);
        if (need_sums) {
            std::fill_n(sums, 2 * nc, 0.0);
            if (l.inner == 1) {
                for (std::size_t n = 0; n < l.batch; ++n) {
                    const T* gr = g + n * nc;
                    const T* xr = px + n * nc;
                    for (std::size_t k = 0; k < nc; ++k) {
                        sums[k] += static_cast<double>(gr[k]);
                        sums[nc + k] += static_cast<double>(gr[k]) * (static_cast<double>(xr[k]) - mean[k]);
                    }
                }
            } else {
                kernel::parallel_for(nc, l.count(), [&](std::size_t k0, std::size_t k1) {
                    for (std::size_t n = 0; n < l.batch; ++n) {
                        for (std::size_t k = k0; k < k1; ++k) {
                            const std::size_t off = l.offset(n, k);
                            block_grad_sums(g + off, px + off, mean[k], l.inner, sums[k], sums[nc + k]);
                        }
                    }
                });
            }
        }

        if (need_x) {
            // grad_x = a_c grad_out + b_c (x - mean_c) + d_c: a = weight invstd, and in training
            // b = -a invstd^2 sum(g (x - mean)) / n, d = -a sum(g) / n.
            auto& coef = c.saved(2);
            T* a = coef.data();
            T* bq = a + nc;
            T* d = bq + nc;
            const double n = static_cast<double>(l.count());
            for (std::size_t k = 0; k < nc; ++k) {
                const double ak = static_cast<double>(invstd[k]) * (w != nullptr ? static_cast<double>(w[k]) : 1.0);
                const double is = static_cast<double>(invstd[k]);
                a[k] = static_cast<T>(ak);
                bq[k] = training ? static_cast<T>(-ak * is * is * sums[nc + k] / n) : T(0);
                d[k] = training ? static_cast<T>(-ak * sums[k] / n) : T(0);
            }
            c.add_grad(0, x.shape(), [&](T* dst, bool add) {
                if (training) {
                    auto f = [](auto gv, auto xv, auto av, auto bv, auto mv, auto dv) {
                        return av * gv + bv * (xv - mv) + dv;
                    };
                    if (l.inner == 1) {
                        for (std::size_t r = 0; r < l.batch; ++r) {
                            kernel::map_to(add, nc, dst + r * nc, f, g + r * nc, px + r * nc, static_cast<const T*>(a),
                                           static_cast<const T*>(bq), mean, static_cast<const T*>(d));
                        }
                        return;
                    }
                    kernel::parallel_for(l.batch, nc * l.inner, [&](std::size_t r0, std::size_t r1) {
                        for (std::size_t r = r0; r < r1; ++r) {
                            for (std::size_t k = 0; k < nc; ++k) {
                                const std::size_t off = l.offset(r, k);
                                kernel::map_to(add, l.inner, dst + off, f, g + off, px + off, kernel::Bcast<T>{a[k]},
                                               kernel::Bcast<T>{bq[k]}, kernel::Bcast<T>{mean[k]},
                                               kernel::Bcast<T>{d[k]});
                            }
                        }
                    });
                    return;
                }
                auto f = [](auto gv, auto av) { return av * gv; };
                if (l.inner == 1) {
                    for (std::size_t r = 0; r < l.batch; ++r) {
                        kernel::map_to(add, nc, dst + r * nc, f, g + r * nc, static_cast<const T*>(a));
                    }
                    return;
                }
                for (std::size_t r = 0; r < l.batch; ++r) {
                    for (std::size_t k = 0; k < nc; ++k) {
                        const std::size_t off = l.offset(r, k);
                        kernel::map_to(add, l.inner, dst + off, f, g + off, kernel::Bcast<T>{a[k]});
                    }
                }
            });
        }
        const typename xt::xarray<T>::shape_type cshape{nc};
        if (need_w) {
            c.add_grad(1, cshape, [&](T* dst, bool add) {
                for (std::size_t k = 0; k < nc; ++k) {
                    const T v = static_cast<T>(static_cast<double>(invstd[k]) * sums[nc + k]);
                    dst[k] = add ? dst[k] + v : v;
                }
            });
        }
        if (need_b) {
            c.add_grad(bias_index(), cshape, [&](T* dst, bool add) {
                for (std::size_t k = 0; k < nc; ++k) {
                    const T v = static_cast<T>(sums[k]);
                    dst[k] = add ? dst[k] + v : v;
                }
            });
        }
    }

    void vjp(VjpContext<T>& v) const
    {
        const auto& xs = v.input_shape(0);
        const std::size_t nc = xs[1];
        // The per-channel statistics reduce every axis but 1; per-channel values broadcast
        // from [1, C, 1, ...].
        std::vector<std::ptrdiff_t> axes{0};
        for (std::size_t j = 2; j < xs.size(); ++j) axes.push_back(static_cast<std::ptrdiff_t>(j));
        std::vector<std::size_t> kept(xs.size(), 1);
        kept[1] = nc;
        const Var<T>& g = v.grad_out();
        const bool need_x = v.needs_grad(0);
        const bool need_w = has_weight && v.needs_grad(1);
        if (has_bias && v.needs_grad(bias_index())) v.add_grad(bias_index(), sum(g, axes));
        if (!need_x && !need_w) return;
        const Var<T> x = v.input(0);
        Var<T> invstd, xhat;
        if (training) {
            const Var<T> centred = x - mean(x, axes, true);
            invstd = T(1) / sqrt(mean(centred * centred, axes, true) + static_cast<T>(eps));
            xhat = centred * invstd;
        } else {
            auto per_channel = [&](const xt::xarray<T>& a) {
                xt::xarray<T> r = a;
                r.reshape(kept);
                return constant(std::move(r));
            };
            invstd = per_channel(v.saved(1));
            if (need_w) xhat = (x - per_channel(v.saved(0))) * invstd;
        }
        if (need_x) {
            const Var<T> gxhat = has_weight ? g * reshape(v.input(1), kept) : g;
            if (training) {
                v.add_grad(0, invstd * (gxhat - mean(gxhat, axes, true) - xhat * mean(gxhat * xhat, axes, true)));
            } else {
                v.add_grad(0, gxhat * invstd);
            }
        }
        if (need_w) v.add_grad(1, sum(g * xhat, axes));
    }
};

template <class T> void check_channels(const char* what, const xt::xarray<T>& a, std::size_t channels, const char* x_is)
{
    if (a.dimension() != 1 || a.shape()[0] != channels) {
        throw Error(std::string(TAPEGRAD_OP_NAME) + ": " + what + " must have shape [" + std::to_string(channels) +
                    "] (the channels of x " + x_is + "), got " + format_shape(a.shape()));
    }
}

}  // namespace

template <class T>
Var<T> batch_norm(const Var<T>& x, typename detail::identity<xt::xarray<T>>::type* running_mean,
                  typename detail::identity<xt::xarray<T>>::type* running_var, const Var<T>& weight, const Var<T>& bias,
                  bool training, double momentum, double eps)
{
    const char* op = BatchNorm<T>::name;
    const auto& s = input_shape(op, x);
    if (s.size() < 2) throw Error(std::string(op) + ": x must be [N, C] or [N, C, *], got " + format_shape(s));
    const std::string x_is = format_shape(s);
    const std::size_t channels = s[1];
    if (weight.defined()) check_channels("weight", input_value(op, weight), channels, x_is.c_str());
    if (bias.defined()) check_channels("bias", input_value(op, bias), channels, x_is.c_str());
    if (running_mean != nullptr) check_channels("running_mean", *running_mean, channels, x_is.c_str());
    if (running_var != nullptr) check_channels("running_var", *running_var, channels, x_is.c_str());
    if (!training && (running_mean == nullptr || running_var == nullptr)) {
        throw Error(std::string(op) + ": running_mean and running_var are required in evaluation mode " +
                    "(training = false)");
    }
    if (training && detail::element_count(s) / std::max<std::size_t>(channels, 1) == 1) {
        throw Error(std::string(op) + ": expected more than 1 value per channel when training, got x " + x_is);
    }
    if (!(momentum >= 0 && momentum <= 1)) {
        throw Error(std::string(op) + ": momentum must be in [0, 1], got " + format_number(momentum));
    }
    if (!(eps >= 0 && std::isfinite(eps))) {
        throw Error(std::string(op) + ": eps must be finite and >= 0, got " + format_number(eps));
    }
    const BatchNorm<T> bn{running_mean, running_var, momentum, eps, training, weight.defined(), bias.defined()};
    if (weight.defined() && bias.defined()) return record(bn, x, weight, bias);
    if (weight.defined()) return record(bn, x, weight);
    if (bias.defined()) return record(bn, x, bias);
    return record(bn, x);
}

template Var<float> batch_norm<float>(const Var<float>&, xt::xarray<float>*, xt::xarray<float>*, const Var<float>&,
                                      const Var<float>&, bool, double, double);
template Var<double> batch_norm<double>(const Var<double>&, xt::xarray<double>*, xt::xarray<double>*,
                                        const Var<double>&, const Var<double>&, bool, double, double);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    using tg::samples::torch_literal;
    auto u = [&](std::vector<std::size_t> s, double lo = -2.0, double hi = 2.0) {
        return tg::sample_uniform(rng, s, lo, hi);
    };
    // The plain formula, channel by channel: mean and biased variance over every axis but 1
    // (or the given running statistics), then the affine map.
    struct Ref {
        bool weight, bias;
        bool eval;
        xt::xarray<double> mean, var;  // the running statistics, in eval mode
        double eps;
        xt::xarray<double> operator()(const std::vector<xt::xarray<double>>& in) const
        {
            const xt::xarray<double>& x = in[0];
            const std::size_t n = x.shape()[0], c = x.shape()[1], inner = x.size() / std::max<std::size_t>(n * c, 1);
            xt::xarray<double> y = xt::zeros<double>(x.shape());
            for (std::size_t k = 0; k < c; ++k) {
                double m = 0, v = 0;
                if (eval) {
                    m = mean(k);
                    v = var(k);
                } else {
                    for (std::size_t i = 0; i < n; ++i)
                        for (std::size_t j = 0; j < inner; ++j) m += x.data()[(i * c + k) * inner + j];
                    m /= static_cast<double>(n * inner);
                    for (std::size_t i = 0; i < n; ++i)
                        for (std::size_t j = 0; j < inner; ++j) {
                            const double d = x.data()[(i * c + k) * inner + j] - m;
                            v += d * d;
                        }
                    v /= static_cast<double>(n * inner);
                }
                const double wk = weight ? in[1](k) : 1.0, bk = bias ? in[weight ? 2 : 1](k) : 0.0;
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = 0; j < inner; ++j) {
                        const std::size_t at = (i * c + k) * inner + j;
                        y.data()[at] = (x.data()[at] - m) / std::sqrt(v + eps) * wk + bk;
                    }
            }
            return y;
        }
    };
    std::vector<tg::OpSample> out;
    // Training with weight and bias, no running statistics.
    auto train = [&](std::string label, std::vector<std::size_t> shape) {
        const std::size_t c = shape[1];
        out.push_back(tg::make_sample(
                          std::move(label), {u(shape), u({c}, 0.5, 1.5), u({c})},
                          [](const auto& v) { return tg::batch_norm(v[0], nullptr, nullptr, v[1], v[2], true); },
                          Ref{true, true, false, {}, {}, 1e-5})
                          .with_torch("torch.nn.functional.batch_norm(x[0], None, None, x[1], x[2], True, 0.1, 1e-5)")
                          .with_optional({1, 2}));
    };
    train("(5,3) training weight bias", {5, 3});
    train("(2,3,2,2) training weight bias", {2, 3, 2, 2});
    out.push_back(tg::make_sample(
                      "(3,2,4) training no weight no bias eps 1e-3", {u({3, 2, 4})},
                      [](const auto& v) {
                          using V = std::decay_t<decltype(v[0])>;
                          return tg::batch_norm(v[0], nullptr, nullptr, V(), V(), true, 0.1, 1e-3);
                      },
                      Ref{false, false, false, {}, {}, 1e-3})
                      .with_torch("torch.nn.functional.batch_norm(x[0], None, None, None, None, True, 0.1, 1e-3)"));
    // Running statistics given (fresh copies, so that every call is the same function):
    // the update must leave the output alone.
    {
        const xt::xarray<double> rm = u({3}, -0.5, 0.5), rv = u({3}, 0.5, 1.5);
        out.push_back(tg::make_sample(
                          "(1,3,4) batch of 1 training weight running stats momentum 0.3", {u({1, 3, 4}), u({3})},
                          [rm, rv](const auto& v) {
                              using V = std::decay_t<decltype(v[0])>;
                              using T = typename V::value_type;
                              xt::xarray<T> m = xt::cast<T>(rm), s = xt::cast<T>(rv);
                              return tg::batch_norm(v[0], &m, &s, v[1], V(), true, 0.3);
                          },
                          Ref{true, false, false, {}, {}, 1e-5})
                          .with_torch("torch.nn.functional.batch_norm(x[0], " + torch_literal(rm) + ", " +
                                      torch_literal(rv) + ", x[1], None, True, 0.3, 1e-5)")
                          .with_optional({1}));
    }
    // Eval mode: the running statistics are constants of the call.
    auto eval = [&](std::string label, std::vector<std::size_t> shape, bool affine) {
        const std::size_t c = shape[1];
        const xt::xarray<double> rm = u({c}, -0.5, 0.5), rv = u({c}, 0.5, 1.5);
        std::vector<xt::xarray<double>> inputs{u(shape)};
        if (affine) {
            inputs.push_back(u({c}, 0.5, 1.5));
            inputs.push_back(u({c}));
        }
        out.push_back(tg::make_sample(
                          std::move(label), inputs,
                          [rm, rv, affine](const auto& v) {
                              using V = std::decay_t<decltype(v[0])>;
                              using T = typename V::value_type;
                              xt::xarray<T> m = xt::cast<T>(rm), s = xt::cast<T>(rv);
                              return affine ? tg::batch_norm(v[0], &m, &s, v[1], v[2], false)
                                            : tg::batch_norm(v[0], &m, &s, V(), V(), false);
                          },
                          Ref{affine, affine, true, rm, rv, 1e-5})
                          .with_torch("torch.nn.functional.batch_norm(x[0], " + torch_literal(rm) + ", " +
                                      torch_literal(rv) + (affine ? ", x[1], x[2]" : ", None, None") +
                                      ", False, 0.1, 1e-5)")
                          .with_optional(affine ? std::vector<std::size_t>{1, 2} : std::vector<std::size_t>{}));
    };
    eval("(3,2,2,2) eval weight bias", {3, 2, 2, 2}, true);
    eval("(1,3) eval batch of 1", {1, 3}, false);
    eval("(0,2,3) eval empty", {0, 2, 3}, true);
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Shape = std::vector<std::size_t>;
    const auto ones = [](Shape s) { return xt::xarray<double>(xt::ones<double>(s)); };
    // train(v, mean, var, momentum, eps): batch_norm in training mode on v[0] with weight v[1]
    // and bias v[2], the running statistics of the given sizes (0: none).
    auto call = [](std::size_t mean, std::size_t var, bool training, double momentum = 0.1, double eps = 1e-5) {
        return [=](const auto& v) {
            using T = typename std::decay_t<decltype(v[0])>::value_type;
            xt::xarray<T> m = xt::zeros<T>({mean}), s = xt::ones<T>({var});
            return tg::batch_norm(v[0], mean ? &m : nullptr, var ? &s : nullptr, v[1], v[2], training, momentum, eps);
        };
    };
    const xt::xarray<double> x = ones({4, 3});
    std::vector<tg::ErrorInput> errors{
        tg::make_error_input("x of rank 1", {ones({3}), ones({3}), ones({3})}, call(0, 0, true),
                             "x must be [N, C] or [N, C, *], got [3]"),
        tg::make_error_input("weight (2,) for 3 channels", {x, ones({2}), ones({3})}, call(0, 0, true),
                             "weight must have shape [3] (the channels of x [4, 3]), got [2]"),
        tg::make_error_input("bias (3,1) for 3 channels", {x, ones({3}), ones({3, 1})}, call(0, 0, true),
                             "bias must have shape [3] (the channels of x [4, 3]), got [3, 1]"),
        tg::make_error_input("running_mean (4,) for 3 channels", {x, ones({3}), ones({3})}, call(4, 3, true),
                             "running_mean must have shape [3] (the channels of x [4, 3]), got [4]"),
        tg::make_error_input("running_var (2,) for 3 channels", {x, ones({3}), ones({3})}, call(3, 2, false),
                             "running_var must have shape [3] (the channels of x [4, 3]), got [2]"),
        tg::make_error_input("evaluation without running statistics", {x, ones({3}), ones({3})}, call(0, 0, false),
                             "running_mean and running_var are required in evaluation mode (training = false)"),
        tg::make_error_input("training on one value per channel", {ones({1, 3}), ones({3}), ones({3})},
                             call(0, 0, true), "expected more than 1 value per channel when training, got x [1, 3]"),
        tg::make_error_input("momentum 1.5", {x, ones({3}), ones({3})}, call(3, 3, true, 1.5),
                             "momentum must be in [0, 1], got 1.5"),
        tg::make_error_input("momentum NaN", {x, ones({3}), ones({3})},
                             call(3, 3, true, std::numeric_limits<double>::quiet_NaN()),
                             "momentum must be in [0, 1], got nan"),
        tg::make_error_input("eps -1", {x, ones({3}), ones({3})}, call(0, 0, true, 0.1, -1.0),
                             "eps must be finite and >= 0, got -1")};
    return errors;
}
