// language_id: which language is a single word from? Six classes (English, German, French,
// Spanish, Italian, Dutch) from the Debian word lists, read character by character by a
// bidirectional GRU over packed batches of words of different lengths:
//
//   characters [T, N] -> Embedding -> [T, N, E] -> pack_padded_sequence (unsorted lengths)
//   -> bidirectional GRU -> final state h [2, N, H] (forward direction after each word's last
//   character, reverse direction after its first) -> [N, 2H] -> Linear -> logits [N, 6]
//   -> cross_entropy, Adam.
//
//   language_id [--per-class 4000] [--epochs 6] [--batch-size 32] [--lr 0.003] [--embedding 32]
//               [--hidden 64] [--seed 1] [--padded] [--min-accuracy A] [--dict-dir /usr/share/dict]
//
// Prints the validation accuracy after every epoch, then the test accuracy and the confusion
// matrix; exits with status 1 when the test accuracy is below --min-accuracy (percent), or
// when either check below fails.
//
// Packed against padded, two checks after training:
// - 200 test words run as one packed batch (mixed, unsorted lengths) and each of them alone (a
//   dense batch of one: no padding, no packing) must give the same logits within 1e-5
//   (relative, for logits above 1 in size): packing changes how a batch is laid out, not what
//   the model computes for a word, in either direction of the layer;
// - the trained model must name the same language for every test word from packed batches
//   and from dense batches of words of one length (bucketed by length, so no padding is
//   needed and the reverse direction never starts on padding): the same weights give the
//   same test accuracy either way.
// --padded trains on those dense equal-length batches instead of packed ones. Its batches
// differ from the packed run's, so the model it trains, and its accuracy, are close to the
// packed run's, not identical; the equality above is for one set of weights.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

namespace {

struct Language {
    const char* name;
    const char* file;     // under the dictionary folder
    const char* package;  // the Debian package that installs it
};

constexpr std::array<Language, 6> kLanguages = {{{"English", "american-english", "wamerican"},
                                                 {"German", "ngerman", "wngerman"},
                                                 {"French", "french", "wfrench"},
                                                 {"Spanish", "spanish", "wspanish"},
                                                 {"Italian", "italian", "witalian"},
                                                 {"Dutch", "dutch", "wdutch"}}};
constexpr std::size_t kClasses = kLanguages.size();

using Word = std::u32string;

// The code points of a UTF-8 line; tg::Error naming the file and line when it is not UTF-8.
Word decode_utf8(const std::string& s, const std::string& where)
{
    Word out;
    for (std::size_t i = 0; i < s.size();) {
        const auto lead = static_cast<unsigned char>(s[i]);
        const std::size_t extra = lead < 0x80           ? 0
                                  : (lead >> 5) == 0x6  ? 1
                                  : (lead >> 4) == 0xE  ? 2
                                  : (lead >> 3) == 0x1E ? 3
                                                        : 4;
        if (extra == 4 || i + extra >= s.size()) throw tg::Error("language_id: " + where + " is not UTF-8");
        char32_t c = extra == 0 ? lead : lead & (0x3F >> extra);
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto next = static_cast<unsigned char>(s[i + k]);
            if ((next & 0xC0) != 0x80) throw tg::Error("language_id: " + where + " is not UTF-8");
            c = (c << 6) | (next & 0x3F);
        }
        out.push_back(c);
        i += extra + 1;
    }
    return out;
}

