// tg::data::StreamingLoader: batches of a MapDataset, stacked on worker threads.
//
// One epoch is a StreamingRun: the sampler's indices cut into batches; worker w loads
// batches w, w + N, w + 2N, ... and may run at most `prefetch` batches ahead of the one the
// iterator consumes (a window of N * prefetch batches), so memory is bounded and the order
// of the batches is the order without workers. A failed batch carries its error to the
// iterator, which throws it when it reaches that batch; the workers go on with the next.

#include "tapegrad/streaming.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"

namespace tg::data {

namespace {

std::string shape_text(const xt::svector<std::size_t>& s)
{
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

template <class A> std::string shape_of(const A& a)
{
    return shape_text(xt::svector<std::size_t>(a.shape().begin(), a.shape().end()));
}

template <class T> class Mapped : public MapDataset<T> {
public:
    Mapped(std::shared_ptr<MapDataset<T>> inner, std::function<Example<T>(Example<T>)> f)
        : inner_(std::move(inner)), f_(std::move(f))
    {}
    std::size_t size() const override { return inner_->size(); }
    Example<T> get(std::size_t index) const override { return f_(inner_->get(index)); }

private:
    std::shared_ptr<MapDataset<T>> inner_;
    std::function<Example<T>(Example<T>)> f_;
};

// Stacks examples; `label(k)` names example k in an error.
template <class T, class Label> Example<T> stack(const std::vector<Example<T>>& ex, const char* who, const Label& label)
{
    if (ex.empty()) throw Error(std::string(who) + ": no examples to stack");
    const auto& d0 = ex[0].data.shape();
    const auto& t0 = ex[0].target.shape();
    for (std::size_t k = 1; k < ex.size(); ++k) {
        const bool same_data =
            ex[k].data.shape().size() == d0.size() && std::equal(d0.begin(), d0.end(), ex[k].data.shape().begin());
        const bool same_target =
            ex[k].target.shape().size() == t0.size() && std::equal(t0.begin(), t0.end(), ex[k].target.shape().begin());
        if (!same_data || !same_target) {
            throw Error(std::string(who) + ": " + label(k) + " has data " + shape_of(ex[k].data) + " and target " +
                        shape_of(ex[k].target) + ", but " + label(0) + " has data " + shape_of(ex[0].data) +
                        " and target " + shape_of(ex[0].target) + ": examples of a batch must have the same shapes");
        }
    }
    const std::size_t b = ex.size();
    std::vector<std::size_t> ds{b}, ts{b};
    ds.insert(ds.end(), d0.begin(), d0.end());
    ts.insert(ts.end(), t0.begin(), t0.end());
    Example<T> out{xt::xarray<T>::from_shape(ds), xt::xarray<std::int64_t>::from_shape(ts)};
    const std::size_t dn = ex[0].data.size(), tn = ex[0].target.size();
    for (std::size_t k = 0; k < b; ++k) {
        // Row-major copies, whatever the layout the example came in.
        if (ex[k].data.layout() == xt::layout_type::row_major) {
            std::copy_n(ex[k].data.data(), dn, out.data.data() + k * dn);
        } else {
            std::copy(ex[k].data.begin(), ex[k].data.end(), out.data.data() + k * dn);
        }
        std::copy(ex[k].target.begin(), ex[k].target.end(), out.target.data() + k * tn);
    }
    return out;
}

}  // namespace

template <class T>
std::shared_ptr<MapDataset<T>> map(std::shared_ptr<MapDataset<T>> dataset,
                                   std::function<Example<T>(Example<T>)> transform)
{
    if (!dataset) throw Error("data::map: the dataset is null");
    if (!transform) throw Error("data::map: the transform is empty");
    return std::make_shared<Mapped<T>>(std::move(dataset), std::move(transform));
}

template <class T> Example<T> stack_examples(const std::vector<Example<T>>& examples, const char* who)
{
    return stack(examples, who, [](std::size_t k) { return "example " + std::to_string(k); });
}

std::vector<std::size_t> SequentialSampler::epoch_indices(std::size_t size, std::uint64_t)
{
    return epoch_order(size, false, 0, 0);
}

std::vector<std::size_t> RandomSampler::epoch_indices(std::size_t size, std::uint64_t epoch)
{
    return epoch_order(size, true, seed_, epoch);
}

namespace detail {

template <class T> class StreamingRun {
public:
    StreamingRun(std::shared_ptr<MapDataset<T>> dataset, const std::vector<std::size_t>& indices,
                 const DataLoaderOptions& o, std::size_t batches)
        : dataset_(std::move(dataset)), indices_(indices), batch_size_(o.batch_size), batches_(batches),
          window_(o.num_workers * o.prefetch)
    {
        for (std::size_t w = 0; w < o.num_workers; ++w) {
            try {
                workers_.emplace_back([this, w, n = o.num_workers] { work(w, n); });
            } catch (...) {
                stop();
                throw;
            }
        }
    }
    ~StreamingRun() { stop(); }
    StreamingRun(const StreamingRun&) = delete;
    StreamingRun& operator=(const StreamingRun&) = delete;

    // Batch i, i == the batch the iterator stands at; waits for it or loads it.
    const Example<T>& get(std::size_t i)
    {
        if (i >= batches_)
            throw Error("StreamingLoader: batch " + std::to_string(i) + " is past the end of the epoch's " +
                        std::to_string(batches_) + " batches");
        if (have_current_ && current_index_ == i) return checked();
        if (workers_.empty()) {
            current_ = load(i);
        } else {
            std::unique_lock<std::mutex> lock(mutex_);
            ready_cv_.wait(lock, [&] { return done_.count(i) != 0; });
            auto it = done_.find(i);
            current_ = std::move(it->second);
            done_.erase(it);
        }
        current_index_ = i;
        have_current_ = true;
        return checked();
    }

    // The iterator moved past batch i: its workers may load further.
    void advance(std::size_t next)
    {
        if (workers_.empty()) {
            have_current_ = false;
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            consumed_ = next;
            // A batch skipped without being looked at is dropped when it arrives.
            for (auto it = done_.begin(); it != done_.end() && it->first < next;) it = done_.erase(it);
        }
        have_current_ = false;
        space_cv_.notify_all();
    }

private:
    struct Loaded {
        Example<T> batch;
        std::string error;  // empty when it loaded
    };

    const Example<T>& checked() const
    {
        if (!current_.error.empty()) throw Error(current_.error);
        return current_.batch;
    }

    // Each example is copied into the batch as it arrives, so a worker holds one example
    // and one batch at a time.
    Loaded load(std::size_t b) const
    {
        const std::size_t first = b * batch_size_;
        const std::size_t count = std::min(batch_size_, indices_.size() - first);
        Loaded out;
        std::size_t k = 0;
        try {
            const Example<T> e0 = dataset_->get(indices_[first]);
            std::vector<std::size_t> ds{count}, ts{count};
            ds.insert(ds.end(), e0.data.shape().begin(), e0.data.shape().end());
            ts.insert(ts.end(), e0.target.shape().begin(), e0.target.shape().end());
            out.batch.data = xt::xarray<T>::from_shape(ds);
            out.batch.target = xt::xarray<std::int64_t>::from_shape(ts);
            const std::size_t dn = e0.data.size(), tn = e0.target.size();
            copy_into(e0.data, out.batch.data.data());
            copy_into(e0.target, out.batch.target.data());
            for (k = 1; k < count; ++k) {
                const Example<T> e = dataset_->get(indices_[first + k]);
                if (!same_shapes(e, ds, ts)) {
                    out.error = "StreamingLoader: example " + std::to_string(indices_[first + k]) + " has data " +
                                shape_of(e.data) + " and target " + shape_of(e.target) + ", but example " +
                                std::to_string(indices_[first]) + " has data " + tail_text(ds) + " and target " +
                                tail_text(ts) + ": examples of a batch must have the same shapes (batch " +
                                std::to_string(b) + ")";
                    out.batch = {};
                    return out;
                }
                copy_into(e.data, out.batch.data.data() + k * dn);
                copy_into(e.target, out.batch.target.data() + k * tn);
            }
        } catch (const std::exception& e) {
            out.error = "StreamingLoader: loading example " + std::to_string(indices_[first + k]) + " (batch " +
                        std::to_string(b) + ") failed: " + e.what();
            out.batch = {};
        } catch (...) {
            out.error = "StreamingLoader: loading example " + std::to_string(indices_[first + k]) + " (batch " +
                        std::to_string(b) + ") failed with an exception that is not a std::exception";
            out.batch = {};
        }
        return out;
    }

    template <class A> static void copy_into(const A& a, typename A::value_type* dst)
    {
        if (a.layout() == xt::layout_type::row_major) {
            std::copy_n(a.data(), a.size(), dst);
        } else {
            std::copy(a.begin(), a.end(), dst);
        }
    }

    // Whether e's shapes are the batch's without its first axis.
    static bool same_shapes(const Example<T>& e, const std::vector<std::size_t>& ds, const std::vector<std::size_t>& ts)
    {
        const auto& d = e.data.shape();
        const auto& t = e.target.shape();
        return d.size() + 1 == ds.size() && std::equal(d.begin(), d.end(), ds.begin() + 1) &&
               t.size() + 1 == ts.size() && std::equal(t.begin(), t.end(), ts.begin() + 1);
    }

    static std::string tail_text(const std::vector<std::size_t>& s)
    {
        return shape_text(xt::svector<std::size_t>(s.begin() + 1, s.end()));
    }

    void work(std::size_t w, std::size_t n)
    {
        for (std::size_t b = w; b < batches_; b += n) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                space_cv_.wait(lock, [&] { return stop_ || b < consumed_ + window_; });
                if (stop_) return;
                if (b < consumed_) continue;  // skipped by the iterator
            }
            Loaded l = load(b);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (stop_) return;
                if (b >= consumed_) done_.emplace(b, std::move(l));
            }
            ready_cv_.notify_all();
        }
    }

