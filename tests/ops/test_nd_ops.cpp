// The N-D shape, indexing, product and loss ops: what the generic tests cannot see (bad
// input and its messages, conventions, results that are several Vars).

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::StartsWith;
using tg::Var;

namespace {

Var<double> p(const xt::xarray<double>& v)
{
    return tg::parameter(v);
}

xt::xarray<double> iota(std::vector<std::size_t> shape)
{
    xt::xarray<double> a = xt::zeros<double>(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<double>(i);
    return a;
}

}  // namespace

TEST_CASE("shape ops reject bad axes and shapes, naming the op and the shapes", "[ops][nd][errors]")
{
    Var<double> x = p(iota({2, 3, 4}));
    CHECK_THROWS_WITH(tg::permute(x, {0, 1}),
                      StartsWith("permute: dims [0, 1] are not a permutation of the axes of shape [2, 3, 4]"));
    CHECK_THROWS_WITH(tg::permute(x, {0, 1, 1}), StartsWith("permute: dims [0, 1, 1]"));
    CHECK_THROWS_WITH(tg::transpose(x, 0, 3), StartsWith("transpose: axis 3 is out of range for shape [2, 3, 4]"));
    CHECK_THROWS_WITH(tg::flatten(x, 2, 1), StartsWith("flatten: start_dim 2 comes after end_dim 1"));
    CHECK_THROWS_WITH(tg::unsqueeze(x, 4),
                      StartsWith("unsqueeze: axis 4 is out of range for shape [2, 3, 4] (inserting"));
    CHECK_THROWS_WITH(tg::squeeze(x, 1), StartsWith("squeeze: axis 1 of shape [2, 3, 4] has size 3, not 1"));
    CHECK_THROWS_WITH(
        tg::concat<double>({x, p(iota({2, 2, 3}))}, 1),
        StartsWith("concat: input 1 has shape [2, 2, 3] but input 0 has [2, 3, 4]; only axis 1 may differ"));
    CHECK_THROWS_WITH(tg::concat<double>({}, 0), StartsWith("concat: no inputs given"));
    CHECK_THROWS_WITH(tg::stack<double>({x, p(iota({2, 3}))}, 0), StartsWith("stack: input 1 has shape [2, 3]"));
    CHECK_THROWS_WITH(tg::narrow(x, 1, 2, 2), StartsWith("narrow: start 2 and length 2 run past axis 1 of size 3"));
    CHECK_THROWS_WITH(tg::split(x, {1, 1}, 1),
                      StartsWith("split: sizes [1, 1] add up to 2 but axis 1 of shape [2, 3, 4] has 3"));
    CHECK_THROWS_WITH(tg::chunk(x, 0, 1), StartsWith("chunk: chunks must be at least 1"));
    CHECK_THROWS_WITH(tg::index_select(x, 1, xt::xarray<std::int64_t>{0, 3}),
                      StartsWith("index_select: index 3 at position 1 is out of range for axis 1 of shape [2, 3, 4]"));
    CHECK_THROWS_WITH(tg::index_select(x, 1, xt::xarray<std::int64_t>(xt::zeros<std::int64_t>({1, 1}))),
                      StartsWith("index_select: index must be 1-D"));
    CHECK_THROWS_WITH(tg::gather(x, 2, xt::xarray<std::int64_t>(xt::ones<std::int64_t>({1, 1, 1}) * 4)),
                      StartsWith("gather: index 4 at flat position 0 is out of range for axis 2"));
    CHECK_THROWS_WITH(tg::gather(x, 0, xt::xarray<std::int64_t>(xt::ones<std::int64_t>({1, 1}))),
                      StartsWith("gather: index has shape [1, 1] but x has [2, 3, 4]"));
    CHECK_THROWS_WITH(tg::scatter_add(x, 0, xt::zeros<std::int64_t>({1, 3, 4}), p(iota({1, 3, 3}))),
                      StartsWith("scatter_add: src has shape [1, 3, 3] but index has [1, 3, 4]"));
    CHECK_THROWS_WITH(
        tg::index_add(x, 1, xt::xarray<std::int64_t>{0}, p(iota({2, 2, 4}))),
        StartsWith("index_add: source has shape [2, 2, 4] but x is [2, 3, 4] with 1 indices along axis 1"));
    CHECK_THROWS_WITH(tg::expand(x, {2, 5, 4}), StartsWith("expand: cannot broadcast shape [2, 3, 4] to [2, 5, 4]"));
    CHECK_THROWS_WITH(tg::sum_to(x, {5}), StartsWith("sum_to: shape [5] does not broadcast to [2, 3, 4]"));
}

TEST_CASE("split and chunk cut as torch does and their pieces backpropagate", "[ops][nd]")
{
    Var<double> x = p(iota({7, 2}));
    const auto pieces = tg::chunk(x, 3, 0);  // ceil(7 / 3) = 3: pieces of 3, 3, 1
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[0].shape()[0] == 3);
    CHECK(pieces[2].shape()[0] == 1);
    const xt::xarray<double> last = pieces[2].value();
    CHECK(last == xt::xarray<double>{{12.0, 13.0}});
    CHECK(tg::chunk(x, 10, 0).size() == 7);  // no empty pieces, as torch.chunk
    Var<double> loss = tg::sum(pieces[1] * 2.0) + tg::sum(pieces[2]);
    loss.backward();
    CHECK(x.grad() == xt::xarray<double>{{0, 0}, {0, 0}, {0, 0}, {2, 2}, {2, 2}, {2, 2}, {1, 1}});
}