std::string encode_utf8(const Word& w)
{
    std::string out;
    for (const char32_t c : w) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

// Words are lowercased: the lists capitalise proper nouns, and German every noun, so case
// alone would give German away; lowercase makes the model judge spelling. ASCII and the
// Latin-1 capitals (U+00C0..U+00DE but the multiplication sign) cover every capital letter
// these six lists use; any other code point is kept as it is.
char32_t lowercase(char32_t c)
{
    if (c >= U'A' && c <= U'Z') return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    return c;
}

// A Fisher-Yates shuffle written out, so that a seed gives the same order with every
// standard library (std::shuffle's draws are left to the implementation).
template <class Item> void shuffle(std::vector<Item>& items, std::mt19937_64& rng)
{
    for (std::size_t i = items.size(); i-- > 1;) std::swap(items[i], items[rng() % (i + 1)]);
}

struct Example {
    Word word;
    std::int64_t label;
};

struct Splits {
    std::vector<Example> train, validation, test;
};

// Reads the six lists and draws the same number of words from each, with a fixed seed.
// Skipped: words with an apostrophe (English possessives and French elisions are giveaways
// of punctuation, not spelling), words shorter than 2 characters, and every word that is in
// more than one list after lowercasing (e.g. "hotel", "piano", "taxi"): such a word has no
// single right answer, so keeping it would cap the accuracy below 100% by construction and
// blur what the number means. Each list is split 80/10/10, so every split is balanced.
Splits load_words(const std::string& dir, std::size_t per_class, std::uint64_t seed)
{
    // Each lowercased word with a bit per list holding it. Kept in UTF-8, where most words fit
    // std::string's inline buffer: the program's peak memory is 140 MB instead of 460 MB with
    // sets of code point strings.
    std::unordered_map<std::string, unsigned> holders;
    for (std::size_t k = 0; k < kClasses; ++k) {
        const std::string path = dir + "/" + kLanguages[k].file;
        std::ifstream in(path);
        if (!in) {
            throw tg::Error("language_id: cannot read the word list " + path + " (Debian package " +
                            kLanguages[k].package +
                            "; install all six with: sudo apt-get install wamerican wngerman wfrench wspanish witalian "
                            "wdutch, or scripts/install-deps)");
        }
        std::string line;
        std::size_t number = 0;
        while (std::getline(in, line)) {
            ++number;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find('\'') != std::string::npos) continue;
            Word w = decode_utf8(line, path + ":" + std::to_string(number));
            if (w.size() < 2) continue;
            std::transform(w.begin(), w.end(), w.begin(), lowercase);
            holders[encode_utf8(w)] |= 1u << k;
        }
    }

    Splits splits;
    std::mt19937_64 rng(seed);
    for (std::size_t k = 0; k < kClasses; ++k) {
        std::vector<std::string> words;
        for (const auto& [word, lists] : holders) {
            if (lists == 1u << k) words.push_back(word);
        }
        std::sort(words.begin(), words.end());  // the hash table's order is the library's
        if (words.size() < per_class) {
            throw tg::Error("language_id: --per-class " + std::to_string(per_class) + " is more than the " +
                            std::to_string(words.size()) + " usable words of " + kLanguages[k].file);
        }
        shuffle(words, rng);
        const std::size_t n_train = per_class * 8 / 10, n_validation = per_class / 10;
        for (std::size_t i = 0; i < per_class; ++i) {
            auto& split = i < n_train ? splits.train : i < n_train + n_validation ? splits.validation : splits.test;
            split.push_back({decode_utf8(words[i], words[i]), static_cast<std::int64_t>(k)});
        }
    }
    return splits;
}

// Characters to indices: 0 pads, 1 is <unk> (a character the training split never shows),
// the training split's characters follow in code point order.
class Vocabulary {
public:
    explicit Vocabulary(const std::vector<Example>& train)
    {
        std::set<char32_t> chars;
        for (const Example& e : train) chars.insert(e.word.begin(), e.word.end());
        for (const char32_t c : chars) index_.emplace(c, static_cast<std::int64_t>(index_.size()) + 2);
    }
    std::int64_t operator()(char32_t c) const
    {
        const auto it = index_.find(c);
        return it == index_.end() ? 1 : it->second;
    }
    std::size_t size() const { return index_.size() + 2; }

private:
    std::map<char32_t, std::int64_t> index_;
};

// A batch of words as character indices [T, N], padded with 0 after each word, and the lengths.
struct Batch {
    xt::xarray<std::int64_t> chars;
    std::vector<std::size_t> lengths;
    xt::xarray<std::int64_t> labels;
};

Batch make_batch(const std::vector<Example>& examples, const std::vector<std::size_t>& rows, const Vocabulary& vocab)
{
    std::size_t longest = 0;
    for (const std::size_t r : rows) longest = std::max(longest, examples[r].word.size());
    Batch b{xt::zeros<std::int64_t>({longest, rows.size()}), {}, xt::zeros<std::int64_t>({rows.size()})};
    for (std::size_t n = 0; n < rows.size(); ++n) {
        const Example& e = examples[rows[n]];
        for (std::size_t t = 0; t < e.word.size(); ++t) b.chars(t, n) = vocab(e.word[t]);
        b.lengths.push_back(e.word.size());
        b.labels(n) = e.label;
    }
    return b;
}

