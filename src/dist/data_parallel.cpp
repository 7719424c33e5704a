// DataParallel: the ranks' gradients averaged after each backward, in buckets.
//
// A bucket is one contiguous buffer: the gradients of a run of parameters (in reverse
// order, the order in which backward completes them), then one has-gradient flag per
// parameter, then the rank's weight (1, or its sample count). One in-place allreduce sums
// all three; each gradient is then the weighted sum divided by the summed weight, and a
// parameter whose flags sum to 0 had a gradient on no rank and is left without one.

#include <algorithm>
#include <chrono>
#include <thread>

#include "dist/internal.hpp"
#include "tapegrad/dist.hpp"
#include "tapegrad/hooks.hpp"

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

template <class T> struct DataParallel<T>::Overlap {
    std::vector<HookHandle> hooks;
    std::thread::id thread;              // the thread that calls MPI
    std::vector<std::size_t> bucket_of;  // per parameter
    std::vector<char> fired;             // per parameter: its hook ran this step
    std::vector<std::size_t> pending;    // per bucket: parameters whose hook has not run
    std::vector<char> started;           // per bucket: its reduction was started this step
    std::vector<MPI_Request> requests;   // per bucket
    MPI_Comm comm = MPI_COMM_NULL;       // the reductions' own communicator (see the constructor)
    std::size_t next = 0;                // the next bucket to start
    bool stale = false;                  // a gradient changed after its bucket started
    bool record = true;                  // the first step records the order of readiness
    std::vector<std::size_t> ready_order;

    void reset(const std::vector<Bucket>& buckets)
    {
        bucket_of.assign(fired.size(), 0);
        pending.assign(buckets.size(), 0);
        for (std::size_t b = 0; b < buckets.size(); ++b) {
            for (std::size_t k : buckets[b].params) bucket_of[k] = b;
            pending[b] = buckets[b].params.size();
        }
        std::fill(fired.begin(), fired.end(), 0);
        started.assign(buckets.size(), 0);
        requests.assign(buckets.size(), MPI_REQUEST_NULL);
        next = 0;
        stale = false;
    }
};

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

    // Buckets in reverse parameter order to begin with: backward usually finishes the last
    // layer's gradients first. With overlap, the first synchronize rebuilds them in the
    // order the gradients really became ready.
    bucket_bytes_ = options.bucket_bytes;
    std::vector<std::size_t> order(params_.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = order.size() - 1 - k;
    make_buckets(order, bucket_bytes_);

    bool overlap = options.overlap;
    for (const Bucket& b : buckets_) overlap = overlap && b.buffer.size() <= detail::kMaxCount;
    if (overlap) {
        overlap_ = std::make_unique<Overlap>();
        overlap_->thread = std::this_thread::get_id();
        // Reductions started during backward are in flight while the program may call
        // other collectives (a rank with no rows skips backward and goes straight on): on
        // a communicator of their own they can only ever match each other.
        MPI_Comm_dup(MPI_COMM_WORLD, &overlap_->comm);
        overlap_->fired.assign(params_.size(), 0);
        for (std::size_t k = 0; k < params_.size(); ++k) {
            overlap_->hooks.push_back(
                register_post_accumulate_grad_hook<T>(params_[k], [this, k](const Var<T>&) { ready(k); }));
        }
        overlap_->reset(buckets_);
    }
}

template <class T> DataParallel<T>::~DataParallel()
{
    if (!overlap_) return;
    for (HookHandle& h : overlap_->hooks) h.remove();
    bool in_flight = false;
    for (const MPI_Request& r : overlap_->requests) in_flight = in_flight || r != MPI_REQUEST_NULL;
    // MPI still writes into the buffers of reductions in flight: they outlive this object.
    if (in_flight) {
        // NOLINTNEXTLINE(bugprone-unhandled-exception-at-new): in a destructor; out of memory ends the program
        static auto* orphans = new std::vector<std::vector<Bucket>>;
        orphans->push_back(std::move(buckets_));
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0 && !in_flight) MPI_Comm_free(&overlap_->comm);
}

