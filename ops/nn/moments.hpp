#pragma once
// What batch_norm and layer_norm share: the mean and squared deviation of a contiguous block.

#include <algorithm>
#include <cstddef>

#include "tapegrad/kit.hpp"

namespace tg::normalization {

// The mean and sum of squared deviations of n > 0 contiguous values: a vectorised
// corrected two-pass in T (the block in L1 for the second pass), the deviation sum
// correcting the rounding of the first pass's mean, so a large common offset costs no
// precision.
template <class T> void moments(const T* p, std::size_t n, double& mean, double& m2)
{
    using B = kernel::batch<T>;
    constexpr std::size_t w = B::size;
    const T m = kernel::sum(n, p) / static_cast<T>(n);
    T d1 = 0, d2 = 0;
    std::size_t i = 0;
    if (n >= w) {
        const B mb(m);
        B a1(T(0)), a2(T(0));
        for (; i + w <= n; i += w) {
            const B d = B::load_unaligned(p + i) - mb;
            a1 += d;
            a2 += d * d;
        }
        d1 = xsimd::hadd(a1);
        d2 = xsimd::hadd(a2);
    }
    for (; i < n; ++i) {
        const T d = p[i] - m;
        d1 += d;
        d2 += d * d;
    }
    const double dn = static_cast<double>(n);
    mean = static_cast<double>(m) + static_cast<double>(d1) / dn;
    m2 = std::max(0.0, static_cast<double>(d2) - static_cast<double>(d1) * static_cast<double>(d1) / dn);
}

}  // namespace tg::normalization
