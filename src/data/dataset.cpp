// tg::data datasets: pixel statistics and Normalize for building features, and Dataset
// (checked construction, subsets).

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <sstream>

#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"

namespace tg::data {

namespace {

std::string number(double v)
{
    std::ostringstream s;
    s << v;
    return s.str();
}

}  // namespace

std::pair<double, double> pixel_mean_std(const Idx& images)
{
    const std::size_t n = images.data.size();
    if (n == 0) throw Error("pixel_mean_std: no pixels (dimensions " + format_shape(images.shape) + ")");
    // A histogram makes both passes cost 256 steps and keeps the sums exact.
    std::array<std::uint64_t, 256> counts{};
    for (const std::uint8_t b : images.data) ++counts[b];
    std::uint64_t sum = 0;
    for (std::size_t v = 0; v < counts.size(); ++v) sum += counts[v] * v;
    const double mean = static_cast<double>(sum) / (255.0 * static_cast<double>(n));
    double squares = 0.0;
    for (std::size_t v = 0; v < counts.size(); ++v) {
        const double d = static_cast<double>(v) / 255.0 - mean;
        squares += static_cast<double>(counts[v]) * d * d;
    }
    return {mean, std::sqrt(squares / static_cast<double>(n))};
}

Normalize Normalize::standardize(double mean_value, double std_value)
{
    if (!std::isfinite(mean_value))
        throw Error("Normalize::standardize: mean must be finite, got " + number(mean_value));
    if (!(std_value > 0.0) || !std::isfinite(std_value))
        throw Error("Normalize::standardize: std must be positive and finite, got " + number(std_value));
    return {Kind::standardize, mean_value, std_value};
}

template <class T>
Dataset<T>::Dataset(xt::xarray<T> features, xt::xarray<std::int64_t> labels)
    : features_(std::move(features)), labels_(std::move(labels))
{
    if (features_.dimension() != 2)
        throw Error("Dataset: features must be [N, D], got " + format_shape(features_.shape()));
    if (labels_.dimension() != 1) throw Error("Dataset: labels must be [N], got " + format_shape(labels_.shape()));
    if (labels_.size() != features_.shape()[0])
        throw Error("Dataset: " + std::to_string(features_.shape()[0]) + " rows of features but " +
                    std::to_string(labels_.size()) + " labels (features " + format_shape(features_.shape()) +
                    ", labels " + format_shape(labels_.shape()) + ")");
    if (labels_.size() == 0) throw Error("Dataset: empty data set (features " + format_shape(features_.shape()) + ")");
    std::int64_t largest = 0;
    for (std::size_t i = 0; i < labels_.size(); ++i) {
        const std::int64_t label = labels_.data()[i];
        if (label < 0)
            throw Error("Dataset: labels must be non-negative, found " + std::to_string(label) + " at row " +
                        std::to_string(i));
        largest = std::max(largest, label);
    }
    num_classes_ = largest + 1;
}

template <class T> Dataset<T> Dataset<T>::subset(std::size_t first, std::size_t count) const
{
    const std::size_t n = size();
    if (count == 0) throw Error("Dataset::subset: count must be positive (first " + std::to_string(first) + ")");
    if (first > n || count > n - first) {
        const std::string end = count <= std::numeric_limits<std::size_t>::max() - first
                                    ? std::to_string(first + count)
                                    : std::to_string(first) + " + " + std::to_string(count);
        throw Error("Dataset::subset: rows [" + std::to_string(first) + ", " + end + ") run past the " +
                    std::to_string(n) + " rows of the data set");
    }
    const std::size_t d = num_features();
    xt::xarray<T> features = xt::xarray<T>::from_shape({count, d});
    xt::xarray<std::int64_t> labels = xt::xarray<std::int64_t>::from_shape({count});
    std::copy_n(features_.data() + first * d, count * d, features.data());
    std::copy_n(labels_.data() + first, count, labels.data());
    return Dataset(std::move(features), std::move(labels));
}

template class Dataset<float>;
template class Dataset<double>;

}  // namespace tg::data