class LanguageId : public nn::Module<float> {
public:
    LanguageId(std::size_t vocabulary, std::size_t embedding, std::size_t hidden, tg::Generator& gen) : hidden_(hidden)
    {
        nn::GRUOptions options;
        options.bidirectional = true;
        embedding_ = register_module("embedding", std::make_shared<nn::Embedding<float>>(vocabulary, embedding, gen));
        gru_ = register_module("gru", std::make_shared<nn::GRU<float>>(embedding, hidden, options, gen));
        fc_ = register_module("fc", std::make_shared<nn::Linear<float>>(2 * hidden, kClasses, true, gen));
    }

    // Words of any lengths, packed: logits [N, 6].
    tg::Var<float> forward_packed(const Batch& b)
    {
        const auto packed = nn::pack_padded_sequence(embedding_->forward(b.chars), b.lengths, false,
                                                     /*enforce_sorted=*/false);
        return classify(gru_->forward(packed, {}).state.h);
    }

    // Words that all have b.chars.shape()[0] characters, as one dense [T, N, E] batch: logits [N, 6].
    tg::Var<float> forward_dense(const Batch& b)
    {
        return classify(gru_->forward(embedding_->forward(b.chars), {}).state.h);
    }

private:
    // h [2, N, H] (forward direction, then reverse) -> [N, 2H] -> logits [N, 6]
    tg::Var<float> classify(const tg::Var<float>& h)
    {
        const std::size_t n = h.shape()[1];
        return fc_->forward(tg::reshape(tg::permute(h, {1, 0, 2}), {n, 2 * hidden_}));
    }

    std::size_t hidden_;
    std::shared_ptr<nn::Embedding<float>> embedding_;
    std::shared_ptr<nn::GRU<float>> gru_;
    std::shared_ptr<nn::Linear<float>> fc_;
};

// The batches of one pass over `examples`. Packed: consecutive rows of a shuffled order,
// lengths mixed. Bucketed (for the dense batches): each batch holds words of one length.
std::vector<std::vector<std::size_t>> make_batches(const std::vector<Example>& examples, std::size_t batch_size,
                                                   bool bucketed, std::mt19937_64* rng)
{
    std::vector<std::size_t> order(examples.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    if (rng != nullptr) shuffle(order, *rng);
    std::vector<std::vector<std::size_t>> batches;
    if (!bucketed) {
        for (std::size_t first = 0; first < order.size(); first += batch_size) {
            batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(first),
                                 order.begin() +
                                     static_cast<std::ptrdiff_t>(std::min(order.size(), first + batch_size)));
        }
        return batches;
    }
    std::map<std::size_t, std::vector<std::size_t>> by_length;
    for (const std::size_t r : order) by_length[examples[r].word.size()].push_back(r);
    for (const auto& [length, rows] : by_length) {
        for (std::size_t first = 0; first < rows.size(); first += batch_size) {
            batches.emplace_back(rows.begin() + static_cast<std::ptrdiff_t>(first),
                                 rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), first + batch_size)));
        }
    }
    if (rng != nullptr) shuffle(batches, *rng);
    return batches;
}

std::size_t argmax_row(const xt::xarray<float>& logits, std::size_t row)
{
    std::size_t best = 0;
    for (std::size_t k = 1; k < kClasses; ++k) best = logits(row, k) > logits(row, best) ? k : best;
    return best;
}

using Confusion = std::array<std::array<std::size_t, kClasses>, kClasses>;

// The language the model names for each of `examples`, in their order, without recording:
// from packed batches of mixed lengths, or from dense batches of words of one length.
std::vector<std::size_t> predict(LanguageId& model, const std::vector<Example>& examples, const Vocabulary& vocab,
                                 bool dense)
{
    tg::NoGradGuard no_grad;
    model.eval();
    std::vector<std::size_t> predicted(examples.size());
    for (const auto& rows : make_batches(examples, 256, dense, nullptr)) {
        const Batch b = make_batch(examples, rows, vocab);
        const xt::xarray<float> logits = (dense ? model.forward_dense(b) : model.forward_packed(b)).value();
        for (std::size_t n = 0; n < rows.size(); ++n) predicted[rows[n]] = argmax_row(logits, n);
    }
    return predicted;
}

