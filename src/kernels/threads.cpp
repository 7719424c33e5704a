// The thread count of multi-threaded work, fixed by tg::set_num_threads or following the
// machine's load (see threads.hpp), and the public functions of tapegrad/runtime.hpp that
// set and read it.

#include "kernels/threads.hpp"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#ifdef TAPEGRAD_HAVE_DNNL
#include <dlfcn.h>
#endif

#include "tapegrad/runtime.hpp"

extern "C" {
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
}

namespace tg::threads {
namespace {

// How often the machine's load is sampled, in nanoseconds.
constexpr long long sample_period_ns = 250'000'000;

long long now_ns() noexcept
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// CPU time of this process, in seconds: all of its threads, OpenMP's and OpenBLAS's included.
double self_seconds() noexcept
{
    timespec t{};
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return 0.0;
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Omp {
    using Set = void (*)(int);
    using Get = int (*)();
    Set set = nullptr;
    Get get = nullptr;
    Omp()
    {
#ifdef TAPEGRAD_HAVE_DNNL
        // libgomp comes with oneDNN; looked up at run time, so tapegrad needs no OpenMP flags.
        set = reinterpret_cast<Set>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
        get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
        if (set == nullptr || get == nullptr) set = nullptr, get = nullptr;
#endif
    }
};

struct State {
    Omp omp;
    std::vector<int> mask;  // the CPUs this process may run on
    int cpus = 1;
    int cap = 1;  // the libraries' own count when the process started
    double seconds_per_tick = 0.01;
    std::atomic<int> fixed{0};  // set_num_threads; 0: follow the machine
    std::atomic<int> automatic{1};
    std::atomic<int> blas_applied{0};
    std::atomic<long long> next_sample{0};
    std::mutex sampling;
    bool have_sample = false;  // guarded by `sampling`, as are the three below
    double last_busy = 0, last_self = 0;
    long long last_wall = 0;

    State()
    {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) {
            for (int c = 0; c < CPU_SETSIZE; ++c)
                if (CPU_ISSET(c, &set)) mask.push_back(c);
        }
        cpus = std::max(1, static_cast<int>(mask.size()));
        // OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (which OpenBLAS reads first) cap it.
        cap = openblas_get_num_threads();
        if (omp.get != nullptr) cap = std::min(cap, omp.get());
        cap = std::max(1, cap);
        automatic.store(cap);
        const long ticks = sysconf(_SC_CLK_TCK);
        if (ticks > 0) seconds_per_tick = 1.0 / static_cast<double>(ticks);
    }

    // Busy time of the CPUs in `mask` since boot, in seconds (user, nice, system, irq and
    // softirq; idle, iowait and the hypervisor's steal are not busy); false if /proc/stat
    // cannot be read.
    bool busy_seconds(double& busy) const noexcept
    {
        std::FILE* f = std::fopen("/proc/stat", "re");
        if (f == nullptr) return false;
        char line[512];
        unsigned long long sum = 0;
        bool any = false;
        while (std::fgets(line, sizeof line, f) != nullptr) {
            if (std::strncmp(line, "cpu", 3) != 0) break;  // the per-CPU lines come first
            int cpu = -1;
            unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
            if (std::sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice, &system, &idle,
                            &iowait, &irq, &softirq) != 8)
                continue;  // the "cpu " total line
            if (!std::binary_search(mask.begin(), mask.end(), cpu)) continue;
            sum += user + nice + system + irq + softirq;
            any = true;
        }
        std::fclose(f);
        busy = static_cast<double>(sum) * seconds_per_tick;
        return any;
    }

    // Takes a sample when one is due and updates the automatic count.
    void update(long long wall) noexcept
    {
        std::unique_lock<std::mutex> lock(sampling, std::try_to_lock);
        if (!lock.owns_lock()) return;  // another thread is sampling
        if (wall < next_sample.load(std::memory_order_relaxed)) return;
        next_sample.store(wall + sample_period_ns, std::memory_order_relaxed);
        double busy = 0;
        if (!busy_seconds(busy)) {
            automatic.store(cap, std::memory_order_relaxed);
            return;
        }
        const double self = self_seconds();
        if (have_sample && wall > last_wall) {
            const double span = 1e-9 * static_cast<double>(wall - last_wall);
            const double others = std::max(0.0, (busy - last_busy) - (self - last_self)) / span;
            automatic.store(choose(cap, cpus, others, automatic.load(std::memory_order_relaxed)),
                            std::memory_order_relaxed);
        }
        have_sample = true;
        last_busy = busy, last_self = self, last_wall = wall;
    }
};

State& state() noexcept
{
    static State s;
    return s;
}

}  // namespace

int choose(int cap, int cpus, double others, int now) noexcept
{
    const int down = cpus - static_cast<int>(std::floor(others + 0.45));
    const int up = cpus - static_cast<int>(std::floor(others + 0.65));
    int n = now;
    if (n > down) n = down;
    if (n < up) n = up;
    return std::clamp(n, 1, std::max(1, cap));
}

int current() noexcept
{
    State& s = state();
    const int fixed = s.fixed.load(std::memory_order_relaxed);
    if (fixed > 0) return fixed;
    const long long wall = now_ns();
    if (wall >= s.next_sample.load(std::memory_order_relaxed)) s.update(wall);
    return s.automatic.load(std::memory_order_relaxed);
}

void set_openmp(int n) noexcept
{
    const State& s = state();
    if (s.omp.set != nullptr) s.omp.set(n);
}

int enter() noexcept
{
    State& s = state();
    const int n = current();
    thread_local int omp_applied = 0;
    if (omp_applied != n && s.omp.set != nullptr) {
        s.omp.set(n);
        omp_applied = n;
    }
    if (s.blas_applied.load(std::memory_order_relaxed) != n && s.blas_applied.exchange(n) != n)
        openblas_set_num_threads(n);
    return n;
}

}  // namespace tg::threads

namespace tg {

void set_num_threads(int n)
{
    if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
    threads::state().fixed.store(n);
    threads::enter();
}

void reset_num_threads()
{
    threads::state().fixed.store(0);
    threads::enter();
}

int get_num_threads()
{
    return threads::current();
}

}  // namespace tg
