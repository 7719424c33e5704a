#pragma once
// Data shared by the tapegrad and libtorch benchmarks, so both run the same workloads.

#include <array>
#include <cstdint>
#include <random>
#include <vector>

namespace bench {

/// The tutorial's 10 rows and classes (W1).
inline const std::array<std::array<float, 2>, 10> seed_rows{{{2.7810836f, 2.550537003f},
                                                             {1.465489372f, 2.362125076f},
                                                             {3.396561688f, 4.400293529f},
                                                             {1.38807019f, 1.850220317f},
                                                             {3.06407232f, 3.005305973f},
                                                             {7.627531214f, 2.759262235f},
                                                             {5.332441248f, 2.088626775f},
                                                             {6.922596716f, 1.77106367f},
                                                             {8.675418651f, -0.242068655f},
                                                             {7.673756466f, 3.508563011f}}};
inline const std::array<int, 10> seed_classes{0, 0, 0, 0, 0, 1, 1, 1, 1, 1};

/// W1 initial weights: w1 [2, 3], b1 [3], w2 [3, 2], b2 [2], uniform [0, 1) from seed 1.
struct SeedWeights {
    std::vector<float> w1, b1, w2, b2;
};
inline SeedWeights seed_weights()
{
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    auto draw = [&](int n) {
        std::vector<float> v(n);
        for (auto& x : v) x = u(rng);
        return v;
    };
    SeedWeights w;
    w.w1 = draw(6);
    w.b1 = draw(3);
    w.w2 = draw(6);
    w.b2 = draw(2);
    return w;
}

/// Number of ops in the W3 chain.
inline constexpr int chain_length = 1000;

/// W2: MLP 784-256-256-10, batch 128.
inline constexpr int mlp_batch = 128;
inline constexpr std::array<int, 4> mlp_sizes{784, 256, 256, 10};

inline std::vector<float> uniform_values(std::size_t n, float lo, float hi, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

inline std::vector<std::int64_t> labels(std::size_t n, int classes, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> u(0, classes - 1);
    std::vector<std::int64_t> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

}  // namespace bench
