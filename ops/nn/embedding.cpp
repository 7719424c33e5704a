// ops/nn/embedding.cpp — rows of a table: y[i..., :] = weight[indices[i...], :]
//   (torch.nn.functional.embedding) for weight [num, dim] and integer indices of any shape
//   [*] with values in [0, num): y [*, dim]. The indices are a constant of the call.
//   vjp: grad_weight [num, dim] = grad_out's rows [*, dim] scatter-added at their indices
//        (repeated indices add up): embedding_backward below, linear in grad_out, whose own
//        vjp is embedding again (a gather of the same rows).
// Both ops copy the indices into the tape entry's saved integers (reused pass after pass)
// instead of owning a copy, so a steady training step allocates nothing.

#include <algorithm>
#include <vector>

#include "tapegrad/kit.hpp"

namespace tg {

//! public
/// Rows of weight [num, dim] at integer indices of any shape [*] (torch.nn.functional.embedding): y [*, dim].
template <class T> Var<T> embedding(const xt::xarray<std::int64_t>& indices, const Var<T>& weight);
//! end

namespace {

// The indices as the op's entry keeps them: copied when recorded (the backward reads them
// later), else read from the caller's array.
template <class T>
const xt::xarray<std::int64_t>& kept_indices(OpContext<T>& c, const xt::xarray<std::int64_t>& indices)
{
    if (!c.recording()) return indices;
    auto& saved = c.saved_indices(0);
    if (saved.shape() != indices.shape()) saved.resize(indices.shape());
    std::copy(indices.data(), indices.data() + indices.size(), saved.data());
    return saved;
}

// rows of a [num, dim] table gathered at idx into out [k, dim].
template <class T> void gather_rows(const T* table, const std::int64_t* idx, std::size_t k, std::size_t dim, T* out)
{
    for (std::size_t j = 0; j < k; ++j) {
        const T* from = table + static_cast<std::size_t>(idx[j]) * dim;
        std::copy(from, from + dim, out + j * dim);
    }
}

// What the fused backward adds into a gradient that already holds one: the rows touched,
// summed in a compact buffer first (so that a second backward adds exactly the same again).
template <class T> struct ScatterScratch {
    std::vector<std::int64_t> slot;  // for each table row, its position in `rows`, or -1 (all -1 between calls)
    std::vector<std::size_t> rows;
    std::vector<T> sums;
};

// dst [num, dim] (=|+=) grad [k, dim] scatter-added at idx, in index order.
template <class T>
void scatter_rows(const T* grad, const std::int64_t* idx, std::size_t k, std::size_t num, std::size_t dim, T* dst,
                  bool add)
{
    if (!add) {
        std::fill_n(dst, num * dim, T(0));
        for (std::size_t j = 0; j < k; ++j)
            kernel::add_or_assign(dst + static_cast<std::size_t>(idx[j]) * dim, grad + j * dim, dim, true);
        return;
    }
    static thread_local ScatterScratch<T> s;
    if (s.slot.size() < num) s.slot.resize(num, -1);
    if (s.sums.size() < k * dim) s.sums.resize(k * dim);
    s.rows.clear();
    for (std::size_t j = 0; j < k; ++j) {
        const auto r = static_cast<std::size_t>(idx[j]);
        if (s.slot[r] < 0) {
            s.slot[r] = static_cast<std::int64_t>(s.rows.size());
            s.rows.push_back(r);
            kernel::add_or_assign(s.sums.data() + static_cast<std::size_t>(s.slot[r]) * dim, grad + j * dim, dim,
                                  false);
        } else {
            kernel::add_or_assign(s.sums.data() + static_cast<std::size_t>(s.slot[r]) * dim, grad + j * dim, dim, true);
        }
    }
    for (std::size_t p = 0; p < s.rows.size(); ++p) {
        const T* sum = s.sums.data() + p * dim;
        kernel::add_or_assign(dst + s.rows[p] * dim, sum, dim, true);
        s.slot[s.rows[p]] = -1;
    }
}

// grad_weight [num, dim] = grad_out [*, dim] scatter-added at the indices: the vjp of
// embedding as an op of its own, so that it can be differentiated again.
//   vjp: grad_grad_out [*, dim] = embedding(indices, grad_out)
struct EmbeddingBackward {
    static constexpr const char* name = "embedding_backward";
    const xt::xarray<std::int64_t>* indices;  // read by forward only (kept in the entry)
    std::size_t num;

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& idx = kept_indices(c, *indices);
        const auto& g = c.input(0);
        const std::size_t dim = g.shape().back();
        scatter_rows(g.data(), idx.data(), idx.size(), num, dim, c.output({num, dim}).data(), false);
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& g = c.input(0);
        const auto& idx = c.saved_indices(0);
        const std::size_t dim = g.shape().back();
        const T* gg = c.grad_out().data();
        c.add_grad(0, g.shape(), [&](T* dst, bool add) {
            for (std::size_t j = 0; j < idx.size(); ++j) {
                kernel::add_or_assign(dst + j * dim, gg + static_cast<std::size_t>(idx.data()[j]) * dim, dim, add);
            }
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const { v.add_grad(0, embedding(v.saved_indices(0), v.grad_out())); }
};

struct Embedding {
    static constexpr const char* name = TAPEGRAD_OP_NAME;
    const xt::xarray<std::int64_t>* indices;  // read by forward only (kept in the entry)

    template <class T> void forward(OpContext<T>& c) const
    {
        const auto& idx = kept_indices(c, *indices);
        const auto& w = c.input(0);
        const std::size_t dim = w.shape()[1];
        auto shape = idx.shape();
        shape.push_back(dim);
        gather_rows(w.data(), idx.data(), idx.size(), dim, c.output(shape).data());
    }
    template <class T> void backward(OpContext<T>& c) const
    {
        const auto& w = c.input(0);
        const auto& idx = c.saved_indices(0);
        const T* g = c.grad_out().data();
        c.add_grad(0, w.shape(), [&](T* dst, bool add) {
            scatter_rows(g, idx.data(), idx.size(), w.shape()[0], w.shape()[1], dst, add);
        });
    }
    template <class T> void vjp(VjpContext<T>& v) const
    {
        v.add_grad(0, record(EmbeddingBackward{&v.saved_indices(0), v.input_shape(0)[0]}, v.grad_out()));
    }
};

}  // namespace

template <class T> Var<T> embedding(const xt::xarray<std::int64_t>& indices, const Var<T>& weight)
{
    const char* op = Embedding::name;
    const auto& s = input_shape(op, weight);
    if (s.size() != 2) throw Error(std::string(op) + ": weight must be 2-D [num, dim], got " + format_shape(s));
    const std::size_t num = s[0];
    const std::int64_t* idx = indices.data();
    for (std::size_t j = 0; j < indices.size(); ++j) {
        if (idx[j] < 0 || static_cast<std::size_t>(idx[j]) >= num) {
            throw Error(std::string(op) + ": index " + std::to_string(idx[j]) + " at flat position " +
                        std::to_string(j) + " is out of range for a table of " + std::to_string(num) +
                        " rows (weight " + format_shape(s) + ")");
        }
    }
    return record(Embedding{&indices}, weight);
}

template Var<float> embedding<float>(const xt::xarray<std::int64_t>&, const Var<float>&);
template Var<double> embedding<double>(const xt::xarray<std::int64_t>&, const Var<double>&);

}  // namespace tg

TAPEGRAD_OP_SAMPLES(rng)
{
    auto u = [&](std::vector<std::size_t> s) { return tg::sample_uniform(rng, s, -1.0, 1.0); };
    std::vector<tg::OpSample> out;
    auto sample = [&](std::string label, std::vector<std::size_t> table, xt::xarray<std::int64_t> indices) {
        out.push_back(
            tg::make_sample(
                std::move(label), {u(table)}, [indices](const auto& v) { return tg::embedding(indices, v[0]); },
                [indices](const auto& x) {
                    const std::size_t dim = x[0].shape()[1];
                    auto shape = indices.shape();
                    shape.push_back(dim);
                    xt::xarray<double> y = xt::zeros<double>(shape);
                    for (std::size_t j = 0; j < indices.size(); ++j)
                        for (std::size_t d = 0; d < dim; ++d)
                            y.data()[j * dim + d] = x[0](static_cast<std::size_t>(indices.data()[j]), d);
                    return y;
                })
                .with_torch("torch.nn.functional.embedding(" + tg::samples::torch_literal(indices) + ", x[0])"));
    };
    using I = xt::xarray<std::int64_t>;
    sample("(5,3) table, [4] indices with repeats", {5, 3}, I{2, 0, 2, 4});
    sample("(4,2) table, [2,3] indices", {4, 2}, I{{3, 1, 1}, {0, 3, 3}});
    sample("(6,4) table, rank-0 index", {6, 4}, I(5));
    sample("(3,5) table, every row once", {3, 5}, I{1, 2, 0});
    sample("(4,3) table, empty [0] indices", {4, 3}, I(xt::zeros<std::int64_t>({0})));
    sample("(1,2) table, [2,0] indices", {1, 2}, I(xt::zeros<std::int64_t>({2, 0})));
    return out;
}

TAPEGRAD_OP_ERROR_INPUTS()
{
    using Index = xt::xarray<std::int64_t>;
    const xt::xarray<double> w = xt::ones<double>({3, 2});
    return {tg::make_error_input(
                "index 3 of 3 rows", {w},
                [](const auto& v) {
                    return tg::embedding(Index{{0, 1}, {3, 2}}, v[0]);
                },
                "index 3 at flat position 2 is out of range for a table of 3 rows (weight [3, 2])"),
            tg::make_error_input(
                "index -1", {w}, [](const auto& v) { return tg::embedding(Index{-1}, v[0]); },
                "index -1 at flat position 0 is out of range for a table of 3 rows"),
            tg::make_error_input(
                "weight of rank 1", {xt::ones<double>({3})},
                [](const auto& v) { return tg::embedding(Index{0}, v[0]); }, "weight must be 2-D [num, dim], got [3]"),
            tg::make_error_input(
                "weight of rank 3", {xt::ones<double>({3, 2, 2})},
                [](const auto& v) { return tg::embedding(Index{0}, v[0]); },
                "weight must be 2-D [num, dim], got [3, 2, 2]")};
}
