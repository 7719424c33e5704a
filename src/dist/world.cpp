// The MPI environment (tg::dist::World), the collectives on xarrays, and the ways a job
// ends when one rank fails. MPI's own answer to a rank that stops taking part is to let the
// others wait for ever in their next collective; every exit path here ends in either
// MPI_Finalize with all ranks present or MPI_Abort of the whole job.

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dist/internal.hpp"
#include "tapegrad/dist.hpp"

namespace tg::dist {
namespace {

// One World per process; these are read by the terminate and exit handlers, which have no
// World to ask.
struct State {
    bool alive = false;
    bool handlers_installed = false;
    int rank = 0;
    int size = 1;
    std::terminate_handler previous_terminate = nullptr;
    /// A copy of MPI_COMM_WORLD for the final barrier alone, so that it never matches a
    /// collective that another rank still has in flight on MPI_COMM_WORLD.
    MPI_Comm end_comm = MPI_COMM_NULL;
};
State state;

[[noreturn]] void abort_job(const std::string& message, int code)
{
    std::fflush(stdout);
    std::fprintf(stderr, "tg::dist: rank %d of %d: %s; aborting all ranks\n", state.rank, state.size, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this is for the compiler
}

// An exception left main (or a noexcept function) on this rank: the others cannot know,
// and would wait in their next collective, so the whole job ends here.
[[noreturn]] void on_terminate()
{
    if (state.alive) {
        std::string what = "terminate called without an active exception";
        if (std::exception_ptr e = std::current_exception()) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                what = std::string("uncaught exception: ") + x.what();
            } catch (...) {
                what = "uncaught exception of a type not derived from std::exception";
            }
        }
        abort_job(what, 1);
    }
    if (state.previous_terminate != nullptr) state.previous_terminate();
    std::abort();
}

// std::exit with the World still alive (a World in main is destroyed before exit handlers
// run; one made static is destroyed before this handler, which was registered earlier).
// glibc's on_exit hands the handler the status given to exit, which the job then ends with
// (1 for exit(0): a rank that leaves early is a failure of the job).
void exiting(int status, void*)
{
    if (state.alive) {
        abort_job("the process is exiting (std::exit, status " + std::to_string(status) +
                      ") while its tg::dist::World is alive",
                  status != 0 ? status : 1);
    }
}

}  // namespace

World::World(int& argc, char**& argv) : World(argc, argv, WorldOptions{}) {}

World::World(int& argc, char**& argv, WorldOptions options) : options_(options)
{
    int done = 0;
    MPI_Finalized(&done);
    if (done != 0) throw Error("World: MPI was finalised by an earlier World; MPI allows one World per process");
    MPI_Initialized(&done);
    if (done != 0) throw Error("World: MPI is already initialised in this process; make one World, at the top of main");
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error("World: MPI_Init_thread failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    MPI_Comm_dup(MPI_COMM_WORLD, &state.end_comm);
    state.alive = true;
    state.rank = rank_;
    state.size = size_;
    if (!state.handlers_installed) {
        state.previous_terminate = std::set_terminate(on_terminate);
        ::on_exit(exiting, nullptr);
        state.handlers_installed = true;
    }
}

World::~World()
{
    if (std::uncaught_exceptions() > 0) abort_job("an exception is unwinding through the tg::dist::World", 1);
    // Wait for every rank at a barrier, but not for ever: a rank that left main early (an
    // error it caught and returned on) would leave the others in a collective that never
    // completes, and MPI_Finalize would then wait for them in turn.
    MPI_Request request;
    MPI_Ibarrier(state.end_comm, &request);
    const auto start = std::chrono::steady_clock::now();
    int done = 0;
    for (;;) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (done != 0) break;
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited > options_.finalize_timeout) {
            char buf[160];
            std::snprintf(buf, sizeof buf,
                          "the other ranks did not all reach the end of the program within %g s (one failed, "
                          "or is still in a collective this rank skipped)",
                          options_.finalize_timeout);
            abort_job(buf, 1);
        }
        const timespec pause{0, 1000000};  // 1 ms
        nanosleep(&pause, nullptr);
    }
    state.alive = false;
    MPI_Finalize();
}

void World::abort(const std::string& message, int code) const
{
    abort_job(message, code);
}

bool initialized() noexcept
{
    return state.alive;
}

int rank()
{
    return state.rank;
}

int size()
{
    return state.size;
}

void abort(const std::string& message, int code)
{
    if (!state.alive) {
        std::fprintf(stderr, "tg::dist: %s\n", message.c_str());
        std::exit(code);
    }
    abort_job(message, code);
}

void barrier()
{
    detail::require_world("barrier");
    MPI_Barrier(MPI_COMM_WORLD);
}