template <class T> void DataParallel<T>::make_buckets(const std::vector<std::size_t>& order, std::size_t bucket_bytes)
{
    buckets_.clear();
    const std::size_t limit = std::max<std::size_t>(1, bucket_bytes / sizeof(T));
    std::size_t filled = 0;
    for (std::size_t k : order) {
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
    detail::require_world("DataParallel::synchronize");
    overlap_ ? overlapped_synchronize(T(1)) : run(T(1));
}

template <class T> void DataParallel<T>::synchronize(std::size_t local_samples)
{
    detail::require_world("DataParallel::synchronize");
    overlap_ ? overlapped_synchronize(static_cast<T>(local_samples)) : run(static_cast<T>(local_samples));
}

// The gradients (times the weight), a has-gradient flag per parameter and the weight.
template <class T> void DataParallel<T>::pack(Bucket& b, T weight)
{
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
}

// Each gradient becomes the reduced sum over the reduced weight.
template <class T> void DataParallel<T>::unpack(Bucket& b)
{
    const T total = b.buffer.back();
    const T* flags = b.buffer.data() + (b.buffer.size() - b.params.size() - 1);
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
}

// Without overlap: every bucket packed, reduced and unpacked in turn.
template <class T> void DataParallel<T>::run(T weight)
{
    for (Bucket& b : buckets_) {
        auto t0 = Clock::now();
        pack(b, weight);
        auto t1 = Clock::now();
        detail::allreduce_in_place(b.buffer.data(), b.buffer.size(), MPI_SUM);
        auto t2 = Clock::now();
        unpack(b);
        auto t3 = Clock::now();
        ++synchronous_;
        comm_seconds_ += std::chrono::duration<double>(t2 - t1).count();
        copy_seconds_ += std::chrono::duration<double>((t1 - t0) + (t3 - t2)).count();
    }
}

// A parameter's gradient is complete (its hook): when that completes a bucket, start the
// reductions of every complete bucket not yet started, in bucket order (so that all ranks
// start the same reductions in the same order, whatever order their hooks ran in); then
// let MPI progress the reductions in flight.
template <class T> void DataParallel<T>::ready(std::size_t param)
{
    Overlap& o = *overlap_;
    if (std::this_thread::get_id() != o.thread) return;  // MPI is called from one thread: synchronize does it
    if (o.record) o.ready_order.push_back(param);
    const std::size_t b = o.bucket_of[param];
    if (o.started[b]) {
        o.stale = true;  // a second backward before synchronize: reduce this bucket again
        return;
    }
    if (!o.fired[param]) {
        o.fired[param] = 1;
        --o.pending[b];
    }
    auto t0 = Clock::now();
    while (o.next < buckets_.size() && o.pending[o.next] == 0) {
        ++overlapped_;
        launch(o.next++);
    }
    for (MPI_Request& r : o.requests) {
        if (r == MPI_REQUEST_NULL) continue;
        int done = 0;
        MPI_Test(&r, &done, MPI_STATUS_IGNORE);
    }
    comm_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

// Packs bucket b (weight 1) and starts its reduction.
template <class T> void DataParallel<T>::launch(std::size_t b)
{
    Overlap& o = *overlap_;
    auto t0 = Clock::now();
    pack(buckets_[b], T(1));
    copy_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<T>& buffer = buckets_[b].buffer;
    MPI_Iallreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), detail::mpi_type<T>(), MPI_SUM, o.comm,
                   &o.requests[b]);
    o.started[b] = 1;
}

template <class T> void DataParallel<T>::overlapped_synchronize(T weight)
{
    Overlap& o = *overlap_;
    if (std::this_thread::get_id() != o.thread) {
        throw Error("DataParallel::synchronize: called from another thread than the one that constructed it (MPI "
                    "is called from one thread)");
    }
    auto t0 = Clock::now();
    double copy = 0;
    while (o.next < buckets_.size()) {
        auto c0 = Clock::now();
        launch(o.next++);
        ++synchronous_;
        copy += std::chrono::duration<double>(Clock::now() - c0).count();
    }
    MPI_Waitall(static_cast<int>(o.requests.size()), o.requests.data(), MPI_STATUSES_IGNORE);
    // The overlapped reductions summed unweighted gradients. That is the weighted mean
    // when every rank has the same positive weight and no gradient changed after its
    // bucket started; otherwise all ranks redo the reduction with weights.
    double check[3] = {static_cast<double>(weight), -static_cast<double>(weight), o.stale ? 1.0 : 0.0};
    MPI_Allreduce(MPI_IN_PLACE, check, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    comm_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count() - copy;
    copy_seconds_ += copy;
    const bool equal = check[0] == -check[1] && check[0] > 0;
    if (equal && check[2] == 0) {
        auto u0 = Clock::now();
        for (Bucket& b : buckets_) unpack(b);
        copy_seconds_ += std::chrono::duration<double>(Clock::now() - u0).count();
    } else {
        run(weight);
    }
    if (o.record) {
        // Rebuild the buckets in the order rank 0's gradients became ready this step
        // (parameters it never saw ready last, in reverse order), the same on every rank.
        std::vector<std::uint64_t> order;
        std::vector<char> seen(params_.size(), 0);
        for (std::size_t k : o.ready_order) {
            if (!seen[k]) order.push_back(k);
            seen[k] = 1;
        }
        for (std::size_t k = params_.size(); k-- > 0;) {
            if (!seen[k]) order.push_back(k);
        }
        detail::bcast(order.data(), order.size(), 0);
        make_buckets(std::vector<std::size_t>(order.begin(), order.end()), bucket_bytes_);
        o.record = false;
        o.ready_order.clear();
    }
    o.reset(buckets_);
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace tg::dist
