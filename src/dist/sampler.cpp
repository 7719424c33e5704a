// DistributedSampler: each rank's share of an epoch's permutation, strided so that the
// ranks' batches i together are exactly global batch i of one process.

#include <algorithm>
#include <numeric>

#include "tapegrad/data.hpp"
#include "tapegrad/dist.hpp"

namespace tg::dist {
DistributedSampler::DistributedSampler(std::size_t dataset_size, std::size_t batch_size, int num_replicas, int rank,
                                       SamplerOptions options)
    : n_(dataset_size), batch_size_(batch_size), replicas_(num_replicas), rank_(rank), options_(options)
{
    if (batch_size == 0) throw Error("DistributedSampler: batch_size must be positive");
    if (num_replicas < 1)
        throw Error("DistributedSampler: num_replicas must be at least 1, got " + std::to_string(num_replicas));
    if (rank < 0 || rank >= num_replicas) {
        throw Error("DistributedSampler: rank " + std::to_string(rank) + " is out of range for " +
                    std::to_string(num_replicas) + " replicas");
    }
    if (options.drop_last && n_ < batch_size * static_cast<std::size_t>(num_replicas)) {
        throw Error("DistributedSampler: drop_last leaves no batch: " + std::to_string(num_replicas) + " x " +
                    std::to_string(batch_size) + " rows per global batch, " + std::to_string(n_) + " rows");
    }
    set_epoch(0);
}

void DistributedSampler::set_epoch(std::uint64_t epoch)
{
    epoch_ = epoch;
    // DataLoader's order for the same (seed, epoch), so that a distributed run and a
    // one-process run see the same global batches (the test suite checks the two).
    const std::vector<std::size_t> order = data::epoch_order(n_, options_.shuffle, options_.seed, epoch);
    const auto r = static_cast<std::size_t>(rank_), stride = static_cast<std::size_t>(replicas_);
    shard_.clear();
    for (std::size_t k = r; k < n_; k += stride) shard_.push_back(order[k]);
}

std::vector<std::size_t> DistributedSampler::epoch_indices(std::size_t size, std::uint64_t epoch)
{
    if (size != n_) {
        throw Error("DistributedSampler: the loader's data set has " + std::to_string(size) +
                    " examples, the sampler was made for " + std::to_string(n_));
    }
    set_epoch(epoch);
    return shard_;
}

std::size_t DistributedSampler::num_batches() const noexcept
{
    const std::size_t global = batch_size_ * static_cast<std::size_t>(replicas_);
    return n_ / global + (!options_.drop_last && n_ % global != 0 ? 1 : 0);
}

std::pair<std::size_t, std::size_t> DistributedSampler::batch_range(std::size_t i) const
{
    if (i >= num_batches()) {
        throw Error("DistributedSampler: batch " + std::to_string(i) + " is out of range for " +
                    std::to_string(num_batches()) + " batches");
    }
    const std::size_t first = std::min(i * batch_size_, shard_.size());
    return {first, std::min(first + batch_size_, shard_.size())};
}

std::size_t DistributedSampler::global_batch_rows(std::size_t i) const
{
    const std::size_t global = batch_size_ * static_cast<std::size_t>(replicas_);
    if (i >= num_batches()) {
        throw Error("DistributedSampler: batch " + std::to_string(i) + " is out of range for " +
                    std::to_string(num_batches()) + " batches");
    }
    return std::min(global, n_ - i * global);
}

template <class T>
void DistributedSampler::fill(const data::Dataset<T>& data, std::size_t i, xt::xarray<T>& features,
                              xt::xarray<std::int64_t>& labels) const
{
    if (data.size() != n_) {
        throw Error("DistributedSampler::fill: the sampler is for " + std::to_string(n_) +
                    " rows but the data set has " + std::to_string(data.size()));
    }
    const auto [first, last] = batch_range(i);
    const std::size_t rows = last - first, d = data.num_features();
    if (features.dimension() != 2 || features.shape()[0] != rows || features.shape()[1] != d)
        features.resize({rows, d});
    if (labels.dimension() != 1 || labels.shape()[0] != rows) labels.resize({rows});
    const T* src = data.features().data();
    const std::int64_t* lab = data.labels().data();
    for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t row = shard_[first + r];
        std::copy_n(src + row * d, d, features.data() + r * d);
        labels.data()[r] = lab[row];
    }
}

template void DistributedSampler::fill<float>(const data::Dataset<float>&, std::size_t, xt::xarray<float>&,
                                              xt::xarray<std::int64_t>&) const;
template void DistributedSampler::fill<double>(const data::Dataset<double>&, std::size_t, xt::xarray<double>&,
                                               xt::xarray<std::int64_t>&) const;

}  // namespace tg::dist
