// Every error a user can trigger: a tg::Error whose message names the op and the shapes.

#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;

namespace {
Var<double> p(std::vector<std::size_t> shape)
{
    return tg::parameter(xt::xarray<double>(xt::ones<double>(shape)));
}
}  // namespace

TEST_CASE("tg::Error is a std::runtime_error", "[errors]")
{
    CHECK_THROWS_AS(tg::matmul(p({2, 3}), p({2, 3})), tg::Error);
    CHECK_THROWS_AS(tg::matmul(p({2, 3}), p({2, 3})), std::runtime_error);
}

TEST_CASE("matmul reports mismatched and non-2-D inputs with their shapes", "[errors][matmul]")
{
    CHECK_THROWS_WITH(tg::matmul(p({10, 3}), p({2, 4})),
                      Equals("matmul: inner dimensions differ: a is [10, 3], b is [2, 4]"));
    CHECK_THROWS_WITH(tg::matmul(p({3}), p({4, 5})), Equals("matmul: inner dimensions differ: a is [3], b is [4, 5]"));
    CHECK_THROWS_WITH(tg::matmul(p({}), p({3})),
                      StartsWith("matmul: both inputs need at least one dimension, got a []"));
}

TEST_CASE("broadcasting ops report shapes that cannot be broadcast", "[errors][broadcast]")
{
    CHECK_THROWS_WITH(p({3, 4}) + p({5}), Equals("add: shapes cannot be broadcast together: a is [3, 4], b is [5]"));
    CHECK_THROWS_WITH(p({2, 3}) - p({3, 2}), StartsWith("sub: shapes cannot be broadcast together"));
    CHECK_THROWS_WITH(p({2}) * p({3}), StartsWith("mul: shapes cannot be broadcast together: a is [2], b is [3]"));
    CHECK_THROWS_WITH(p({4, 1, 2}) / p({3, 3}), StartsWith("div: shapes cannot be broadcast together"));
}

TEST_CASE("shape ops report impossible shapes", "[errors][shape]")
{
    CHECK_THROWS_WITH(tg::reshape(p({2, 3}), {4}),
                      Equals("reshape: cannot reshape [2, 3] (6 elements) into [4] (4 elements)"));
    CHECK_THROWS_WITH(tg::transpose(p({2, 3, 4})), Equals("transpose: expected a 2-D Var, got shape [2, 3, 4]"));
    CHECK_THROWS_WITH(tg::linear(p({2, 3}), p({4, 5}), p({5})),
                      StartsWith("linear: inner dimensions differ: x is [2, 3], w is [4, 5]"));
    CHECK_THROWS_WITH(tg::linear(p({2, 3}), p({3, 5}), p({4})), StartsWith("linear: bias must have shape [5]"));
    CHECK_THROWS_WITH(tg::linear(p({}), p({3, 5}), p({5})), StartsWith("linear: expected x [..., in]"));
    CHECK_THROWS_WITH(tg::linear(p({2, 4, 3}), p({4, 5}), p({5})),
                      StartsWith("linear: inner dimensions differ: x is [2, 4, 3], w is [4, 5]"));
}

TEST_CASE("reductions and normalisations report an axis out of range", "[errors][axis]")
{
    CHECK_THROWS_WITH(tg::sum(p({3, 4}), 2), Equals("sum: axis 2 is out of range for shape [3, 4]"));
    CHECK_THROWS_WITH(tg::mean(p({3, 4}), -3), Equals("mean: axis -3 is out of range for shape [3, 4]"));
    CHECK_THROWS_WITH(tg::softmax(p({}), 0), Equals("softmax: axis 0 is out of range for shape []"));
    CHECK_THROWS_WITH(tg::log_softmax(p({2}), 1), Equals("log_softmax: axis 1 is out of range for shape [2]"));
}

TEST_CASE("losses report mismatched shapes and bad labels", "[errors][loss]")
{
    CHECK_THROWS_WITH(tg::mse_loss(p({3, 2}), p({3})),
                      Equals("mse_loss: pred is [3, 2] but target is [3]; the shapes must be equal"));
    CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(p({4}), p({4, 1})),
                      StartsWith("binary_cross_entropy_with_logits: logits are [4] but targets are [4, 1]"));
    using L = xt::xarray<std::int64_t>;
    CHECK_THROWS_WITH(tg::cross_entropy(p({4}), L{0}),
                      Equals("cross_entropy: logits must be [N, C] or [N, C, d1, ...], got [4]"));
    CHECK_THROWS_WITH(tg::cross_entropy(p({2, 3}), L(xt::zeros<std::int64_t>({2, 1}))),
                      Contains("labels must be 1-D") && Contains("[2, 3]") && Contains("got [2, 1]"));
    CHECK_THROWS_WITH(tg::cross_entropy(p({2, 3}), L{0, 3}),
                      Equals("cross_entropy: label 3 at row 1 is out of range for 3 classes"));
    CHECK_THROWS_WITH(tg::cross_entropy(p({2, 3}), L{-1, 0}), Contains("label -1 at row 0 is out of range"));
}