    void stop() noexcept
    {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        space_cv_.notify_all();
        for (auto& t : workers_) {
            if (t.joinable()) t.join();
        }
        workers_.clear();
    }

    std::shared_ptr<MapDataset<T>> dataset_;
    std::vector<std::size_t> indices_;
    std::size_t batch_size_, batches_, window_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable space_cv_, ready_cv_;
    std::map<std::size_t, Loaded> done_;
    std::size_t consumed_ = 0;
    bool stop_ = false;
    Loaded current_;
    std::size_t current_index_ = 0;
    bool have_current_ = false;
};

}  // namespace detail

template <class T>
StreamingLoader<T>::StreamingLoader(std::shared_ptr<MapDataset<T>> dataset, DataLoaderOptions options,
                                    std::shared_ptr<Sampler> sampler)
    : dataset_(std::move(dataset)), options_(options), sampler_(std::move(sampler))
{
    if (!dataset_) throw Error("StreamingLoader: the dataset is null");
    if (options_.batch_size == 0) throw Error("StreamingLoader: batch_size must be positive");
    if (options_.num_workers > 0 && options_.prefetch == 0)
        throw Error("StreamingLoader: prefetch must be positive with " + std::to_string(options_.num_workers) +
                    " workers");
    if (!sampler_) {
        if (options_.shuffle) {
            sampler_ = std::make_shared<RandomSampler>(options_.seed);
        } else {
            sampler_ = std::make_shared<SequentialSampler>();
        }
    }
}

