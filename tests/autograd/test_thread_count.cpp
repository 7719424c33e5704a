// The default thread count follows the machine: beside a process that keeps a core busy it
// gives that core up; a count fixed by tg::set_num_threads stays; reset_num_threads returns
// to the default. (The test runner fixes the count for the other tests: catch_main.cpp.)

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tapegrad/tapegrad.hpp"

namespace {

int process_cpus()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return CPU_COUNT(&set);
}

// A child process that spins on one core until this object goes (or the test process dies).
class Spinner {
public:
    Spinner()
    {
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            volatile unsigned long n = 0;
            for (;;) n = n + 1;
        }
    }
    ~Spinner()
    {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Spinner(const Spinner&) = delete;
    Spinner& operator=(const Spinner&) = delete;
    bool running() const { return pid_ > 0; }

private:
    pid_t pid_ = -1;
};

// The smallest count get_num_threads reports over `seconds`, asked every 50 ms while this
// process sleeps (the load is sampled four times a second).
int lowest_count(double seconds)
{
    int lowest = tg::get_num_threads();
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        lowest = std::min(lowest, tg::get_num_threads());
    }
    return lowest;
}

}  // namespace

TEST_CASE("the default thread count gives a busy process its core; a fixed count stays", "[runtime][threads-count]")
{
    const int cpus = process_cpus();
    if (cpus < 2) {
        WARN("one CPU: there is no core to give up");
        return;
    }
    const int fixed_before = tg::get_num_threads();
    tg::reset_num_threads();
    CHECK(tg::get_num_threads() >= 1);
    CHECK(tg::get_num_threads() <= cpus);

    Spinner spinner;
    REQUIRE(spinner.running());
    // Other tests may run beside this one; the spinner alone keeps a whole core busy.
    CHECK(lowest_count(1.5) < cpus);

    // Fixed, the count is the one asked for whatever the load, and more than the CPUs is allowed.
    tg::set_num_threads(cpus);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    CHECK(tg::get_num_threads() == cpus);
    tg::set_num_threads(cpus + 1);
    CHECK(tg::get_num_threads() == cpus + 1);

    // Work still runs, and gives the same result, whatever the count chosen.
    tg::reset_num_threads();
    const xt::xarray<float> a = xt::ones<float>({64, 300}), b = xt::ones<float>({300, 256});
    const xt::xarray<float> shared = tg::matmul(tg::constant(a), tg::constant(b)).value();
    tg::set_num_threads(1);
    const xt::xarray<float> one = tg::matmul(tg::constant(a), tg::constant(b)).value();
    CHECK(shared == one);
    tg::set_num_threads(fixed_before);
}
