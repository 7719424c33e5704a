// tg::dist under mpirun: every mode runs on all ranks of one job.
//   api          collectives (sum/min/max, zero-size and rank-0 arrays, shape mismatches, bad
//                roots), DataParallel's averaging and weighting, models that differ
//   equality     N ranks with per-rank batch b against one process with batch N * b, step
//                after step, SGD and Adam, float64 and float32
//   fault-throw, fault-exit, fault-kill, fault-return
//                rank 1 fails on purpose mid-training in one of four ways; the job must end
//                with a non-zero status and a message, and rank 0 must never finish
// Checks do not stop a rank (a rank that stopped alone would leave the others waiting):
// each rank counts its failures and the job's exit status is the total.

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <xtensor/xview.hpp>

#include <tapegrad/dist.hpp>
#include <tapegrad/tapegrad.hpp>

namespace {

namespace dist = tg::dist;
namespace nn = tg::nn;
namespace optim = tg::optim;

int failures = 0;

void check(bool ok, const std::string& what)
{
    if (!ok) {
        ++failures;
        std::printf("rank %d: FAILED: %s\n", dist::rank(), what.c_str());
    }
}

template <class F> void check_throws(F f, const std::string& expected, const std::string& what)
{
    try {
        f();
        check(false, what + ": no tg::Error");
    } catch (const tg::Error& e) {
        const std::string m = e.what();
        check(m.find(expected) != std::string::npos, what + ": message '" + m + "' lacks '" + expected + "'");
        if (dist::rank() == 0) std::printf("%s: tg::Error: %s\n", what.c_str(), m.c_str());
    }
}

// A small MLP; rank-dependent seeds prove that DataParallel starts every rank from rank 0's weights.
template <class T> nn::Sequential<T> make_model(std::uint64_t seed, std::size_t hidden = 16, bool extra = false)
{
    tg::Generator gen(seed);
    nn::Sequential<T> m;
    m.add(
        nn::Dense<T>(12, hidden, nn::Activation::tanh, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), gen));
    m.add(nn::Dense<T>(hidden, 8, nn::Activation::relu, nn::init::he_uniform(), nn::init::uniform(-0.1, 0.1), gen));
    if (extra) m.add(nn::Dense<T>(8, 8, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), gen));
    m.add(nn::Dense<T>(8, 4, nn::Activation::none, nn::init::glorot_uniform(), nn::init::zeros(), gen));
    return m;
}

template <class T> tg::data::Dataset<T> make_data(std::size_t n)
{
    tg::Generator gen(2024);
    std::normal_distribution<double> normal;
    xt::xarray<T> x = xt::zeros<T>({n, std::size_t{12}});
    xt::xarray<std::int64_t> y = xt::zeros<std::int64_t>({n});
    for (std::size_t i = 0; i < n; ++i) {
        double score[4] = {0, 0, 0, 0};
        for (std::size_t j = 0; j < 12; ++j) {
            x(i, j) = static_cast<T>(normal(gen));
            score[j % 4] += static_cast<double>(x(i, j)) * (j < 6 ? 1.0 : -0.5);
        }
        std::int64_t best = 0;
        for (std::int64_t c = 1; c < 4; ++c) best = score[c] > score[best] ? c : best;
        y(i) = best;
    }
    return tg::data::Dataset<T>(std::move(x), std::move(y));
}

template <class T>
std::unique_ptr<optim::Optimizer<T>> make_optimizer(const std::string& name, std::vector<tg::Var<T>> params)
{
    if (name == "sgd") {
        optim::SGDOptions o;
        o.lr = 0.05;
        o.momentum = 0.9;
        o.nesterov = true;
        o.weight_decay = 1e-3;
        return std::make_unique<optim::SGD<T>>(std::move(params), o);
    }
    optim::AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = 1e-3;
    return std::make_unique<optim::Adam<T>>(std::move(params), o);
}

template <class A> bool shape_is(const A& a, std::initializer_list<std::size_t> want)
{
    return a.dimension() == want.size() && std::equal(want.begin(), want.end(), a.shape().begin());
}

template <class T> double max_abs(const xt::xarray<T>& a)
{
    double m = 0;
    for (T v : a) m = std::max(m, std::abs(static_cast<double>(v)));
    return m;
}

// ---- api ---------------------------------------------------------------------------------

