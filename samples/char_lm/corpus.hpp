#pragma once
// The char_lm sample's text: the fortunes corpus read into entries, split 90/10 at entry
// boundaries, as byte indices; the bigram baseline; and the batches of truncated
// backpropagation through time. Nothing here records on a tape, so libtorch's twin of the
// recipe (bench/char_lm_libtorch.cpp) trains on exactly these batches too.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace charlm {

/// The seed of the 90/10 split: the same validation text for every run and every --seed.
constexpr std::uint64_t kSplitSeed = 20261207;

/// The learning rate at step `step` (0-based) of `total`: a linear warm-up over `warmup`
/// steps to `peak`, then a cosine down to `peak * floor` at the last step.
double scheduled_lr(std::size_t step, std::size_t total, double peak, double floor, std::size_t warmup);

/// The corpus as read: every entry is its lines followed by a "%" line, as in the files.
struct Corpus {
    std::vector<std::string> files;              ///< the file names read, sorted
    std::size_t bytes = 0;                       ///< the size of those files together
    std::string sha256;                          ///< of the files' contents concatenated in that order, hex
    std::vector<std::string> train, validation;  ///< entries, in a seeded random order
};

/// Reads every fortunes file in `dir` (those without a dot in the name, except the ASCII-art
/// files "art" and "ascii-art"), cuts them at their "%" lines, drops empty entries, shuffles
/// the entries with `seed` and keeps `validation_fraction` of them for validation.
/// `max_entries` > 0 keeps only that many entries (a reduced corpus for quick checks).
/// Throws tg::Error naming the folder when it holds no such file (install the Debian
/// package fortunes).
Corpus load_fortunes(const std::string& dir, std::uint64_t seed, double validation_fraction = 0.1,
                     std::size_t max_entries = 0);

/// SHA-256 of `data` as 64 lowercase hex digits.
std::string sha256_hex(const std::string& data);

/// Bytes to indices and back: the distinct bytes of the corpus in increasing order.
class Vocabulary {
public:
    explicit Vocabulary(const Corpus& corpus);
    /// Rebuilt from its bytes (as stored in a checkpoint).
    static Vocabulary from_bytes(const std::string& bytes);
    std::size_t size() const noexcept { return bytes_.size(); }
    /// Index of byte c; tg::Error when the corpus never had it.
    std::int64_t index(unsigned char c) const;
    char byte(std::int64_t index) const { return bytes_.at(static_cast<std::size_t>(index)); }
    /// Every entry encoded, one after the other.
    std::vector<std::int64_t> encode(const std::vector<std::string>& entries) const;
    const std::string& bytes() const noexcept { return bytes_; }

private:
    Vocabulary() = default;
    std::string bytes_;
    std::int64_t index_[256];
};

/// Bits per character of a bigram model with add-one smoothing, counted on `train` and
/// scored on every character of `validation` after its first.
double bigram_bits_per_char(const std::vector<std::int64_t>& train, const std::vector<std::int64_t>& validation,
                            std::size_t vocabulary);

/// Batches for truncated backpropagation through time. The text is cut into `batch`
/// equal streams, one per batch row; step s gives each row the next `bptt` characters of
/// its stream (input [bptt, batch]) and the characters one further on (target), so that a
/// recurrent state carried from step to step has read its row's text without a gap.
class Streams {
public:
    /// Throws tg::Error when the text is too short for one step.
    Streams(std::vector<std::int64_t> text, std::size_t batch, std::size_t bptt);
    std::size_t steps() const noexcept { return steps_; }
    std::size_t batch() const noexcept { return batch_; }
    std::size_t bptt() const noexcept { return bptt_; }
    /// Fills input and target ([bptt, batch]) for step `step` < steps().
    void fill(std::size_t step, xt::xarray<std::int64_t>& input, xt::xarray<std::int64_t>& target) const;

private:
    std::vector<std::int64_t> text_;
    std::size_t batch_, bptt_, stream_ = 0, steps_ = 0;
};

/// The training text of epoch `epoch` (1-based): the training entries in a new order drawn
/// from seed and epoch, encoded. Every epoch reads each entry once, beside other neighbours.
std::vector<std::int64_t> epoch_text(const Corpus& corpus, const Vocabulary& vocab, std::uint64_t seed,
                                     std::uint64_t epoch);

/// A Fisher-Yates shuffle written out, so that a seed gives the same order with every
/// standard library (std::shuffle's draws are left to the implementation).
template <class Item> void shuffle(std::vector<Item>& items, std::mt19937_64& rng)
{
    for (std::size_t i = items.size(); i-- > 1;) std::swap(items[i], items[rng() % (i + 1)]);
}

}  // namespace charlm