// Accuracy (percent) of the predictions; fills the confusion matrix.
double score(const std::vector<Example>& examples, const std::vector<std::size_t>& predicted, Confusion& confusion)
{
    confusion = {};
    std::size_t correct = 0;
    for (std::size_t i = 0; i < examples.size(); ++i) {
        const auto truth = static_cast<std::size_t>(examples[i].label);
        ++confusion[truth][predicted[i]];
        correct += predicted[i] == truth;
    }
    return 100.0 * static_cast<double>(correct) / static_cast<double>(examples.size());
}

// The largest difference between the logits of `count` words (spread over the languages and
// lengths) run as one packed batch and the same words run one at a time, each a dense batch of one with no padding:
// |packed - alone| scaled by max(1, |alone|), since float rounding grows with the logits' size.
double packed_against_alone(LanguageId& model, const std::vector<Example>& examples, const Vocabulary& vocab,
                            std::size_t count)
{
    tg::NoGradGuard no_grad;
    model.eval();
    std::vector<std::size_t> rows(std::min(count, examples.size()));
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i * examples.size() / rows.size();
    const xt::xarray<float> packed = model.forward_packed(make_batch(examples, rows, vocab)).value();
    double worst = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const xt::xarray<float> alone = model.forward_dense(make_batch(examples, {rows[i]}, vocab)).value();
        for (std::size_t k = 0; k < kClasses; ++k) {
            const double scale = std::max(1.0, static_cast<double>(std::abs(alone(0, k))));
            worst = std::max(worst, static_cast<double>(std::abs(alone(0, k) - packed(i, k))) / scale);
        }
    }
    return worst;
}

void print_confusion(const Confusion& confusion)
{
    std::printf("\nconfusion matrix on the test words (rows: true language, columns: predicted)\n%-9s", "");
    for (const Language& l : kLanguages) std::printf("%8s", l.name);
    std::printf("  %7s\n", "recall");
    for (std::size_t t = 0; t < kClasses; ++t) {
        std::printf("%-9s", kLanguages[t].name);
        std::size_t total = 0;
        for (std::size_t p = 0; p < kClasses; ++p) {
            std::printf("%8zu", confusion[t][p]);
            total += confusion[t][p];
        }
        std::printf("  %6.1f%%\n", total == 0 ? 0.0 : 100.0 * static_cast<double>(confusion[t][t]) / total);
    }
}

}  // namespace