TEST_CASE("index_select and gather add up repeated picks in the gradient", "[ops][nd]")
{
    Var<double> x = p(iota({3, 2}));
    tg::sum(tg::index_select(x, 0, xt::xarray<std::int64_t>{2, 2, 0})).backward();
    CHECK(x.grad() == xt::xarray<double>{{1, 1}, {0, 0}, {2, 2}});
    x.zero_grad();
    tg::sum(tg::gather(x, 1, xt::xarray<std::int64_t>{{1, 1}, {0, 1}, {0, 0}})).backward();
    CHECK(x.grad() == xt::xarray<double>{{0, 2}, {1, 1}, {2, 0}});
}

TEST_CASE("matmul follows torch.matmul's rules for 1-D and N-D operands", "[ops][nd][matmul]")
{
    Var<double> v = p(xt::xarray<double>{1.0, 2.0, 3.0});
    Var<double> m = p(iota({3, 2}));
    CHECK(tg::matmul(v, v).dim() == 0);
    CHECK(tg::matmul(v, v).item() == 14.0);
    CHECK(tg::matmul(v, m).shape() == std::vector<std::size_t>{2});
    CHECK(tg::matmul(tg::transpose(m), v).shape() == std::vector<std::size_t>{2});
    Var<double> batch = p(iota({4, 1, 2, 3}));
    CHECK(tg::matmul(batch, p(iota({5, 3, 2}))).shape() == std::vector<std::size_t>{4, 5, 2, 2});
    CHECK(tg::matmul(batch, v).shape() == std::vector<std::size_t>{4, 1, 2});
    CHECK_THROWS_WITH(tg::matmul(p(iota({2, 2, 3})), p(iota({3, 3, 2}))),
                      StartsWith("matmul: batch dims do not broadcast: a is [2, 2, 3], b is [3, 3, 2]"));
    CHECK_THROWS_WITH(tg::matmul(v, p(iota({2, 2}))),
                      StartsWith("matmul: inner dimensions differ: a is [3], b is [2, 2]"));
    CHECK_THROWS_WITH(tg::matmul(p(xt::xarray<double>(1.0)), v),
                      StartsWith("matmul: both inputs need at least one dimension"));
    CHECK_THROWS_WITH(tg::matmul(v, m, true, false), StartsWith("matmul: the transposing form needs inputs of rank 2"));
}

