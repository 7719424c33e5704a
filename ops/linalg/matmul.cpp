// ops/linalg/matmul.cpp — y [..., m, n] = op(a) [..., m, k] @ op(b) [..., k, n], op(x) = x or
//   x^T (the last two axes), the leading batch axes broadcast; torch.matmul's rules for 1-D inputs
//   vjp (no transposes): grad_a = grad_out @ b^T,  grad_b = a^T @ grad_out, each summed over the
//   batch axes its input was broadcast along (with transposes the same products, transposed:
//   each is again one matmul with flags, so neither the fused kernel nor the rule ever
//   materialises a transpose)

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Matrix product with torch.matmul's rules: dot, matrix-vector, matrix and batched products.
/// 1-D . 1-D is a dot product, a 1-D operand is a row (left) or column (right) vector, N-D
/// operands are stacks of matrices with the batch axes broadcast. Runs BLAS gemm per matrix
/// above a small size, a plain loop below; a product with one output row or column runs gemv.
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
/// op(a) @ op(b) for a, b of rank 2 or more, op(x) = x^T (of the last two axes) when the
/// flag is set, the transpose folded into the BLAS call instead of copied (what the
/// derivative rules of matmul and linear use).
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool transpose_a, bool transpose_b);
//! end

namespace {

using Shape = xt::xarray<double>::shape_type;

// The batch layout of a product: the broadcast batch shape, and for each output matrix the
// matrix of a and of b it reads.
struct Batches {
    Shape shape;
    std::vector<std::size_t> a, b;  // matrix offsets (in matrices) per output matrix
    std::size_t count = 1;

    template <class S> Batches(const char* op, const S& sa, const S& sb)
    {
        const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
        shape = broadcast::shape(op, ba, bb);
        for (auto d : shape) count *= d;
        a.resize(count);
        b.resize(count);
        const std::size_t r = shape.size();
        // Strides in matrices; 0 along axes an operand is broadcast along.
        auto strides = [&](const Shape& s) {
            std::vector<std::size_t> st(r, 0);
            std::size_t step = 1;
            for (std::size_t j = s.size(); j-- > 0;) {
                st[r - s.size() + j] = s[j] == 1 ? 0 : step;
                step *= s[j];
            }
            return st;
        };
        const auto sta = strides(ba), stb = strides(bb);
        std::vector<std::size_t> coord(r, 0);
        for (std::size_t p = 0; p < count; ++p) {
            std::size_t oa = 0, ob = 0;
            for (std::size_t j = 0; j < r; ++j) {
                oa += coord[j] * sta[j];
                ob += coord[j] * stb[j];
            }
            a[p] = oa;
            b[p] = ob;
            for (std::size_t j = r; j-- > 0;) {
                if (++coord[j] < shape[j]) break;
                coord[j] = 0;
            }
        }
    }
};

struct Matmul {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    bool ta = false, tb = false;