template <class T> void collectives_reduce(int r, int n)
{
    const T rr = static_cast<T>(r), nn_ = static_cast<T>(n);
    xt::xarray<T> s{rr + 1, -(rr + 1), 2 * rr}, lo = s, hi = s;
    dist::all_reduce(s);
    dist::all_reduce(lo, dist::ReduceOp::min);
    dist::all_reduce(hi, dist::ReduceOp::max);
    check(s == xt::xarray<T>{nn_ * (nn_ + 1) / 2, -nn_ * (nn_ + 1) / 2, nn_ * (nn_ - 1)}, "all_reduce sum");
    check(lo == xt::xarray<T>{1, -nn_, 0}, "all_reduce min");
    check(hi == xt::xarray<T>{nn_, -1, 2 * (nn_ - 1)}, "all_reduce max");

    xt::xarray<T> scalar = xt::xarray<T>(rr);  // rank 0
    dist::all_reduce(scalar);
    check(scalar.dimension() == 0 && scalar() == nn_ * (nn_ - 1) / 2, "all_reduce of a rank-0 array");

    xt::xarray<T> empty = xt::zeros<T>({std::size_t{0}, std::size_t{3}});
    dist::all_reduce(empty, dist::ReduceOp::max);
    check(shape_is(empty, {0, 3}), "all_reduce of a zero-size array keeps its shape");

    // Broadcast from the last rank into differently shaped arrays; then a zero-size one.
    xt::xarray<T> b = r == n - 1 ? xt::xarray<T>{{1, 2, 3}, {4, 5, 6}} : xt::xarray<T>{7};
    dist::broadcast(b, n - 1);
    check(b == xt::xarray<T>{{1, 2, 3}, {4, 5, 6}}, "broadcast from the last rank resizes the others");
    xt::xarray<T> z = r == 0 ? xt::xarray<T>(xt::zeros<T>({std::size_t{2}, std::size_t{0}})) : xt::xarray<T>{1, 2};
    dist::broadcast(z);
    check(shape_is(z, {2, 0}), "broadcast of a zero-size array");
}

// Overlapped DataParallel against the blocking one on two copies of a model: the same
// gradients (bit for bit for two ranks) in plain steps, in gradient accumulation (two
// backwards before a synchronize) and after the buckets are rebuilt in ready order; and the
// reductions of the last layers' buckets are started by hooks while backward still runs.
void overlap_matches_blocking(int r)
{
    auto fast = make_model<double>(5, 16, true), slow = make_model<double>(5, 16, true);
    dist::DataParallelOptions o;
    o.bucket_bytes = 600;  // a few small buckets
    o.overlap = true;
    dist::DataParallel<double> dp_fast(fast.named_parameters(), o);
    o.overlap = false;
    dist::DataParallel<double> dp_slow(slow.named_parameters(), o);
    const auto data = make_data<double>(64);
    const auto pf = fast.parameters(), ps = slow.parameters();
    double worst = 0;
    for (int step = 0; step < 4; ++step) {
        for (const auto& q : pf) q.zero_grad();
        for (const auto& q : ps) q.zero_grad();
        const int backwards = step == 2 ? 2 : 1;  // step 2 accumulates two batches
        for (int k = 0; k < backwards; ++k) {
            const std::size_t row = static_cast<std::size_t>(8 * (2 * step + k) + r) % 48;
            tg::Var<double> x = tg::constant(xt::xarray<double>(xt::view(data.features(), xt::range(row, row + 8))));
            xt::xarray<std::int64_t> y = xt::view(data.labels(), xt::range(row, row + 8));
            tg::cross_entropy(fast(x), y).backward();
            tg::cross_entropy(slow(x), y).backward();
        }
        dp_fast.synchronize();
        dp_slow.synchronize();
        for (std::size_t k = 0; k < pf.size(); ++k) {
            worst = std::max(worst, max_abs(xt::xarray<double>(pf[k].grad() - ps[k].grad())) /
                                        std::max(max_abs(ps[k].grad()), 1e-300));
        }
    }
    check(worst <= 1e-15, "overlapped and blocking DataParallel agree (worst " + tg::format_number(worst) + ")");
    check(dp_fast.num_buckets() >= 3, "several buckets (" + std::to_string(dp_fast.num_buckets()) + ")");
    // The rebuilt first bucket starts with the last layer's parameters: they are ready first.
    const std::size_t last_weight = pf.size() - 2, last_bias = pf.size() - 1;
    const std::size_t first = dp_fast.bucket(0).front();
    check(first == last_weight || first == last_bias,
          "buckets rebuilt in ready order (first bucket starts with parameter " + std::to_string(first) + ")");
    check(dp_fast.overlapped_reductions() >= 4,
          "hooks started reductions during backward (" + std::to_string(dp_fast.overlapped_reductions()) + ")");
    check(dp_slow.overlapped_reductions() == 0, "no overlap, no hooks");
}

