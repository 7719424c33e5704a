#pragma once
// A per-epoch progress bar for a terminal, and plain lines elsewhere.

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace fashion {

class Progress {
public:
    /// `live`: redraw a bar in place (stdout is a terminal and --quiet was not given).
    explicit Progress(bool live) : live_(live) {}

    void start(int epoch, int epochs, std::size_t steps)
    {
        epoch_ = epoch;
        epochs_ = epochs;
        steps_ = steps;
        begin_ = std::chrono::steady_clock::now();
        last_draw_ = begin_ - std::chrono::seconds(1);
    }

    /// After step `done` (1-based) with `samples` seen so far and the running means.
    void update(std::size_t done, std::size_t samples, double loss, double accuracy)
    {
        if (!live_) return;
        const auto now = std::chrono::steady_clock::now();
        if (done < steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        const double elapsed = std::chrono::duration<double>(now - begin_).count();
        const double rate = elapsed > 0 ? samples / elapsed : 0;
        const double eta = done > 0 ? elapsed * static_cast<double>(steps_ - done) / static_cast<double>(done) : 0;
        const int width = 24;
        const int filled = static_cast<int>(width * done / (steps_ ? steps_ : 1));
        std::string bar(static_cast<std::size_t>(filled), '=');
        if (filled < width) bar += '>';
        bar.resize(width, ' ');
        std::printf("\r\033[Kepoch %d/%d [%s] %zu/%zu  %.0f samples/s  loss %.4f  acc %.2f%%  ETA %.1fs", epoch_,
                    epochs_, bar.c_str(), done, steps_, rate, loss, 100 * accuracy, eta);
        std::fflush(stdout);
    }

    /// Clears the bar before the epoch's summary line.
    void finish()
    {
        if (!live_) return;
        std::printf("\r\033[K");
        std::fflush(stdout);
    }

private:
    bool live_;
    int epoch_ = 0, epochs_ = 0;
    std::size_t steps_ = 0;
    std::chrono::steady_clock::time_point begin_, last_draw_;
};

}  // namespace fashion
