#pragma once
/// \file dist.hpp
/// `tg::dist`: data-parallel training over MPI. Several processes (ranks) run the same
/// program, each on its own shard of every batch; after backward, DataParallel averages
/// their gradients so that every rank takes the same optimiser step, and the parameters
/// stay equal on all ranks, step after step.
///
/// Built into the separate library `tapegrad::dist` when CMake finds MPI (Debian:
/// `libopenmpi-dev`, `openmpi-bin`); run the program with `mpirun -np N program`.
///
/// \code
/// int main(int argc, char** argv) {
///     tg::dist::World world(argc, argv);                       // MPI up; down at the end
///     model_t model = ...;                                      // same seed on every rank
///     tg::dist::DataParallel<float> dp(model.named_parameters());  // rank 0's weights everywhere
///     tg::dist::DistributedSampler sampler(train.size(), 64, world.size(), world.rank(), {true, seed});
///     for (epoch ...) {
///         sampler.set_epoch(epoch);
///         for (std::size_t b = 0; b < sampler.num_batches(); ++b) {
///             sampler.fill(train, b, x.mutable_value(), labels);  // this rank's rows of global batch b
///             opt.zero_grad();
///             tg::cross_entropy(model(x), labels).backward();
///             dp.synchronize(labels.size());                    // gradients of the whole global batch
///             opt.step();
///         }
///     }
/// }
/// \endcode
///
/// Failures never hang the job: an exception that leaves main, std::exit while the World
/// is alive, or World::abort end every rank at once through MPI_Abort with a message naming
/// the rank; a rank that leaves main normally while another is stuck waits at most
/// WorldOptions::finalize_timeout seconds, then aborts the job.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/streaming.hpp"
#include "tapegrad/var.hpp"

namespace tg::dist {

/// Options of a World.
struct WorldOptions {
    /// When the World is destroyed, how long (seconds) a rank waits for all the others to
    /// get there too before it decides that one of them is stuck or gone and aborts the
    /// job (MPI_Finalize would otherwise wait for ever).
    double finalize_timeout = 30.0;
};

/// The MPI environment of the process: MPI_Init_thread on construction (funneled: only
/// the thread that made the World calls MPI), MPI_Finalize on destruction. One per
/// process, made at the top of main. Also installs a terminate handler that turns an
/// exception escaping main on any rank into MPI_Abort of the whole job, with a message.
class World {
public:
    /// Initialises MPI with main's arguments and the default options. Throws tg::Error when MPI is already initialised
    /// or was finalised (one World per process) or fails to start.
    World(int& argc, char**& argv);
    /// The same, with options.
    World(int& argc, char**& argv, WorldOptions options);
    ~World();
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    /// This process's rank, 0 .. size() - 1.
    int rank() const noexcept { return rank_; }
    /// The number of ranks.
    int size() const noexcept { return size_; }
    /// The number of ranks on this machine (sharing its cores), this one included.
    int local_size() const noexcept { return local_size_; }