    // Sizes of one product: op(a) is [m, k], op(b) is [k, n]; lda, ldb the stored row lengths.
    template <class S> void dims(const S& sa, const S& sb, std::size_t& m, std::size_t& k, std::size_t& n) const
    {
        const std::size_t ra = sa.size(), rb = sb.size();
        m = sa[ra - (ta ? 1 : 2)];
        k = sa[ra - (ta ? 2 : 1)];
        n = sb[rb - (tb ? 2 : 1)];
    }

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        std::size_t m, k, n;
        dims(a.shape(), b.shape(), m, k, n);
        const std::size_t lda = a.shape().back(), ldb = b.shape().back();
        if (a.dimension() == 2 && b.dimension() == 2) {
            blas::gemm(ta, tb, m, n, k, T(1), a.data(), lda, b.data(), ldb, T(0), c.output({m, n}).data(), n);
            return;
        }
        const Batches batches(name, a.shape(), b.shape());
        Shape shape = batches.shape;
        shape.push_back(m);
        shape.push_back(n);
        T* y = c.output(shape).data();
        for (std::size_t p = 0; p < batches.count; ++p) {
            blas::gemm(ta, tb, m, n, k, T(1), a.data() + batches.a[p] * m * k, lda, b.data() + batches.b[p] * k * n,
                       ldb, T(0), y + p * m * n, n);
        }
    }

    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& a = c.input(0);
        const auto& b = c.input(1);
        std::size_t m, k, n;
        dims(a.shape(), b.shape(), m, k, n);
        const std::size_t lda = a.shape().back(), ldb = b.shape().back();
        const T* g = c.grad_out().data();
        const Batches batches(name, a.shape(), b.shape());
        // Each gradient is computed per output matrix, in the batch shape of the output; the
        // kit sums it over the axes its input was broadcast along.
        Shape full_a = batches.shape, full_b = batches.shape;
        full_a.insert(full_a.end(), a.shape().end() - 2, a.shape().end());
        full_b.insert(full_b.end(), b.shape().end() - 2, b.shape().end());
        c.add_grad(0, full_a, [&](T* dst, bool add) {
            for (std::size_t p = 0; p < batches.count; ++p) {
                const T* gp = g + p * m * n;
                const T* bp = b.data() + batches.b[p] * k * n;
                if (!ta) {
                    blas::gemm_to(dst + p * m * k, add, false, !tb, m, k, n, gp, n, bp, ldb);  // g op(b)^T
                } else {
                    blas::gemm_to(dst + p * m * k, add, tb, true, k, m, n, bp, ldb, gp, n);  // op(b) g^T
                }
            }
        });
        c.add_grad(1, full_b, [&](T* dst, bool add) {
            for (std::size_t p = 0; p < batches.count; ++p) {
                const T* gp = g + p * m * n;
                const T* ap = a.data() + batches.a[p] * m * k;
                if (!tb) {
                    blas::gemm_to(dst + p * k * n, add, !ta, false, k, n, m, ap, lda, gp, n);  // op(a)^T g
                } else {
                    blas::gemm_to(dst + p * k * n, add, true, ta, n, k, m, gp, n, ap, lda);  // g^T op(a)
                }
            }
        });
    }

    template <class T> void vjp(VjpContext<T>& v) const
    {
        const Var<T>& g = v.grad_out();
        if (v.needs_grad(0)) v.add_grad(0, ta ? matmul(v.input(1), g, tb, true) : matmul(g, v.input(1), false, !tb));
        if (v.needs_grad(1)) v.add_grad(1, tb ? matmul(g, v.input(0), true, ta) : matmul(v.input(0), g, !ta, false));
    }
};

template <class S> std::string with_flag(const S& s, bool t)
{
    return format_shape(s) + (t ? " (transposed)" : "");
}

}  // namespace

template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b, bool transpose_a, bool transpose_b)
{
    const auto& sa = input_shape(TAPEGRAD_OP_NAME, a);
    const auto& sb = input_shape(TAPEGRAD_OP_NAME, b);
    if (sa.size() < 2 || sb.size() < 2) {
        throw Error(std::string(Matmul::name) + ": the transposing form needs inputs of rank 2 or more, got a " +
                    format_shape(sa) + " and b " + format_shape(sb));
    }
    const Matmul op{transpose_a, transpose_b};
    std::size_t m, k, n;
    op.dims(sa, sb, m, k, n);
    const std::size_t kb = sb[sb.size() - (transpose_b ? 1 : 2)];
    if (k != kb) {
        throw Error(std::string(Matmul::name) + ": inner dimensions differ: a is " + with_flag(sa, transpose_a) +
                    ", b is " + with_flag(sb, transpose_b));
    }
    for (std::size_t j = 3; j <= std::min(sa.size(), sb.size()); ++j) {  // the batch dims, aligned at the end
        const std::size_t da = sa[sa.size() - j], db = sb[sb.size() - j];
        if (da != db && da != 1 && db != 1) {
            throw Error(std::string(Matmul::name) + ": batch dims do not broadcast: a is " + format_shape(sa) +
                        ", b is " + format_shape(sb));
        }
    }
    (void)m;
    (void)n;
    return record(Matmul{transpose_a, transpose_b}, a, b);
}