TEST_CASE("losses take a reduction, and bad labels are named", "[ops][nd][loss]")
{
    Var<double> pred = p(xt::xarray<double>{{1.0, 2.0}, {3.0, 5.0}});
    Var<double> target = tg::constant(xt::xarray<double>{{1.0, 0.0}, {0.0, 1.0}});
    CHECK(tg::mse_loss(pred, target).item() == Approx((0 + 4 + 9 + 16) / 4.0));
    CHECK(tg::mse_loss(pred, target, tg::Reduction::sum).item() == Approx(29.0));
    const xt::xarray<double> per_element = tg::mse_loss(pred, target, tg::Reduction::none).value();
    CHECK(per_element == xt::xarray<double>{{0, 4}, {9, 16}});
    CHECK(tg::l1_loss(pred, target, tg::Reduction::sum).item() == Approx(9.0));
    const xt::xarray<double> smooth = tg::smooth_l1_loss(pred, target, tg::Reduction::none, 2.0).value();
    CHECK(smooth == xt::xarray<double>{{0, 1}, {2, 3}});  // 0.5 d^2 / 2 for |d| < 2, else |d| - 1
    const xt::xarray<double> huber = tg::huber_loss(pred, target, tg::Reduction::none, 2.0).value();
    CHECK(huber == xt::xarray<double>{{0, 2}, {4, 6}});
    // l1's subgradient at equality is 0, as PyTorch's sign(0).
    tg::l1_loss(pred, target, tg::Reduction::sum).backward();
    CHECK(pred.grad() == xt::xarray<double>{{0, 1}, {1, 1}});
    CHECK_THROWS_WITH(tg::huber_loss(pred, target, tg::Reduction::mean, 0.0),
                      StartsWith("huber_loss: delta must be finite and positive"));
    CHECK_THROWS_WITH(tg::smooth_l1_loss(pred, target, tg::Reduction::mean, -1.0),
                      StartsWith("smooth_l1_loss: beta must be"));
    CHECK_THROWS_WITH(tg::l1_loss(pred, tg::constant(xt::xarray<double>{1.0})),
                      StartsWith("l1_loss: pred is [2, 2] but target is [1]"));
    // Probabilities outside [0, 1], and the clamped logs at 0 and 1.
    CHECK_THROWS_WITH(
        tg::binary_cross_entropy(p(xt::xarray<double>{0.5, 1.5}), tg::constant(xt::xarray<double>{1.0, 0.0})),
        StartsWith("binary_cross_entropy: probs must be in [0, 1], got 1.5 at flat position 1"));
    CHECK(tg::binary_cross_entropy(p(xt::xarray<double>{0.0}), tg::constant(xt::xarray<double>{1.0})).item() == 100.0);
    Var<double> logits = p(iota({2, 3, 2}));
    CHECK_THROWS_WITH(tg::nll_loss(logits, xt::xarray<std::int64_t>{0, 1}),
                      StartsWith("nll_loss: input [2, 3, 2] needs labels of shape [N, d1, ...]"));
    CHECK_THROWS_WITH(tg::nll_loss(logits, xt::xarray<std::int64_t>{{0, 3}, {1, 1}}),
                      StartsWith("nll_loss: label 3 at flat position 1 is out of range for 3 classes"));
    CHECK_THROWS_WITH(tg::cross_entropy(logits, xt::xarray<std::int64_t>{{0, 1}, {1, 1}}, tg::Reduction::mean, 1.5),
                      StartsWith("cross_entropy: label_smoothing must be in [0, 1]"));
    CHECK_THROWS_WITH(tg::cross_entropy(p(xt::xarray<double>{1.0, 2.0}), xt::xarray<std::int64_t>{0}),
                      StartsWith("cross_entropy: logits must be [N, C] or [N, C, d1, ...]"));
}

TEST_CASE("zero-size batches go through as PyTorch's do", "[ops][nd][zero]")
{
    Var<double> x = p(xt::zeros<double>({0, 3}));
    Var<double> w = p(iota({3, 2}));
    Var<double> b = p(xt::xarray<double>{1.0, 2.0});
    Var<double> loss = tg::sum(tg::linear(x, w, b)) + tg::sum(tg::matmul(x, w));
    loss.backward();
    CHECK(w.grad() == xt::zeros<double>({3, 2}));
    CHECK(b.grad() == xt::zeros<double>({2}));
    CHECK(x.grad().shape() == std::vector<std::size_t>{0, 3});
    const double empty_mean = tg::cross_entropy(p(xt::zeros<double>({0, 4})), xt::zeros<std::int64_t>({0})).item();
    CHECK(std::isnan(empty_mean));  // torch: the mean over no elements is NaN
    CHECK(tg::concat<double>({p(xt::zeros<double>({0, 2})), p(iota({1, 2}))}, 0).shape() ==
          std::vector<std::size_t>{1, 2});
}