namespace detail {

void require_world(const char* who)
{
    if (!state.alive) throw Error(std::string(who) + ": no tg::dist::World is alive (make one at the top of main)");
}

std::string bcast_string(const std::string& s, int root)
{
    std::uint64_t n = s.size();
    bcast(&n, 1, root);
    std::string out = state.rank == root ? s : std::string(n, '\0');
    bcast(out.data(), n, root);
    return out;
}

void agree(const std::string& error, std::uint64_t key)
{
    // The winner has the smallest key, then the lowest rank; no error is the largest key.
    constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t mine = error.empty() ? none : key;
    std::uint64_t best = mine;
    allreduce_in_place(&best, 1, MPI_MIN);
    if (best == none) return;
    std::uint64_t who = mine == best ? static_cast<std::uint64_t>(state.rank) : none;
    allreduce_in_place(&who, 1, MPI_MIN);
    throw Error(bcast_string(error, static_cast<int>(who)));
}

}  // namespace detail

namespace {

MPI_Op to_mpi(ReduceOp op)
{
    switch (op) {
    case ReduceOp::sum:
        return MPI_SUM;
    case ReduceOp::min:
        return MPI_MIN;
    case ReduceOp::max:
        return MPI_MAX;
    }
    return MPI_SUM;
}

const char* op_name(ReduceOp op)
{
    switch (op) {
    case ReduceOp::sum:
        return "sum";
    case ReduceOp::min:
        return "min";
    case ReduceOp::max:
        return "max";
    }
    return "?";
}

// Every rank's shape, for the message when they differ.
template <class Shape> std::string all_shapes(const Shape& shape)
{
    std::uint64_t rank = shape.size(), most = rank;
    detail::allreduce_in_place(&most, 1, MPI_MAX);
    std::vector<std::uint64_t> mine(most + 1, 0), all((most + 1) * static_cast<std::size_t>(state.size));
    mine[0] = rank;
    for (std::size_t k = 0; k < rank; ++k) mine[k + 1] = shape[k];
    MPI_Allgather(mine.data(), static_cast<int>(most + 1), MPI_UINT64_T, all.data(), static_cast<int>(most + 1),
                  MPI_UINT64_T, MPI_COMM_WORLD);
    std::string out;
    for (int r = 0; r < state.size; ++r) {
        const std::uint64_t* s = all.data() + static_cast<std::size_t>(r) * (most + 1);
        std::vector<std::uint64_t> dims(s + 1, s + 1 + s[0]);
        out += (r == 0 ? "rank " : ", rank ") + std::to_string(r) + " has " + format_shape(dims);
    }
    return out;
}

}  // namespace

template <class T> void all_reduce(xt::xarray<T>& x, ReduceOp op)
{
    detail::require_world("all_reduce");
    // First agree on the shape (one small reduction of a hash and its complement, giving
    // the smallest and the largest hash at once), so that a mismatch is an error on every
    // rank rather than a reduction of unrelated elements or a wait for ever.
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
    mix(x.dimension());
    for (auto d : x.shape()) mix(d);
    std::uint64_t both[2] = {h, ~h};
    detail::allreduce_in_place(both, 2, MPI_MIN);
    if (both[0] != ~both[1]) {
        throw Error(std::string("all_reduce: every rank must pass the same shape, but ") + all_shapes(x.shape()) +
                    " (op " + op_name(op) + ")");
    }
    detail::allreduce_in_place(x.data(), x.size(), to_mpi(op));
}

template <class T> void broadcast(xt::xarray<T>& x, int root)
{
    detail::require_world("broadcast");
    if (root < 0 || root >= state.size) {
        throw Error("broadcast: root " + std::to_string(root) + " is not a rank (there are " +
                    std::to_string(state.size) + ", 0 .. " + std::to_string(state.size - 1) + ")");
    }
    std::uint64_t rank = x.dimension();
    detail::bcast(&rank, 1, root);
    std::vector<std::uint64_t> dims(x.shape().begin(), x.shape().end());
    dims.resize(rank);
    detail::bcast(dims.data(), dims.size(), root);
    if (state.rank != root) {
        const typename xt::xarray<T>::shape_type shape(dims.begin(), dims.end());
        if (x.shape() != shape) x.resize(shape);
    }
    detail::bcast(x.data(), x.size(), root);
}

template void all_reduce<float>(xt::xarray<float>&, ReduceOp);
template void all_reduce<double>(xt::xarray<double>&, ReduceOp);
template void all_reduce<std::int64_t>(xt::xarray<std::int64_t>&, ReduceOp);
template void broadcast<float>(xt::xarray<float>&, int);
template void broadcast<double>(xt::xarray<double>&, int);
template void broadcast<std::int64_t>(xt::xarray<std::int64_t>&, int);

}  // namespace tg::dist