template <class T> StreamingLoader<T>::~StreamingLoader() = default;

template <class T> void StreamingLoader<T>::set_epoch(std::uint64_t epoch)
{
    epoch_ = epoch;
    have_indices_ = false;
}

template <class T> const std::vector<std::size_t>& StreamingLoader<T>::indices()
{
    if (!have_indices_) {
        const std::size_t n = dataset_->size();
        std::vector<std::size_t> idx = sampler_->epoch_indices(n, epoch_);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            if (idx[i] >= n)
                throw Error("StreamingLoader: the sampler gave index " + std::to_string(idx[i]) + " at position " +
                            std::to_string(i) + ", out of range for a dataset of " + std::to_string(n) + " examples");
        }
        indices_ = std::move(idx);
        have_indices_ = true;
    }
    return indices_;
}

template <class T> std::size_t StreamingLoader<T>::num_batches()
{
    const std::size_t n = indices().size(), b = options_.batch_size;
    return n / b + (!options_.drop_last && n % b != 0 ? 1 : 0);
}

template <class T> typename StreamingLoader<T>::Iterator StreamingLoader<T>::begin()
{
    const std::size_t batches = num_batches();
    return Iterator(std::make_shared<detail::StreamingRun<T>>(dataset_, indices(), options_, batches), 0);
}

template <class T> typename StreamingLoader<T>::Iterator StreamingLoader<T>::end()
{
    return Iterator(nullptr, num_batches());
}

template <class T> const Example<T>& StreamingLoader<T>::Iterator::operator*() const
{
    if (!run_) throw Error("StreamingLoader: the iterator is past the end or was not made by begin()");
    return run_->get(index_);
}

template <class T> typename StreamingLoader<T>::Iterator& StreamingLoader<T>::Iterator::operator++()
{
    ++index_;
    if (run_) run_->advance(index_);
    return *this;
}

template class StreamingLoader<float>;
template class StreamingLoader<double>;
template std::shared_ptr<MapDataset<float>> map<float>(std::shared_ptr<MapDataset<float>>,
                                                       std::function<Example<float>(Example<float>)>);
template std::shared_ptr<MapDataset<double>> map<double>(std::shared_ptr<MapDataset<double>>,
                                                         std::function<Example<double>(Example<double>)>);
template Example<float> stack_examples<float>(const std::vector<Example<float>>&, const char*);
template Example<double> stack_examples<double>(const std::vector<Example<double>>&, const char*);

}  // namespace tg::data