TEST_CASE("backward reports missing seeds, bad seeds and outputs without grad", "[errors][backward]")
{
    Var<double> y = p({4, 1}) * 2.0;
    CHECK_THROWS_WITH(y.backward(),
                      Equals("backward: output must have one element or be given a seed, got shape [4, 1]"));
    CHECK_THROWS_WITH(y.backward(xt::ones<double>({4})),
                      Equals("backward: seed shape [4] differs from the output's shape [4, 1]"));
    Var<double> c = tg::constant(xt::xarray<double>{1.0});
    CHECK_THROWS_WITH((c * 2.0).backward(), StartsWith("backward: the output does not require grad"));
}

TEST_CASE("stale Vars and spent passes are reported", "[errors][pass]")
{
    Var<double> w = p({2});
    Var<double> h = w * 3.0;
    Var<double> loss = tg::sum(h);
    loss.backward();
    CHECK_THROWS_WITH(loss.backward(), StartsWith("backward: this graph was already backpropagated and released"));
    Var<double> fresh = tg::sum(w);
    CHECK_THROWS_WITH(h.value(), StartsWith("value: this Var is stale"));
    CHECK_THROWS_WITH(tg::sum(h), StartsWith("sum: this Var is stale"));
    CHECK_THROWS_WITH(h + h, StartsWith("add: this Var is stale"));
    CHECK_THROWS_WITH(loss.backward(), Contains("stale"));
    CHECK(fresh.item() == 2.0);
}

TEST_CASE("using an ended pass's Var in a new recorded op is reported as stale", "[errors][pass]")
{
    Var<double> w = p({2});
    Var<double> h = w * 3.0;
    tg::sum(h).backward();
    Var<double> next = w * 1.0;  // every graph of the pass was released: this op starts a new pass
    CHECK_THROWS_WITH(h * 2.0, StartsWith("mul: this Var is stale") && Contains("was backpropagated"));
    CHECK(next.value() == xt::xarray<double>{1.0, 1.0});
}

TEST_CASE("a released Var computes on, but a backward through its released graph is an error", "[errors][pass]")
{
    Var<double> w = p({2});
    Var<double> h = w * 3.0;
    tg::sum(h).backward();
    Var<double> twice = h * 2.0;  // as in PyTorch: the value is there, the graph behind it is spent
    CHECK(twice.value() == xt::xarray<double>{6.0, 6.0});
    CHECK_THROWS_WITH(
        tg::sum(twice).backward(),
        StartsWith("backward: this graph was already backpropagated and released (reached op 'mul' again)"));
}

TEST_CASE("grad, item, set_value and undefined Vars report misuse", "[errors][var]")
{
    Var<double> c = tg::constant(xt::xarray<double>{1.0});
    CHECK_THROWS_WITH(c.grad(), Equals("grad: this Var is a constant and never gets a gradient"));
    Var<double> w = p({2});
    Var<double> h = w * 2.0;
    CHECK_THROWS_WITH(h.grad(), StartsWith("grad: only leaves keep a gradient"));
    CHECK_THROWS_WITH(h.item(), Equals("item: expected a Var with one element, got shape [2]"));
    CHECK_THROWS_WITH(h.set_value(xt::ones<double>({2})), StartsWith("set_value: only a leaf"));
    CHECK_THROWS_WITH(w.set_value(xt::ones<double>({3})),
                      Equals("set_value: shape [3] differs from the leaf's shape [2]"));
    Var<double> undefined;
    CHECK_FALSE(undefined.defined());
    CHECK_THROWS_WITH(undefined.value(), StartsWith("value: the Var is undefined"));
    CHECK_THROWS_WITH(tg::exp(undefined), StartsWith("exp: the Var is undefined"));
}

TEST_CASE("registry, runtime and gradcheck options report misuse", "[errors][misc]")
{
    tg::OpInfo dup{"add", [](std::mt19937_64&) { return std::vector<tg::OpSample>{}; }};
    CHECK_THROWS_WITH(tg::register_op(dup), Equals("register_op: an op named 'add' is already registered"));
    CHECK_THROWS_WITH(tg::set_num_threads(0), Equals("set_num_threads: the thread count must be at least 1, got 0"));
    tg::GradcheckOptions o;
    o.eps = 0;
    CHECK_THROWS_WITH(
        tg::gradcheck([](const std::vector<Var<double>>& v) { return v[0]; }, {xt::xarray<double>{1.0}}, o),
        StartsWith("gradcheck: eps must be positive"));
}