template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b)
{
    const auto& sa = input_shape(TAPEGRAD_OP_NAME, a);
    const auto& sb = input_shape(TAPEGRAD_OP_NAME, b);
    if (sa.empty() || sb.empty()) {
        throw Error(std::string(Matmul::name) + ": both inputs need at least one dimension, got a " + format_shape(sa) +
                    " and b " + format_shape(sb));
    }
    if (sa.size() >= 2 && sb.size() >= 2) return matmul(a, b, false, false);
    // 1-D operands: a row vector on the left, a column vector on the right, removed again.
    if (sa.back() != sb[sb.size() >= 2 ? sb.size() - 2 : 0]) {
        throw Error(std::string(Matmul::name) + ": inner dimensions differ: a is " + format_shape(sa) + ", b is " +
                    format_shape(sb));
    }
    std::vector<std::size_t> shape_a(sa.begin(), sa.end()), shape_b(sb.begin(), sb.end());
    if (sa.size() == 1) shape_a.insert(shape_a.begin(), 1);
    if (sb.size() == 1) shape_b.push_back(1);
    const Var<T> y = matmul(reshape(a, shape_a), reshape(b, shape_b), false, false);
    std::vector<std::size_t> out(y.shape().begin(), y.shape().end());
    if (sb.size() == 1) out.pop_back();
    if (sa.size() == 1) out.erase(out.end() - (sb.size() == 1 ? 1 : 2));
    return reshape(y, out);
}