void api(const dist::World& world)
{
    const int r = world.rank(), n = world.size();
    collectives_reduce<float>(r, n);
    collectives_reduce<double>(r, n);
    xt::xarray<std::int64_t> counts{r, 1};
    dist::all_reduce(counts);
    check(counts(1) == n && counts(0) == n * (n - 1) / 2, "all_reduce of int64");

    // Errors reach every rank, and the job goes on after them.
    xt::xarray<double> odd = r == 0 ? xt::xarray<double>(xt::zeros<double>({2, 3})) : xt::xarray<double>{1, 2, 3};
    check_throws([&] { dist::all_reduce(odd); },
                 "all_reduce: every rank must pass the same shape, but rank 0 has [2, 3], rank 1 has [3]",
                 "all_reduce with different shapes");
    check_throws([&] { dist::broadcast(odd, n); }, "broadcast: root " + std::to_string(n) + " is not a rank",
                 "broadcast from a rank that does not exist");
    dist::barrier();

    // DataParallel averages: a has gradient r + 1 everywhere, b only on rank 1 (2), c nowhere;
    // the same with the reductions started by hooks during backward and without.
    for (const bool overlap : {true, false}) {
        const std::string how = overlap ? " (overlap)" : " (no overlap)";
        auto a = tg::parameter(xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}});
        auto b = tg::parameter(xt::xarray<double>{5.0});
        auto c = tg::parameter(xt::xarray<double>{6.0});
        auto e = tg::parameter(xt::xarray<double>(xt::zeros<double>({std::size_t{0}, std::size_t{4}})));
        dist::DataParallelOptions small;
        small.bucket_bytes = 24;  // several buckets: a alone, b c e together
        small.overlap = overlap;
        dist::DataParallel<double> dp({{"a", a}, {"b", b}, {"c", c}, {"e", e}}, small);
        check(dp.num_buckets() == 2,
              "DataParallel cuts buckets by bucket_bytes (" + std::to_string(dp.num_buckets()) + ")" + how);
        auto run = [&](double wa, std::size_t weight, bool weighted) {
            a.zero_grad();
            b.zero_grad();
            c.zero_grad();
            e.zero_grad();
            tg::Var<double> loss = tg::sum(a) * wa + tg::sum(e);
            if (r == 1) loss = loss + tg::sum(b) * 2.0;
            loss.backward();
            weighted ? dp.synchronize(weight) : dp.synchronize();
        };
        for (int step = 0; step < 2; ++step) {  // the second after overlap's bucket rebuild
            run(r + 1.0, 0, false);
            check(xt::all(xt::equal(a.grad(), (n + 1) / 2.0)), "synchronize averages gradients" + how);
            check(b.has_grad() && b.grad()(0) == 2.0 / n, "a rank without a gradient counts as zeros" + how);
            check(!c.has_grad(), "a parameter with a gradient on no rank keeps none" + how);
            check(e.has_grad() && shape_is(e.grad(), {0, 4}), "zero-size parameters take part" + how);
            run(r + 1.0, static_cast<std::size_t>(r + 1), true);  // weights r + 1: sum (r+1)^2 / sum (r+1)
            double num = 0, den = 0;
            for (int k = 1; k <= n; ++k) num += double(k) * k, den += k;
            check(std::abs(a.grad()(0) - num / den) < 1e-15, "synchronize(local_samples) weighs by samples" + how);
            run(r + 1.0, 5, true);  // equal weights
            check(xt::all(xt::equal(a.grad(), (n + 1) / 2.0)), "equal weights give the plain mean" + how);
        }
        check(overlap == (dp.overlapped_reductions() > 0), "hooks start reductions during backward only with overlap" +
                                                               how + ": " + std::to_string(dp.overlapped_reductions()));
    }
    overlap_matches_blocking(r);

    // Models that differ fail at construction on every rank, naming the first difference.
    check_throws(
        [&] { dist::DataParallel<double> bad(make_model<double>(1, r == 1 ? 17 : 16).named_parameters()); },
        "differ at parameter 0: rank 0 has '0.weight' [12, 16] float64, rank 1 has '0.weight' [12, 17] float64",
        "DataParallel with a different layer width");
    check_throws([&] { dist::DataParallel<double> bad(make_model<double>(1, 16, r == 1).named_parameters()); },
                 "differ at parameter 4: rank 0 has '2.weight' [8, 4] float64, rank 1 has '2.weight' [8, 8] float64",
                 "DataParallel with an extra layer");
    auto named = make_model<double>(1).named_parameters();
    if (r == 1) named.pop_back();
    check_throws([&] { dist::DataParallel<double> bad(named); },
                 "rank 0 has 6 parameters, rank 1 has 5; the first without a counterpart is parameter 5, '2.bias' [4] "
                 "float64 on rank 0",
                 "DataParallel with a missing parameter");
    auto renamed = make_model<double>(1).named_parameters();
    if (r == 1) renamed[3].first = "1.b";
    check_throws([&] { dist::DataParallel<double> bad(renamed); }, "rank 0 has '1.bias' [8] float64, rank 1 has '1.b'",
                 "DataParallel with a renamed parameter");
    check_throws(
        [&] {
            if (r == 0) {
                dist::DataParallel<double> bad(make_model<double>(1).named_parameters());
            } else {
                dist::DataParallel<float> bad(make_model<float>(1).named_parameters());
            }
        },
        "rank 0 has '0.weight' [12, 16] float64, rank 1 has '0.weight' [12, 16] float32",
        "DataParallel with another scalar type");

    // The sampler's shards, batch by batch, are the DataLoader's batches of N times the size.
    const auto data = make_data<double>(203);
    tg::data::DataLoader<double> loader(data, {std::size_t(5) * n, true, false, 3});
    dist::DistributedSampler sampler(data.size(), 5, n, r, {true, 3, false});
    bool same = loader.num_batches() == sampler.num_batches();
    for (std::uint64_t epoch : {0, 4}) {
        loader.set_epoch(epoch);
        sampler.set_epoch(epoch);
        for (std::size_t i = 0; same && i < loader.num_batches(); ++i) {
            xt::xarray<std::int64_t> mine = xt::zeros<std::int64_t>({data.size()}), want = mine;
            const auto [first, last] = sampler.batch_range(i);
            for (std::size_t k = first; k < last; ++k) mine(sampler.indices()[k]) += 1;
            dist::all_reduce(mine);
            const std::size_t rows = sampler.global_batch_rows(i);
            for (std::size_t k = 0; k < rows; ++k) want(loader.order()[i * 5 * n + k]) += 1;
            same = mine == want;
        }
    }
    check(same, "the ranks' batches together are the DataLoader's global batches");
}

