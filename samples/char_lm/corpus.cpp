#include "corpus.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include <tapegrad/error.hpp>

namespace charlm {
namespace {

// FIPS 180-4's constants: the first 32 bits of the fractional parts of the cube roots of the
// first 64 primes, and of the square roots of the first 8 for the initial state.
constexpr std::array<std::uint32_t, 64> kRound = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

std::uint32_t rotr(std::uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

void compress(std::array<std::uint32_t, 8>& state, const unsigned char* block)
{
    std::array<std::uint32_t, 64> w{};
    for (int i = 0; i < 16; ++i) {
        w[i] = std::uint32_t(block[4 * i]) << 24 | std::uint32_t(block[4 * i + 1]) << 16 |
               std::uint32_t(block[4 * i + 2]) << 8 | std::uint32_t(block[4 * i + 3]);
    }
    for (int i = 16; i < 64; ++i) {
        const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::array<std::uint32_t, 8> v = state;
    for (int i = 0; i < 64; ++i) {
        const std::uint32_t e = v[4], a = v[0];
        const std::uint32_t t1 =
            v[7] + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & v[5]) ^ (~e & v[6])) + kRound[i] + w[i];
        const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]));
        for (int k = 7; k > 0; --k) v[k] = v[k - 1];
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int k = 0; k < 8; ++k) state[k] += v[k];
}

std::string read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw tg::Error("char_lm: cannot read " + path.string());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Cuts a fortunes file at its "%" lines; entries keep their lines and gain the "%\n" line.
void split_entries(const std::string& text, std::vector<std::string>& entries)
{
    std::string entry;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line == "%") {
            if (entry.find_first_not_of(" \t\n") != std::string::npos) entries.push_back(entry + "%\n");
            entry.clear();
        } else {
            entry += line;
            entry += '\n';
        }
    }
    if (entry.find_first_not_of(" \t\n") != std::string::npos) entries.push_back(entry + "%\n");
}

}  // namespace

std::string sha256_hex(const std::string& data)
{
    std::array<std::uint32_t, 8> state = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t full = data.size() / 64;
    for (std::size_t b = 0; b < full; ++b) compress(state, bytes + 64 * b);
    // The tail, a 1 bit, zeros, and the length in bits as 64 big-endian bits.
    std::array<unsigned char, 128> tail{};
    const std::size_t rest = data.size() - 64 * full;
    std::copy(bytes + 64 * full, bytes + data.size(), tail.begin());
    tail[rest] = 0x80;
    const std::size_t tail_blocks = rest + 9 <= 64 ? 1 : 2;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    for (int i = 0; i < 8; ++i) tail[64 * tail_blocks - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
    for (std::size_t b = 0; b < tail_blocks; ++b) compress(state, tail.data() + 64 * b);
    std::string hex;
    char buf[9];
    for (const std::uint32_t word : state) {
        std::snprintf(buf, sizeof buf, "%08x", word);
        hex += buf;
    }
    return hex;
}

Corpus load_fortunes(const std::string& dir, std::uint64_t seed, double validation_fraction, std::size_t max_entries)
{
    namespace fs = std::filesystem;
    if (!(validation_fraction > 0 && validation_fraction < 1)) {
        throw tg::Error("char_lm: the validation fraction must be in (0, 1), got " +
                        std::to_string(validation_fraction));
    }
    Corpus corpus;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        for (const auto& item : fs::directory_iterator(dir)) {
            const std::string name = item.path().filename().string();
            if (name.find('.') != std::string::npos || name == "art" || name == "ascii-art") continue;
            if (item.is_regular_file()) corpus.files.push_back(name);
        }
    }
    if (corpus.files.empty()) {
        throw tg::Error("char_lm: no fortunes files in " + dir +
                        " (Debian package fortunes: sudo apt-get install fortunes, or scripts/install-deps)");
    }
    std::sort(corpus.files.begin(), corpus.files.end());
    std::string all;
    std::vector<std::string> entries;
    for (const std::string& name : corpus.files) {
        const std::string text = read_file(fs::path(dir) / name);
        all += text;
        split_entries(text, entries);
    }
    corpus.bytes = all.size();
    corpus.sha256 = sha256_hex(all);
    std::mt19937_64 rng(seed);
    shuffle(entries, rng);
    if (max_entries > 0 && max_entries < entries.size()) entries.resize(max_entries);
    const auto n_validation = static_cast<std::size_t>(std::llround(validation_fraction * double(entries.size())));
    if (n_validation == 0 || n_validation >= entries.size()) {
        throw tg::Error("char_lm: " + std::to_string(entries.size()) + " entries are too few to split");
    }
    corpus.train.assign(entries.begin(), entries.end() - static_cast<std::ptrdiff_t>(n_validation));
    corpus.validation.assign(entries.end() - static_cast<std::ptrdiff_t>(n_validation), entries.end());
    return corpus;
}