    /// Prints `message` (prefixed with this rank) to stderr and ends every rank of the job
    /// with exit status `code` (MPI_Abort). For an error caught on one rank that the
    /// others cannot know about.
    [[noreturn]] void abort(const std::string& message, int code = 1) const;

private:
    int rank_ = 0;
    int size_ = 1;
    int local_size_ = 1;
    WorldOptions options_;
};

/// True while a World is alive.
bool initialized() noexcept;
/// This process's rank (0 without a World).
int rank();
/// The number of ranks (1 without a World).
int size();
/// As World::abort, from anywhere.
[[noreturn]] void abort(const std::string& message, int code = 1);

/// How all_reduce combines the ranks' values: elementwise sum, minimum or maximum.
enum class ReduceOp { sum, min, max };

/// Reduces `x` elementwise over all ranks, in place: every rank gets the result. Every
/// rank must pass the same shape (checked: a mismatch is a tg::Error on every rank naming
/// the shapes, never a hang or a partial reduction). Zero-size arrays take part too.
template <class T> void all_reduce(xt::xarray<T>& x, ReduceOp op = ReduceOp::sum);

/// Copies `x` from rank `root` to every other rank; other ranks' `x` is resized to the
/// root's shape. tg::Error on every rank if `root` is out of range.
template <class T> void broadcast(xt::xarray<T>& x, int root = 0);

/// Waits until every rank gets here.
void barrier();

/// Options of DataParallel.
struct DataParallelOptions {
    /// Gradients are packed into buckets of at most this many bytes (a parameter larger
    /// than that gets a bucket of its own) and each bucket is reduced with one allreduce.
    /// With overlap, smaller buckets start communicating earlier in the backward.
    std::size_t bucket_bytes = std::size_t{4} << 20;
    /// Copy rank 0's parameter values to every rank at construction.
    bool broadcast_parameters = true;
    /// Overlap communication with backward, as DDP does: a bucket's reduction
    /// (MPI_Iallreduce) starts from a gradient-ready hook (tg::register_post_accumulate_grad_hook)
    /// as soon as backward has finished all its gradients, while the backward of earlier
    /// layers still runs; synchronize() then waits for the reductions and starts those of
    /// buckets whose gradients did not all become ready. After the first synchronize the
    /// buckets are rebuilt in the order rank 0's gradients became ready. Every rank must
    /// pass the same value.
    ///
    /// Off by default, because on the machines measured (bench/RESULTS.md) it does not pay:
    /// Open MPI without an asynchronous progress thread advances a started reduction only
    /// inside MPI calls (here: when a hook runs, and at synchronize), and its nonblocking
    /// allreduce is slower than the blocking one. Try it where the MPI library progresses
    /// reductions in the background (hardware offload, a progress thread).
    bool overlap = false;
};

/// Averages the gradients of a model's parameters over all ranks.
///
/// Construction (a collective: every rank must construct it) checks that every rank has
/// the same parameter names, shapes and scalar type, in the same order; a difference is a
/// tg::Error on every rank naming the first parameter that differs and both ranks'
/// versions of it. It then copies rank 0's values to all ranks (so that every rank starts
/// from the same weights whatever its seed).
template <class T> class DataParallel {
public:
    /// Takes the model's named parameters (Module::named_parameters()); a collective: see the class comment for the
    /// checks and the initial copy of rank 0's values.
    DataParallel(const std::vector<std::pair<std::string, Var<T>>>& named_params, DataParallelOptions options = {});
    /// Unregisters the hooks. Destroying a DataParallel between a backward and synchronize
    /// (with overlap) leaves reductions that other ranks may still be waiting on.
    ~DataParallel();
    DataParallel(const DataParallel&) = delete;  // the hooks point at this object
    DataParallel& operator=(const DataParallel&) = delete;

    /// Call after backward, before the optimiser's step: every parameter's gradient becomes
    /// the mean of the ranks' gradients. A parameter that has no gradient on a rank counts
    /// as zeros there; one that has a gradient on no rank keeps none (so optimisers skip
    /// it, as they would in one process). Several backwards before one synchronize
    /// (gradient accumulation) are fine: buckets whose gradients changed after their
    /// overlapped reduction started are reduced again, on every rank.
    void synchronize();

    /// The same, weighting each rank's gradient by its number of samples this step: with
    /// mean-reduced losses, the result is the gradient of the mean over the whole global
    /// batch even when the ranks' shards differ in size (a short last batch; a rank with
    /// no rows passes 0 and need not run backward).
    void synchronize(std::size_t local_samples);

    /// Number of buckets (allreduce calls per synchronize).
    std::size_t num_buckets() const noexcept { return buckets_.size(); }
    /// The parameters of bucket b (indices into the list given at construction), in the
    /// order they are packed.
    const std::vector<std::size_t>& bucket(std::size_t b) const { return buckets_.at(b).params; }
    /// Seconds spent in MPI calls so far: blocked in synchronize (waiting for reductions and
    /// for slower ranks) plus starting and polling overlapped reductions during backward.
    /// With overlap, the part of a reduction that ran while backward computed is not in it.
    double communication_seconds() const noexcept { return comm_seconds_; }
    /// Seconds spent packing and unpacking gradients so far.
    double copy_seconds() const noexcept { return copy_seconds_; }
    /// Bucket reductions started by a gradient-ready hook, during backward, so far.
    std::size_t overlapped_reductions() const noexcept { return overlapped_; }
    /// Bucket reductions started or redone by synchronize itself so far.
    std::size_t synchronous_reductions() const noexcept { return synchronous_; }

private:
    struct Bucket {
        std::vector<std::size_t> params;  ///< indices into params_
        std::vector<T> buffer;            ///< the gradients, a has-gradient flag per parameter, the weight
    };
    struct Overlap;  // hooks and in-flight reductions (data_parallel.cpp)
    void make_buckets(const std::vector<std::size_t>& order, std::size_t bucket_bytes);
    void pack(Bucket& b, T weight);
    void unpack(Bucket& b);
    void run(T weight);
    void ready(std::size_t param);
    void launch(std::size_t bucket);
    void overlapped_synchronize(T weight);

    std::vector<Var<T>> params_;
    std::vector<Bucket> buckets_;
    std::size_t bucket_bytes_;
    std::unique_ptr<Overlap> overlap_;
    double comm_seconds_ = 0;
    double copy_seconds_ = 0;
    std::size_t overlapped_ = 0;
    std::size_t synchronous_ = 0;
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

/// Options of a DistributedSampler.
struct SamplerOptions {
    /// A new order each epoch (the same permutation as a tg::data::DataLoader with this
    /// seed); otherwise rows come in dataset order.
    bool shuffle = true;
    /// With the epoch number, fixes every shuffle.
    std::uint64_t seed = 0;
    /// Leave out the last global batch when it would be shorter than num_replicas *
    /// batch_size.
    bool drop_last = false;
};

/// Gives each rank a disjoint shard of every epoch's permutation of a data set, as
/// torch.utils.data.DistributedSampler: rank r takes positions r, r + N, r + 2N, ... of
/// the permutation (N ranks). Batches of `batch_size` rows cut from the shards in order
/// then add up, over the ranks, to exactly the batches one process would see with batch
/// size N * batch_size and a DataLoader of the same seed: batch i of every rank together is
/// global batch i. Unlike torch's sampler no row is repeated to even out the shards, so in
/// the last global batch the ranks' shares may differ by one row (or be empty): weigh them
/// with DataParallel::synchronize(local_samples). num_batches() is the same on all ranks.
///
/// It is also a data::Sampler: a StreamingLoader with this sampler and the same batch_size
/// yields this rank's batches. The loader counts batches from the shard, so when the data
/// set does not divide evenly the ranks may differ by one batch: give both drop_last.
class DistributedSampler : public data::Sampler {
public:
    /// Throws tg::Error if batch_size is 0, num_replicas < 1, rank is out of range, or
    /// drop_last leaves no batch.
    DistributedSampler(std::size_t dataset_size, std::size_t batch_size, int num_replicas, int rank,
                       SamplerOptions options = {});

    /// Fixes the order for `epoch`; depends on (seed, epoch) only.
    void set_epoch(std::uint64_t epoch);
    /// The epoch last given to set_epoch (0 at first).
    std::uint64_t epoch() const noexcept { return epoch_; }

    /// Batches per epoch, the same on every rank.
    std::size_t num_batches() const noexcept;
    /// This rank's rows of the epoch (indices into the data set), in order.
    const std::vector<std::size_t>& indices() const noexcept { return shard_; }
    /// As a data::Sampler: set_epoch(epoch), then indices(). Throws tg::Error if `size` is
    /// not the data set size the sampler was made for.
    std::vector<std::size_t> epoch_indices(std::size_t size, std::uint64_t epoch) override;
    /// This rank's rows of batch i: indices()[i * batch_size ...], possibly fewer, or none.
    std::pair<std::size_t, std::size_t> batch_range(std::size_t i) const;
    /// Rows in global batch i over all ranks.
    std::size_t global_batch_rows(std::size_t i) const;

    /// This rank's rows of batch i copied into `features` [rows, D] and `labels` [rows]
    /// (resized only when the row count changes). Throws tg::Error if i is out of range or
    /// the data set's size is not the sampler's.
    template <class T>
    void fill(const data::Dataset<T>& data, std::size_t i, xt::xarray<T>& features,
              xt::xarray<std::int64_t>& labels) const;

    /// Rows per global batch on each rank.
    std::size_t batch_size() const noexcept { return batch_size_; }
    /// The number of ranks sharing the data.
    int num_replicas() const noexcept { return replicas_; }
    /// This sampler's rank.
    int rank() const noexcept { return rank_; }

private:
    std::size_t n_, batch_size_;
    int replicas_, rank_;
    SamplerOptions options_;
    std::uint64_t epoch_ = 0;
    std::vector<std::size_t> shard_;
};

extern template void DistributedSampler::fill<float>(const data::Dataset<float>&, std::size_t, xt::xarray<float>&,
                                                     xt::xarray<std::int64_t>&) const;
extern template void DistributedSampler::fill<double>(const data::Dataset<double>&, std::size_t, xt::xarray<double>&,
                                                      xt::xarray<std::int64_t>&) const;

}  // namespace tg::dist