// ---- equality ----------------------------------------------------------------------------

template <class T>
double equality(const dist::World& world, const std::string& opt_name, std::size_t rows, double tol,
                bool overlap = true)
{
    const int r = world.rank(), n = world.size();
    const auto data = make_data<T>(rows);
    const std::size_t per_rank = 8, epochs = 3;
    auto reference = make_model<T>(7);                        // one process, batch n * per_rank
    auto model = make_model<T>(7 + 1000 * std::uint64_t(r));  // rank 0's weights arrive by broadcast
    const auto start = model.parameters()[0].value();
    auto ref_opt = make_optimizer<T>(opt_name, reference.parameters());
    auto opt = make_optimizer<T>(opt_name, model.parameters());
    dist::DataParallelOptions options;
    options.overlap = overlap;
    options.bucket_bytes = 512;  // several buckets, so that hooks start some during backward
    dist::DataParallel<T> dp(model.named_parameters(), options);
    tg::data::DataLoader<T> loader(data, {per_rank * n, true, false, 11});
    dist::DistributedSampler sampler(data.size(), per_rank, n, r, {true, 11, false});
    tg::Var<T> x = tg::constant(xt::xarray<T>()), xr = tg::constant(xt::xarray<T>());
    xt::xarray<std::int64_t> y, yr;
    const auto ref_params = reference.parameters(), params = model.parameters();
    double worst = 0;
    std::size_t steps = 0, empty = 0;
    for (std::uint64_t epoch = 0; epoch < epochs; ++epoch) {
        loader.set_epoch(epoch);
        sampler.set_epoch(epoch);
        for (std::size_t i = 0; i < loader.num_batches(); ++i) {
            loader.fill(i, xr.mutable_value(), yr);
            ref_opt->zero_grad();
            tg::cross_entropy(reference(xr), yr).backward();
            ref_opt->step();

            sampler.fill(data, i, x.mutable_value(), y);
            opt->zero_grad();
            if (y.size() > 0) tg::cross_entropy(model(x), y).backward();
            empty += y.size() == 0;
            dp.synchronize(y.size());
            opt->step();
            ++steps;
            for (std::size_t k = 0; k < params.size(); ++k) {
                const xt::xarray<T> d = params[k].value() - ref_params[k].value();
                worst = std::max(worst, max_abs(d) / std::max(max_abs(ref_params[k].value()), 1e-30));
            }
        }
    }
    xt::xarray<double> w{worst, double(empty)};
    dist::all_reduce(w, dist::ReduceOp::max);
    worst = w(0);
    // Every rank holds the same parameters, bit for bit.
    bool identical = true;
    for (const auto& p : params) {
        xt::xarray<T> lo = p.value(), hi = p.value();
        dist::all_reduce(lo, dist::ReduceOp::min);
        dist::all_reduce(hi, dist::ReduceOp::max);
        identical = identical && lo == hi;
    }
    const std::string name =
        std::string(sizeof(T) == 8 ? "float64 " : "float32 ") + opt_name + (overlap ? "" : " (no overlap)");
    check(overlap == (dp.overlapped_reductions() > 0),
          name + ": reductions started during backward: " + std::to_string(dp.overlapped_reductions()));
    check(identical, name + ": every rank holds the same parameters");
    check(max_abs(xt::xarray<T>(params[0].value() - start)) > 1e-2 || r != 0, name + ": training moved the weights");
    check(worst <= tol,
          name + ": worst relative difference " + tg::format_number(worst) + " exceeds " + tg::format_number(tol));
    if (r == 0) {
        std::printf("%s: %zu ranks x batch %zu vs 1 process x batch %zu, %zu rows, %zu steps (%d with an empty shard): "
                    "worst max|difference|/max|reference| per tensor %.3g (tolerance %g)\n",
                    name.c_str(), std::size_t(n), per_rank, per_rank * n, rows, steps, int(w(1)), worst, tol);
    }
    return worst;
}