Vocabulary::Vocabulary(const Corpus& corpus)
{
    bool seen[256] = {};
    for (const auto* part : {&corpus.train, &corpus.validation}) {
        for (const std::string& e : *part) {
            for (const char c : e) seen[static_cast<unsigned char>(c)] = true;
        }
    }
    std::string bytes;
    for (int c = 0; c < 256; ++c) {
        if (seen[c]) bytes += static_cast<char>(c);
    }
    *this = from_bytes(bytes);
}

Vocabulary Vocabulary::from_bytes(const std::string& bytes)
{
    Vocabulary v;
    std::fill(std::begin(v.index_), std::end(v.index_), -1);
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        if (v.index_[u] >= 0) throw tg::Error("char_lm: the vocabulary lists a byte twice");
        v.index_[u] = static_cast<std::int64_t>(v.bytes_.size());
        v.bytes_ += c;
    }
    if (v.bytes_.empty()) throw tg::Error("char_lm: the vocabulary is empty");
    return v;
}

std::int64_t Vocabulary::index(unsigned char c) const
{
    if (index_[c] < 0) throw tg::Error("char_lm: byte " + std::to_string(int(c)) + " is not in the vocabulary");
    return index_[c];
}

std::vector<std::int64_t> Vocabulary::encode(const std::vector<std::string>& entries) const
{
    std::vector<std::int64_t> out;
    for (const std::string& e : entries) {
        for (const char c : e) out.push_back(index(static_cast<unsigned char>(c)));
    }
    return out;
}

double bigram_bits_per_char(const std::vector<std::int64_t>& train, const std::vector<std::int64_t>& validation,
                            std::size_t vocabulary)
{
    if (validation.size() < 2) throw tg::Error("char_lm: the validation text is too short for a bigram score");
    std::vector<double> pair(vocabulary * vocabulary, 0.0), first(vocabulary, 0.0);
    for (std::size_t i = 0; i + 1 < train.size(); ++i) {
        pair[static_cast<std::size_t>(train[i]) * vocabulary + static_cast<std::size_t>(train[i + 1])] += 1;
        first[static_cast<std::size_t>(train[i])] += 1;
    }
    double bits = 0;
    for (std::size_t i = 0; i + 1 < validation.size(); ++i) {
        const auto a = static_cast<std::size_t>(validation[i]), b = static_cast<std::size_t>(validation[i + 1]);
        bits -= std::log2((pair[a * vocabulary + b] + 1) / (first[a] + double(vocabulary)));
    }
    return bits / double(validation.size() - 1);
}

Streams::Streams(std::vector<std::int64_t> text, std::size_t batch, std::size_t bptt)
    : text_(std::move(text)), batch_(batch), bptt_(bptt)
{
    if (batch_ == 0 || bptt_ == 0) throw tg::Error("char_lm: batch size and bptt length must be positive");
    stream_ = text_.empty() ? 0 : (text_.size() - 1) / batch_;
    steps_ = stream_ / bptt_;
    if (steps_ == 0) {
        throw tg::Error("char_lm: " + std::to_string(text_.size()) + " characters are too few for one step of " +
                        std::to_string(batch_) + " rows of " + std::to_string(bptt_));
    }
}

void Streams::fill(std::size_t step, xt::xarray<std::int64_t>& input, xt::xarray<std::int64_t>& target) const
{
    if (step >= steps_) {
        throw tg::Error("char_lm: step " + std::to_string(step) + " of " + std::to_string(steps_) + " steps");
    }
    const auto sized = [&](const xt::xarray<std::int64_t>& a) {
        return a.dimension() == 2 && a.shape()[0] == bptt_ && a.shape()[1] == batch_;
    };
    if (!sized(input)) input = xt::xarray<std::int64_t>::from_shape({bptt_, batch_});
    if (!sized(target)) target = xt::xarray<std::int64_t>::from_shape({bptt_, batch_});
    for (std::size_t n = 0; n < batch_; ++n) {
        const std::size_t begin = n * stream_ + step * bptt_;
        for (std::size_t t = 0; t < bptt_; ++t) {
            input(t, n) = text_[begin + t];
            target(t, n) = text_[begin + t + 1];
        }
    }
}

double scheduled_lr(std::size_t step, std::size_t total, double peak, double floor, std::size_t warmup)
{
    if (step < warmup) return peak * double(step + 1) / double(warmup);
    const double progress = total > warmup ? double(step - warmup) / double(total - warmup) : 1.0;
    return peak * (floor + (1 - floor) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress))));
}

std::vector<std::int64_t> epoch_text(const Corpus& corpus, const Vocabulary& vocab, std::uint64_t seed,
                                     std::uint64_t epoch)
{
    std::vector<std::size_t> order(corpus.train.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(seed * 1000003u + epoch);
    shuffle(order, rng);
    std::vector<std::int64_t> text;
    for (const std::size_t i : order) {
        for (const char c : corpus.train[i]) text.push_back(vocab.index(static_cast<unsigned char>(c)));
    }
    return text;
}

}  // namespace charlm
