// dist_allreduce: what averaging gradients costs on this machine, under mpirun.
//   1. MPI_Allreduce (sum, in place) of float32 buffers from 64 KB to 32 MB, the main job's
//      gradients (535818 floats, 2.1 MB) among them: median of 50 after 10 warm-ups, each
//      started together (barrier first), so the time is the transfer, not waiting.
//   2. Overlap: the main job's backward stands in as gemms of its shapes (one BLAS thread
//      per rank); its allreduce runs after them (sequential) or as MPI_Iallreduce started
//      before them and polled with MPI_Test between them (overlapped, as gradient-ready
//      hooks would do). Medians of 30.
//   3. The main job's real training step with DataParallel, overlap on and off.
// Prints one line per figure; bench/dist-compare collects them into bench/RESULTS.md.

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <tapegrad/dist.hpp>
#include <tapegrad/tapegrad.hpp>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double now_ms()
{
    return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

// A training step at batch 64 per rank (an MLP of the given widths, ReLU, float32, 1 BLAS
// thread): forward, cross-entropy, backward and DataParallel::synchronize, with the
// reductions started by gradient-ready hooks during backward (overlap) and without, the two
// alternating step by step on the same weights. Medians of 60 after 10 warm-ups; a barrier
// before each step, so that a step's time is its own. BUCKET_KB sets bucket_bytes.
void data_parallel_steps(bool root, const char* label, const std::vector<std::size_t>& widths)
{
    namespace nn = tg::nn;
    tg::Generator gen(1);
    auto make = [&] {
        tg::Generator g(1);
        nn::Sequential<float> m;
        for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
            const bool last = l + 2 == widths.size();
            m.add(nn::Dense<float>(widths[l], widths[l + 1], last ? nn::Activation::none : nn::Activation::relu,
                                   nn::init::he_uniform(), nn::init::zeros(), g));
        }
        return m;
    };
    nn::Sequential<float> fast = make(), slow = make();
    tg::dist::DataParallelOptions options;
    if (const char* kb = std::getenv("BUCKET_KB")) options.bucket_bytes = std::size_t(std::atof(kb) * 1024);
    options.overlap = true;
    tg::dist::DataParallel<float> dp_fast(fast.named_parameters(), options);
    options.overlap = false;
    tg::dist::DataParallel<float> dp_slow(slow.named_parameters(), options);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    xt::xarray<float> x = xt::zeros<float>({std::size_t{64}, widths[0]});
    for (float& v : x) v = u(gen);
    xt::xarray<std::int64_t> y = xt::zeros<std::int64_t>({std::size_t{64}});
    for (std::size_t i = 0; i < 64; ++i) y(i) = static_cast<std::int64_t>(i % 10);
    const tg::Var<float> input = tg::constant(x);
    auto step = [&](nn::Sequential<float>& model, tg::dist::DataParallel<float>& dp) {
        for (const auto& p : model.parameters()) p.zero_grad();
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = now_ms();
        tg::cross_entropy(model(input), y).backward();
        dp.synchronize();
        return now_ms() - t0;
    };
    std::vector<double> with, without;
    double comm_with = 0, comm_without = 0;
    for (int i = 0; i < 70; ++i) {
        if (i == 10) {
            comm_with = dp_fast.communication_seconds();
            comm_without = dp_slow.communication_seconds();
        }
        const double a = step(fast, dp_fast);
        const double b = step(slow, dp_slow);
        if (i >= 10) {
            with.push_back(a);
            without.push_back(b);
        }
    }
    double m[4] = {median(without), median(with), 1000 * (dp_slow.communication_seconds() - comm_without) / 60,
                   1000 * (dp_fast.communication_seconds() - comm_with) / 60};
    MPI_Allreduce(MPI_IN_PLACE, m, 4, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (root) {
        std::printf("%s step (forward, backward, synchronize), no overlap: %.3f ms, of which blocked in MPI "
                    "%.3f ms (%zu buckets)\n",
                    label, m[0], m[2], dp_slow.num_buckets());
        std::printf("%s step (forward, backward, synchronize), overlap: %.3f ms, of which blocked in MPI %.3f ms "
                    "(%zu buckets, %zu of %zu reductions started during backward)\n",
                    label, m[1], m[3], dp_fast.num_buckets(), dp_fast.overlapped_reductions(),
                    dp_fast.overlapped_reductions() + dp_fast.synchronous_reductions());
    }
}

}  // namespace