int main(int argc, char** argv)
{
    std::string dir = "/usr/share/dict";
    std::size_t per_class = 4000, batch_size = 32, embedding = 32, hidden = 64, check_words = 200;
    int epochs = 6;
    double lr = 3e-3, min_accuracy = 0;
    std::uint64_t seed = 1;
    bool padded = false;
    CLI::App app{"Language identification of single words (English, German, French, Spanish, Italian, Dutch) "
                 "with a character-level bidirectional GRU over packed batches."};
    app.add_option("--dict-dir", dir, "Folder with the Debian word lists")->capture_default_str();
    app.add_option("--per-class", per_class, "Words drawn from each language (80/10/10 train/validation/test)")
        ->check(CLI::Range(10, 1000000))
        ->capture_default_str();
    app.add_option("--epochs", epochs, "Epochs")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch-size", batch_size, "Words per training batch")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--embedding", embedding, "Character embedding size")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--hidden", hidden, "GRU hidden size per direction")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--seed", seed, "Seed of the word sample, the split, the weights and the batch order")
        ->capture_default_str();
    app.add_flag("--padded", padded,
                 "Train and evaluate on dense batches of equal-length words instead of packed ones");
    app.add_option("--check-words", check_words, "Test words run packed and alone for the equality check")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--min-accuracy", min_accuracy, "Exit with status 1 below this test accuracy (percent)");
    CLI11_PARSE(app, argc, argv);
    try {
        const Splits data = load_words(dir, per_class, seed);
        const Vocabulary vocab(data.train);
        std::printf("language_id: %zu words per language, %zu train / %zu validation / %zu test, %zu characters "
                    "(+ padding, <unk>), %s batches of %zu\n",
                    per_class, data.train.size(), data.validation.size(), data.test.size(), vocab.size() - 2,
                    padded ? "dense equal-length" : "packed", batch_size);

        tg::Generator gen(seed);
        LanguageId model(vocab.size(), embedding, hidden, gen);
        tg::optim::AdamOptions options;
        options.lr = lr;
        tg::optim::Adam<float> adam(model.parameters(), options);
        // The rate falls along a half cosine over the epochs, so that the last epochs refine:
        // at a constant rate the validation accuracy of the default run peaked in the fourth
        // epoch and slipped after it (86.6% -> 85.8%); with the schedule it ends at 87.4%.
        tg::optim::CosineAnnealingLR<float> schedule(adam, static_cast<std::uint64_t>(epochs));
        std::mt19937_64 batch_rng(seed);
        Confusion confusion{};
        for (int epoch = 1; epoch <= epochs; ++epoch) {
            const auto start = std::chrono::steady_clock::now();
            model.train();
            double loss_sum = 0;
            std::size_t correct = 0;
            for (const auto& rows : make_batches(data.train, batch_size, padded, &batch_rng)) {
                const Batch b = make_batch(data.train, rows, vocab);
                adam.zero_grad();
                const tg::Var<float> logits = padded ? model.forward_dense(b) : model.forward_packed(b);
                const tg::Var<float> loss = tg::cross_entropy(logits, b.labels);
                loss.backward();
                adam.step();
                loss_sum += static_cast<double>(loss.item()) * static_cast<double>(rows.size());
                for (std::size_t n = 0; n < rows.size(); ++n) {
                    correct += static_cast<std::int64_t>(argmax_row(logits.value(), n)) == b.labels(n);
                }
            }
            const double epoch_lr = schedule.last_lr();
            schedule.step();
            const double validation = score(data.validation, predict(model, data.validation, vocab, padded), confusion);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const auto n_train = static_cast<double>(data.train.size());
            std::printf(
                "epoch %2d/%d  train loss %.4f  train acc %.2f%%  validation acc %.2f%%  lr %.2g  time %.1f s\n", epoch,
                epochs, loss_sum / n_train, 100.0 * static_cast<double>(correct) / n_train, validation, epoch_lr,
                seconds);
            std::fflush(stdout);
        }

        const std::vector<std::size_t> predicted = predict(model, data.test, vocab, padded);
        const double accuracy = score(data.test, predicted, confusion);
        print_confusion(confusion);
        std::printf("\nthe first test word of each language it gets wrong:");
        for (std::size_t k = 0; k < kClasses; ++k) {
            for (std::size_t i = 0; i < data.test.size(); ++i) {
                const Example& e = data.test[i];
                if (static_cast<std::size_t>(e.label) != k || predicted[i] == k) continue;
                std::printf(" %s (%s as %s)", encode_utf8(e.word).c_str(), kLanguages[k].name,
                            kLanguages[predicted[i]].name);
                break;
            }
        }
        std::printf("\n");

        // The trained model's test predictions from the other kind of batch: they must be the same.
        const std::vector<std::size_t> other = predict(model, data.test, vocab, !padded);
        std::size_t differing = 0;
        for (std::size_t i = 0; i < other.size(); ++i) differing += other[i] != predicted[i];
        std::printf("\npacked and dense equal-length batches name the same language for %zu of %zu test words\n",
                    data.test.size() - differing, data.test.size());
        const double difference = packed_against_alone(model, data.test, vocab, check_words);
        const bool same = difference <= 1e-5;
        std::printf("packed batch of %zu test words against each word alone: largest logit difference %.2e "
                    "(|packed - alone| / max(1, |alone|), %s 1e-5)\n",
                    std::min(check_words, data.test.size()), difference, same ? "within" : "NOT within");
        std::printf("language_id: test accuracy %.2f%% on %zu words (chance %.1f%%) after %d epochs, %s batches\n",
                    accuracy, data.test.size(), 100.0 / kClasses, epochs, padded ? "dense equal-length" : "packed");
        return accuracy >= min_accuracy && same && differing == 0 ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
}