// ---- faults ------------------------------------------------------------------------------

int fault(const dist::World& world, const std::string& mode)
{
    auto model = make_model<double>(3);
    auto opt = make_optimizer<double>("sgd", model.parameters());
    dist::DataParallelOptions options;
    options.overlap = true;  // reductions in flight when rank 1 fails
    options.bucket_bytes = 512;
    dist::DataParallel<double> dp(model.named_parameters(), options);
    const auto data = make_data<double>(400);
    dist::DistributedSampler sampler(data.size(), 8, world.size(), world.rank(), {true, 5, false});
    tg::Var<double> x = tg::constant(xt::xarray<double>());
    xt::xarray<std::int64_t> y;
    for (std::size_t step = 0; step < 2000; ++step) {
        if (world.rank() == 1 && step == 20) {
            std::printf("rank 1: failing on purpose at step 20 (%s)\n", mode.c_str());
            std::fflush(stdout);
            if (mode == "fault-throw") throw std::runtime_error("deliberate failure on rank 1 at step 20");
            if (mode == "fault-exit") std::exit(3);
            if (mode == "fault-kill") std::raise(SIGKILL);
            if (mode == "fault-return") return 1;  // the World's destructor runs, rank 0 is mid-training
        }
        sampler.set_epoch(step / sampler.num_batches());
        sampler.fill(data, step % sampler.num_batches(), x.mutable_value(), y);
        opt->zero_grad();
        tg::cross_entropy(model(x), y).backward();
        dp.synchronize(y.size());
        opt->step();
    }
    std::printf("rank %d: finished training\n", world.rank());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    const std::string mode = argc > 1 ? argv[1] : "";
    dist::WorldOptions options;
    if (mode == "fault-return") options.finalize_timeout = 2;
    dist::World world(argc, argv, options);
    if (mode.rfind("fault-", 0) == 0) return fault(world, mode);
    if (mode == "api") {
        api(world);
    } else if (mode == "equality") {
        equality<double>(world, "sgd", 203, 1e-12, false);
        equality<double>(world, "sgd", 203, 1e-12);
        equality<double>(world, "adam", 209, 1e-12);
        equality<float>(world, "sgd", 203, 1e-5);
        equality<float>(world, "adam", 209, 1e-5);
    } else {
        if (world.rank() == 0) std::fprintf(stderr, "dist_tests: unknown mode '%s'\n", mode.c_str());
        return 2;
    }
    xt::xarray<std::int64_t> total{failures};
    dist::all_reduce(total);
    if (world.rank() == 0) std::printf("dist_tests %s: %s\n", mode.c_str(), total(0) == 0 ? "ok" : "FAILED");
    return total(0) == 0 ? 0 : 1;
}