int main(int argc, char** argv)
{
    tg::dist::World world(argc, argv);
    tg::set_num_threads(1);
    const bool root = world.rank() == 0;
    if (root) std::printf("ranks %d (on this machine %d)\n", world.size(), world.local_size());

    for (std::size_t n : {std::size_t{16384}, std::size_t{131072}, std::size_t{535818 + 7}, std::size_t{2097152},
                          std::size_t{8388608}}) {
        std::vector<float> buf(n, 1.0f);
        std::vector<double> times;
        for (int i = 0; i < 60; ++i) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = now_ms();
            MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            const double t1 = now_ms();
            if (i >= 10) times.push_back(t1 - t0);
        }
        double m = median(times);
        MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (root) {
            std::printf("allreduce %zu floats (%.2f MB): %.3f ms, %.2f GB/s of buffer\n", n, n * 4e-6, m, n * 4e-6 / m);
        }
    }

    data_parallel_steps(root, "main job MLP 784-512-256-10", {784, 512, 256, 10});
    data_parallel_steps(root, "deep MLP 256-1024-1024-1024-1024-10", {256, 1024, 1024, 1024, 1024, 10});

    // The backward of the main job's MLP (784-512-256-10) at batch 64 per rank: for each
    // layer, the weight gradient x^T g and the input gradient g W^T.
    tg::NoGradGuard no_grad;
    const std::size_t b = 64;
    const std::vector<std::size_t> widths = {784, 512, 256, 10};
    std::vector<tg::Var<float>> xs, gs, ws;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
        xs.push_back(tg::constant(xt::xarray<float>(xt::ones<float>({b, widths[l]}))));
        gs.push_back(tg::constant(xt::xarray<float>(xt::ones<float>({b, widths[l + 1]}))));
        ws.push_back(tg::constant(xt::xarray<float>(xt::ones<float>({widths[l], widths[l + 1]}))));
    }
    std::vector<float> grads(535818, 1.0f);
    auto backward_layer = [&](std::size_t l) {
        tg::Var<float> gw = tg::matmul(xs[l], gs[l], true, false);
        tg::Var<float> gx = tg::matmul(gs[l], ws[l], false, true);
        return gw.value()(0) + gx.value()(0);
    };
    float sink = 0;
    std::vector<double> compute, sequential, overlapped;
    for (int i = 0; i < 40; ++i) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now_ms();
        for (std::size_t l = widths.size() - 1; l-- > 0;) sink += backward_layer(l);
        double t1 = now_ms();
        MPI_Barrier(MPI_COMM_WORLD);
        double t2 = now_ms();
        for (std::size_t l = widths.size() - 1; l-- > 0;) sink += backward_layer(l);
        MPI_Allreduce(MPI_IN_PLACE, grads.data(), static_cast<int>(grads.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t3 = now_ms();
        MPI_Barrier(MPI_COMM_WORLD);
        double t4 = now_ms();
        MPI_Request request;
        int done = 0;
        // The best case for overlap: the whole buffer's reduction starts before any of the
        // backward's work, and MPI gets a chance to progress between every two gemms.
        MPI_Iallreduce(MPI_IN_PLACE, grads.data(), static_cast<int>(grads.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                       &request);
        for (std::size_t l = widths.size() - 1; l-- > 0;) {
            sink += backward_layer(l);
            MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        }
        MPI_Wait(&request, MPI_STATUS_IGNORE);
        double t5 = now_ms();
        if (i >= 10) {
            compute.push_back(t1 - t0);
            sequential.push_back(t3 - t2);
            overlapped.push_back(t5 - t4);
        }
    }
    double m[3] = {median(compute), median(sequential), median(overlapped)};
    MPI_Allreduce(MPI_IN_PLACE, m, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (root) {
        std::printf("backward gemms alone: %.3f ms\n", m[0]);
        std::printf("backward then allreduce: %.3f ms\n", m[1]);
        std::printf("backward overlapped with iallreduce: %.3f ms\n", m[2]);
    }
    if (sink == 12345.0f) std::printf(" ");
    return 0;
}