template Var<float> matmul<float>(const Var<float>&, const Var<float>&);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&);
template Var<float> matmul<float>(const Var<float>&, const Var<float>&, bool, bool);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&, bool, bool);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    auto f = [](const auto& v) { return tg::matmul(v[0], v[1]); };
    auto ref = [](const auto& x) {
        const std::size_t m = x[0].shape()[0], k = x[0].shape()[1], n = x[1].shape()[1];
        xt::xarray<double> y = xt::zeros<double>({m, n});
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                for (std::size_t p = 0; p < k; ++p) y(i, j) += x[0](i, p) * x[1](p, j);
        return y;
    };
    std::vector<tg::OpSample> out;
    out.push_back(tg::make_sample("(3,4)@(4,2)", {u({3, 4}), u({4, 2})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(1,2)@(2,3)", {u({1, 2}), u({2, 3})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(1,1)@(1,1)", {u({1, 1}), u({1, 1})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(5,1)@(1,3)", {u({5, 1}), u({1, 3})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample(
                      "transposed (4,3)^T@(4,2)", {u({4, 3}), u({4, 2})},
                      [](const auto& v) { return tg::matmul(tg::transpose(v[0]), v[1]); },
                      [ref](const auto& x) {
                          return ref(std::vector<xt::xarray<double>>{xt::transpose(x[0]), x[1]});
                      })
                      .with_torch("x[0].T @ x[1]"));
    // Large enough for the BLAS path, and for gemv.
    out.push_back(
        tg::make_sample("(20,30)@(30,25) via BLAS", {u({20, 30}), u({30, 25})}, f, ref).with_torch("x[0] @ x[1]"));
    out.push_back(tg::make_sample("(40,300)@(300,1) via gemv", {u({40, 300}), u({300, 1})}, f, ref));
    out.push_back(tg::make_sample("(1,300)@(300,40) via gemv", {u({1, 300}), u({300, 40})}, f, ref));
    // Transposes folded into the product.
    auto t = [](const xt::xarray<double>& x) { return xt::xarray<double>(xt::transpose(x)); };
    auto flags = [&](std::string label, std::vector<std::size_t> sa, std::vector<std::size_t> sb, bool ta, bool tb) {
        out.push_back(tg::make_sample(
                          std::move(label), {u(sa), u(sb)},
                          [ta, tb](const auto& v) { return tg::matmul(v[0], v[1], ta, tb); },
                          [ref, t, ta, tb](const auto& x) {
                              return ref(std::vector<xt::xarray<double>>{ta ? t(x[0]) : x[0], tb ? t(x[1]) : x[1]});
                          })
                          .with_torch(std::string(ta ? "x[0].T" : "x[0]") + " @ " + (tb ? "x[1].T" : "x[1]")));
    };
    flags("(4,3)^T@(4,2) flag", {4, 3}, {4, 2}, true, false);
    flags("(3,4)@(2,4)^T flag", {3, 4}, {2, 4}, false, true);
    flags("(4,3)^T@(2,4)^T flag", {4, 3}, {2, 4}, true, true);
    flags("(30,20)^T@(25,30)^T via BLAS", {30, 20}, {25, 30}, true, true);
    flags("(300,40)^T@(1,300)^T via gemv", {300, 40}, {1, 300}, true, true);
    // N-D: batches broadcast, 1-D operands.
    auto nd = [&](std::string label, std::vector<std::size_t> sa, std::vector<std::size_t> sb, std::string torch) {
        out.push_back(tg::make_sample(std::move(label), {u(sa), u(sb)}, f, [](const auto& x) {
                          // Plain loops over the broadcast batches, via xtensor views of 2-D slices.
                          xt::xarray<double> a = x[0], b = x[1];
                          const bool va = a.dimension() == 1, vb = b.dimension() == 1;
                          if (va) a = xt::expand_dims(a, 0);
                          if (vb) b = xt::expand_dims(b, 1);
                          const std::size_t ra = a.dimension(), rb = b.dimension();
                          const std::size_t m = a.shape()[ra - 2], k = a.shape()[ra - 1], n = b.shape()[rb - 1];
                          std::vector<std::size_t> ba(a.shape().begin(), a.shape().end() - 2),
                              bb(b.shape().begin(), b.shape().end() - 2);
                          const std::size_t r = std::max(ba.size(), bb.size());
                          ba.insert(ba.begin(), r - ba.size(), 1);
                          bb.insert(bb.begin(), r - bb.size(), 1);
                          std::vector<std::size_t> bo(r);
                          for (std::size_t j = 0; j < r; ++j) bo[j] = std::max(ba[j], bb[j]);
                          std::vector<std::size_t> ya = ba, yb = bb;
                          ya.push_back(m);
                          ya.push_back(k);
                          yb.push_back(k);
                          yb.push_back(n);
                          const xt::xarray<double> A = xt::reshape_view(a, ya), B = xt::reshape_view(b, yb);
                          std::vector<std::size_t> so = bo;
                          so.push_back(m);
                          so.push_back(n);
                          xt::xarray<double> y = xt::zeros<double>(so);
                          std::size_t total = 1;
                          for (auto d : bo) total *= d;
                          for (std::size_t p = 0; p < total; ++p) {
                              auto idx = xt::unravel_index(p, bo);
                              std::vector<std::size_t> ia(r), ib(r);
                              for (std::size_t j = 0; j < r; ++j) {
                                  ia[j] = ba[j] == 1 ? 0 : idx[j];
                                  ib[j] = bb[j] == 1 ? 0 : idx[j];
                              }
                              for (std::size_t i = 0; i < m; ++i)
                                  for (std::size_t jj = 0; jj < n; ++jj) {
                                      double acc = 0;
                                      for (std::size_t q = 0; q < k; ++q) {
                                          std::vector<std::size_t> ea = ia, eb = ib;
                                          ea.push_back(i);
                                          ea.push_back(q);
                                          eb.push_back(q);
                                          eb.push_back(jj);
                                          acc += A.element(ea.begin(), ea.end()) * B.element(eb.begin(), eb.end());
                                      }
                                      std::vector<std::size_t> ey(idx.begin(), idx.end());
                                      ey.push_back(i);
                                      ey.push_back(jj);
                                      y.element(ey.begin(), ey.end()) = acc;
                                  }
                          }
                          std::vector<std::size_t> result(so.begin(), so.end());
                          if (vb) result.pop_back();
                          if (va) result.erase(result.end() - (vb ? 1 : 2));
                          return xt::xarray<double>(xt::reshape_view(y, result));
                      }).with_torch(torch));
    };
    nd("(2,3,4)@(2,4,5) batched", {2, 3, 4}, {2, 4, 5}, "torch.matmul(x[0], x[1])");
    nd("(2,1,3,4)@(5,4,2) broadcast", {2, 1, 3, 4}, {5, 4, 2}, "torch.matmul(x[0], x[1])");
    nd("(3,4)@(2,4,5) broadcast a", {3, 4}, {2, 4, 5}, "torch.matmul(x[0], x[1])");
    nd("(4,)@(4,) dot", {4}, {4}, "torch.matmul(x[0], x[1])");
    nd("(4,)@(4,3) vector-matrix", {4}, {4, 3}, "torch.matmul(x[0], x[1])");
    nd("(3,4)@(4,) matrix-vector", {3, 4}, {4}, "torch.matmul(x[0], x[1])");
    nd("(4,)@(2,4,3) vector-batch", {4}, {2, 4, 3}, "torch.matmul(x[0], x[1])");
    nd("(2,3,4)@(4,) batch-vector", {2, 3, 4}, {4}, "torch.matmul(x[0], x[1])");
    out.push_back(tg::make_sample("(0,3,4)@(4,2) empty batch", {u({0, 3, 4}), u({4, 2})}, f, [](const auto&) {
                      return xt::xarray<double>(xt::zeros<double>({0, 3, 2}));
                  }).with_torch("torch.matmul(x[0], x[1])"));
    out.push_back(tg::make_sample(
                      "(2,4,3)^T@(2,5,4)^T batched flags", {u({2, 4, 3}), u({2, 5, 4})},
                      [](const auto& v) { return tg::matmul(v[0], v[1], true, true); },
                      [](const auto& x) {
                          xt::xarray<double> y = xt::zeros<double>({2, 3, 5});
                          for (std::size_t p = 0; p < 2; ++p)
                              for (std::size_t i = 0; i < 3; ++i)
                                  for (std::size_t j = 0; j < 5; ++j)
                                      for (std::size_t q = 0; q < 4; ++q) y(p, i, j) += x[0](p, q, i) * x[1](p, j, q);
                          return y;
                      })
                      .with_torch("torch.matmul(x[0].transpose(1, 2), x[1].transpose(1, 2))"));
    // The gemv samples are large: gradcheck covers them, the PyTorch reference file does not.
    for (auto& s : out) {
        if (s.label.find("via gemv") != std::string::npos) s.torch.clear();
    }
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    const auto ones = [](std::vector<std::size_t> s) { return xt::xarray<double>(xt::ones<double>(s)); };
    auto f = [](const auto& v) { return tg::matmul(v[0], v[1]); };
    return {tg::make_error_input("(2,3)@(4,2)", {ones({2, 3}), ones({4, 2})}, f,
                                 "inner dimensions differ: a is [2, 3], b is [4, 2]"),
            tg::make_error_input("(3,)@(4,)", {ones({3}), ones({4})}, f, "inner dimensions differ: a is [3], b is [4]"),
            tg::make_error_input("(2,3)@(4,)", {ones({2, 3}), ones({4})}, f,
                                 "inner dimensions differ: a is [2, 3], b is [4]"),
            tg::make_error_input("rank 0 @ (3,)", {ones({}), ones({3})}, f,
                                 "both inputs need at least one dimension, got a [] and b [3]"),
            tg::make_error_input("(2,3,4)@(3,4,5) batches", {ones({2, 3, 4}), ones({3, 4, 5})}, f,
                                 "batch dims do not broadcast: a is [2, 3, 4], b is [3, 4, 5]"),
            tg::make_error_input(
                "(4,3)^T@(2,4) flag", {ones({4, 3}), ones({2, 4})},
                [](const auto& v) { return tg::matmul(v[0], v[1], true, false); },
                "inner dimensions differ: a is [4, 3] (transposed), b is [2, 4]"),
            tg::make_error_input(
                "(3,)@(3,2) with flags", {ones({3}), ones({3, 2})},
                [](const auto& v) { return tg::matmul(v[0], v[1], false, false); },
                "the transposing form needs inputs of rank 2 or more, got a [3] and b [3, 2]")};
}
