// DataParallel: the ranks' gradients averaged after each backward, in buckets.
//
// A bucket is one contiguous buffer: the gradients of a run of parameters (in reverse
// order, the order in which backward completes them), then one has-gradient flag per
// parameter, then the rank's weight (1, or its sample count). One in-place allreduce sums
// all three; each gradient is then the weighted sum divided by the summed weight, and a
// parameter whose flags sum to 0 had a gradient on no rank and is left without one.

#include <algorithm>
#include <chrono>

#include "dist/internal.hpp"
#include "tapegrad/dist.hpp"

namespace tg::dist {
namespace {

using Clock = std::chrono::steady_clock;

template <class T> const char* type_name();
template <> const char* type_name<float>()
{
    return "float32";
}
template <> const char* type_name<double>()
{
    return "float64";
}

template <class T> std::string describe(const std::string& name, const Var<T>& p)
{
    return "'" + name + "' " + format_shape(p.shape()) + " " + type_name<T>();
}

// Rank 0's list against this rank's: the first difference, as a message and an index.
std::pair<std::string, std::uint64_t> first_difference(const std::vector<std::string>& mine,
                                                       const std::vector<std::string>& root, int rank)
{
    const std::size_t common = std::min(mine.size(), root.size());
    for (std::size_t k = 0; k < common; ++k) {
        if (mine[k] != root[k]) {
            return {"DataParallel: the ranks' models differ at parameter " + std::to_string(k) + ": rank 0 has " +
                        root[k] + ", rank " + std::to_string(rank) + " has " + mine[k],
                    k};
        }
    }
    if (mine.size() != root.size()) {
        const bool root_longer = root.size() > mine.size();
        const std::string extra = root_longer ? root[common] : mine[common];
        return {"DataParallel: the ranks' models differ: rank 0 has " + std::to_string(root.size()) +
                    " parameters, rank " + std::to_string(rank) + " has " + std::to_string(mine.size()) +
                    "; the first without a counterpart is parameter " + std::to_string(common) + ", " + extra +
                    " on rank " + (root_longer ? std::string("0") : std::to_string(rank)),
                common};
    }
    return {"", 0};
}

std::string join(const std::vector<std::string>& lines)
{
    std::string out;
    for (const auto& l : lines) out += l + '\n';
    return out;
}

std::vector<std::string> split(const std::string& text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') {
            out.push_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

}  // namespace

template <class T>
DataParallel<T>::DataParallel(const std::vector<std::pair<std::string, Var<T>>>& named_params,
                              DataParallelOptions options)
{
    detail::require_world("DataParallel");
    const int me = rank();
    // Local problems first, agreed on by all ranks, so that no rank throws alone and leaves
    // the others in the next collective.
    std::string local;
    std::vector<std::string> mine;
    for (std::size_t k = 0; k < named_params.size(); ++k) {
        const auto& [name, p] = named_params[k];
        if (!p.defined() || !p.is_leaf() || !p.requires_grad()) {
            local = "DataParallel: parameter " + std::to_string(k) + " ('" + name + "') on rank " + std::to_string(me) +
                    " is " +
                    (!p.defined()   ? "undefined"
                     : !p.is_leaf() ? "not a leaf"
                                    : "a constant (no gradient)") +
                    "; pass the model's named_parameters()";
            break;
        }
        if (name.find('\n') != std::string::npos) {
            local = "DataParallel: parameter " + std::to_string(k) + " has a line break in its name";
            break;
        }
        mine.push_back(describe(name, p));
    }
    detail::agree(local);

    const std::vector<std::string> root = split(detail::bcast_string(join(mine), 0));
    const auto [message, index] = first_difference(mine, root, me);
    detail::agree(message, index);

    for (const auto& np : named_params) params_.push_back(np.second);
    if (options.broadcast_parameters) {
        for (const Var<T>& p : params_) {
            xt::xarray<T>& v = p.mutable_value();
            detail::bcast(v.data(), v.size(), 0);
        }
    }

    // Buckets in reverse parameter order: backward finishes the last layer's gradients first.
    const std::size_t limit = std::max<std::size_t>(1, options.bucket_bytes / sizeof(T));
    std::size_t filled = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {
        const std::size_t n = params_[k].size();
        if (buckets_.empty() || (filled > 0 && filled + n > limit)) {
            buckets_.emplace_back();
            filled = 0;
        }
        buckets_.back().params.push_back(k);
        filled += n;
    }
    for (Bucket& b : buckets_) {
        std::size_t n = 0;
        for (std::size_t k : b.params) n += params_[k].size();
        b.buffer.assign(n + b.params.size() + 1, T(0));
    }
}

template <class T> void DataParallel<T>::synchronize()
{
    run(T(1));
}

template <class T> void DataParallel<T>::synchronize(std::size_t local_samples)
{
    run(static_cast<T>(local_samples));
}

template <class T> void DataParallel<T>::run(T weight)
{
    detail::require_world("DataParallel::synchronize");
    for (Bucket& b : buckets_) {
        auto t0 = Clock::now();
        T* out = b.buffer.data();
        T* flags = out + (b.buffer.size() - b.params.size() - 1);
        for (std::size_t j = 0; j < b.params.size(); ++j) {
            const Var<T>& p = params_[b.params[j]];
            const std::size_t n = p.size();
            const bool has = weight != T(0) && p.has_grad();
            if (has) {
                const T* g = p.grad().data();
                if (weight == T(1)) {
                    std::copy_n(g, n, out);
                } else {
                    for (std::size_t i = 0; i < n; ++i) out[i] = g[i] * weight;
                }
            } else {
                std::fill_n(out, n, T(0));
            }
            flags[j] = has ? T(1) : T(0);
            out += n;
        }
        b.buffer.back() = weight;
        auto t1 = Clock::now();
        detail::allreduce_in_place(b.buffer.data(), b.buffer.size(), MPI_SUM);
        auto t2 = Clock::now();
        const T total = b.buffer.back();
        const T* in = b.buffer.data();
        for (std::size_t j = 0; j < b.params.size(); ++j) {
            const Var<T>& p = params_[b.params[j]];
            const std::size_t n = p.size();
            if (flags[j] != T(0) && total != T(0)) {
                ::tg::detail::Node<T>* node = p.raw_node();
                if (node->grad.size() != n || node->grad.shape() != node->value.shape())
                    node->grad.resize(node->value.shape());
                T* g = node->grad.data();
                // A division, not a multiplication by 1 / total: exact for one rank, and the
                // closest to one process's mean for any count.
                for (std::size_t i = 0; i < n; ++i) g[i] = in[i] / total;
                node->has_grad = true;
                node->grad_var.reset();
            }
            in += n;
        }
        auto t3 = Clock::now();
        comm_seconds_ += std::chrono::duration<double>(t2 - t1).count();
        copy_seconds_ += std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count();
    }
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace tg::dist
