// tg::kernel::parallel_chunks: oneDNN's OpenMP threads for tapegrad's own kernels.

#include "tapegrad/kit/parallel.hpp"

#include "kernels/threads.hpp"

#ifdef TAPEGRAD_HAVE_DNNL
#include <dlfcn.h>
#endif

namespace tg::kernel {

#ifdef TAPEGRAD_HAVE_DNNL
namespace {

// libgomp is loaded with oneDNN; its entry points are looked up at run time (as
// conv_dnnl.cpp does for omp_set_num_threads), so tapegrad itself needs no OpenMP flags and
// shares oneDNN's thread pool rather than starting one of its own.
struct Gomp {
    using Parallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
    using Int = int (*)();
    Parallel parallel = nullptr;
    Int thread_num = nullptr, num_threads = nullptr, in_parallel = nullptr;
    Gomp()
    {
        parallel = reinterpret_cast<Parallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
        thread_num = reinterpret_cast<Int>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
        num_threads = reinterpret_cast<Int>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
        in_parallel = reinterpret_cast<Int>(dlsym(RTLD_DEFAULT, "omp_in_parallel"));
        if (!thread_num || !num_threads || !in_parallel) parallel = nullptr;
    }
};

const Gomp& gomp()
{
    static const Gomp g;
    return g;
}

struct Job {
    std::size_t n;
    void (*fn)(void*, std::size_t, std::size_t);
    void* ctx;
};

void run_chunk(void* p)
{
    const Job& job = *static_cast<const Job*>(p);
    const auto t = static_cast<std::size_t>(gomp().thread_num());
    const auto nt = static_cast<std::size_t>(gomp().num_threads());
    const std::size_t begin = job.n * t / nt, end = job.n * (t + 1) / nt;
    if (begin < end) job.fn(job.ctx, begin, end);
}

}  // namespace
#endif

void parallel_chunks(std::size_t n, std::size_t cost_per_item, void (*fn)(void*, std::size_t, std::size_t),
                     void* ctx) noexcept
{
    if (n == 0) return;
#ifdef TAPEGRAD_HAVE_DNNL
    const Gomp& g = gomp();
    if (n > 1 && g.parallel != nullptr && n * cost_per_item >= parallel_min_work && g.in_parallel() == 0) {
        const int nthreads = threads::enter();
        if (nthreads > 1) {
            Job job{n, fn, ctx};
            const auto use = static_cast<unsigned>(static_cast<std::size_t>(nthreads) < n ? nthreads : n);
            g.parallel(run_chunk, &job, use, 0);
            return;
        }
    }
#else
    (void)cost_per_item;
#endif
    fn(ctx, 0, n);
}

}  // namespace tg::kernel
