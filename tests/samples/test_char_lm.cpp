// The char_lm sample's data code: reading and splitting a fortunes folder, SHA-256, the
// vocabulary, the bigram baseline, the streams of truncated backpropagation, the schedule,
// and the model's state carried from window to window.

#include <cmath>
#include <fstream>
#include <set>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "corpus.hpp"
#include "model.hpp"

#include "helpers.hpp"

namespace {

using tg_test::TempDir;

void write(const std::string& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// A window of one batch row, [T, 1].
xt::xarray<std::int64_t> column(const std::vector<std::int64_t>& values)
{
    xt::xarray<std::int64_t> out = xt::zeros<std::int64_t>({values.size(), std::size_t(1)});
    for (std::size_t t = 0; t < values.size(); ++t) out(t, 0) = values[t];
    return out;
}

// A tiny model of `kind` over 7 symbols, without dropout, so that runs compare exactly.
charlm::ModelConfig tiny(charlm::Kind kind, std::size_t hidden)
{
    charlm::ModelConfig config;
    config.kind = kind;
    config.vocabulary = 7;
    config.embedding = 4;
    config.hidden = hidden;
    config.heads = 2;
    config.context = 4;
    config.dropout = 0;
    return config;
}

}  // namespace

TEST_CASE("char_lm: SHA-256 of the standard test messages", "[samples][char_lm]")
{
    CHECK(charlm::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(charlm::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // 56 bytes: the padding needs a second block.
    CHECK(charlm::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // 1000 bytes: many full blocks (the value from Python's hashlib).
    CHECK(charlm::sha256_hex(std::string(1000, 'a')) ==
          "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST_CASE("char_lm: a fortunes folder is cut into entries and split", "[samples][char_lm]")
{
    TempDir dir("char-lm");
    write(dir.file("b"), "one\n%\ntwo\nlines\n%\n\n%\nthree\n");  // an empty entry, no final %
    write(dir.file("a"), "four\n%\nfive\n%\nsix\n%\nseven\n%\neight\n%\n");
    write(dir.file("a.dat"), "binary index");  // files with a dot are not text
    write(dir.file("art"), "ascii art\n%\n");  // and the ASCII-art files are left out
    write(dir.file("ascii-art"), "more art\n%\n");
    const charlm::Corpus c = charlm::load_fortunes(dir.path.string(), 7, 0.25);
    CHECK(c.files == std::vector<std::string>{"a", "b"});
    const std::string a = "four\n%\nfive\n%\nsix\n%\nseven\n%\neight\n%\n", b = "one\n%\ntwo\nlines\n%\n\n%\nthree\n";
    CHECK(c.bytes == a.size() + b.size());
    CHECK(c.sha256 == charlm::sha256_hex(a + b));
    REQUIRE(c.train.size() == 6);
    REQUIRE(c.validation.size() == 2);
    std::multiset<std::string> all(c.train.begin(), c.train.end());
    all.insert(c.validation.begin(), c.validation.end());
    CHECK(all == std::multiset<std::string>{"four\n%\n", "five\n%\n", "six\n%\n", "seven\n%\n", "eight\n%\n",
                                            "one\n%\n", "two\nlines\n%\n", "three\n%\n"});
    // The same seed gives the same split; the entry cap keeps a prefix of the shuffled order.
    CHECK(charlm::load_fortunes(dir.path.string(), 7, 0.25).validation == c.validation);
    CHECK(charlm::load_fortunes(dir.path.string(), 7, 0.25, 4).train.size() == 3);

    CHECK_THROWS_WITH(charlm::load_fortunes(dir.file("missing"), 1),
                      Catch::Contains("no fortunes files in") && Catch::Contains("apt-get install fortunes"));
    CHECK_THROWS_WITH(charlm::load_fortunes(dir.path.string(), 1, 0.25, 1), Catch::Contains("too few to split"));
    CHECK_THROWS_WITH(charlm::load_fortunes(dir.path.string(), 1, 1.5), Catch::Contains("validation fraction"));
}

TEST_CASE("char_lm: vocabulary, bigram baseline and epoch texts", "[samples][char_lm]")
{
    charlm::Corpus c;
    c.train = {"abab%\n", "ba%\n"};
    c.validation = {"ab%\n"};
    const charlm::Vocabulary v(c);
    CHECK(v.bytes() == "\n%ab");
    CHECK(v.index('a') == 2);
    CHECK(v.byte(3) == 'b');
    CHECK(v.encode({"ab", "%"}) == std::vector<std::int64_t>{2, 3, 1});
    CHECK_THROWS_WITH(v.index('z'), Catch::Contains("byte 122 is not in the vocabulary"));
    CHECK_THROWS_WITH(charlm::Vocabulary::from_bytes("aa"), Catch::Contains("twice"));

    // train a b a b % \n: pairs ab twice, ba, b%, %\n; validation a b %: ab then b%.
    const std::vector<std::int64_t> train = {2, 3, 2, 3, 1, 0}, validation = {2, 3, 1};
    const double want = -(std::log2((2.0 + 1) / (2 + 4)) + std::log2((1.0 + 1) / (2 + 4))) / 2;
    CHECK(charlm::bigram_bits_per_char(train, validation, 4) == Approx(want).epsilon(1e-12));
    CHECK_THROWS_WITH(charlm::bigram_bits_per_char(train, {2}, 4), Catch::Contains("too short"));

    // Each epoch reads every training entry once, in an order drawn from seed and epoch.
    const auto e1 = charlm::epoch_text(c, v, 3, 1), e2 = charlm::epoch_text(c, v, 3, 2);
    CHECK(e1.size() == 10);
    CHECK(std::multiset<std::int64_t>(e1.begin(), e1.end()) == std::multiset<std::int64_t>(e2.begin(), e2.end()));
    CHECK(charlm::epoch_text(c, v, 3, 1) == e1);
}

TEST_CASE("char_lm: each batch row reads its stream without a gap", "[samples][char_lm]")
{
    std::vector<std::int64_t> text(103);
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<std::int64_t>(i);
    const charlm::Streams s(text, 4, 5);  // 4 streams of 25 characters: 5 steps of 5
    REQUIRE(s.steps() == 5);
    xt::xarray<std::int64_t> x, y;
    for (std::size_t step = 0; step < s.steps(); ++step) {
        s.fill(step, x, y);
        REQUIRE(x.shape()[0] == 5);
        REQUIRE(x.shape()[1] == 4);
        for (std::size_t n = 0; n < 4; ++n) {
            for (std::size_t t = 0; t < 5; ++t) {
                CHECK(x(t, n) == static_cast<std::int64_t>(25 * n + 5 * step + t));
                CHECK(y(t, n) == x(t, n) + 1);
            }
        }
    }
    CHECK_THROWS_WITH(s.fill(5, x, y), Catch::Contains("step 5 of 5"));
    CHECK_THROWS_WITH(charlm::Streams(std::vector<std::int64_t>(10), 4, 5), Catch::Contains("too few for one step"));
    CHECK_THROWS_WITH(charlm::Streams(text, 0, 5), Catch::Contains("must be positive"));
}

TEST_CASE("char_lm: the learning-rate schedule", "[samples][char_lm]")
{
    CHECK(charlm::scheduled_lr(0, 1000, 1.0, 0.1, 100) == Approx(0.01));
    CHECK(charlm::scheduled_lr(99, 1000, 1.0, 0.1, 100) == Approx(1.0));
    CHECK(charlm::scheduled_lr(100, 1000, 1.0, 0.1, 100) == Approx(1.0));
    CHECK(charlm::scheduled_lr(550, 1000, 1.0, 0.1, 100) == Approx(0.55));
    CHECK(charlm::scheduled_lr(1000, 1000, 1.0, 0.1, 100) == Approx(0.1));
    CHECK(charlm::scheduled_lr(5, 10, 2.0, 0.5, 0) == Approx(1.5));
}

TEST_CASE("char_lm: a recurrent model carries its state across windows", "[samples][char_lm]")
{
    for (const auto kind : {charlm::Kind::lstm, charlm::Kind::gru}) {
        tg::Generator gen(5);
        charlm::CharModel model(tiny(kind, 6), gen);
        xt::xarray<std::int64_t> all = {{1, 2}, {3, 4}, {5, 6}, {0, 1}};  // [T=4, N=2]
        // Two windows of 2 with the state carried give the logits of one window of 4.
        tg::nn::RecurrentState<float> whole, split;
        const xt::xarray<float> want = model.forward(all, whole).value();
        const xt::xarray<std::int64_t> first = xt::view(all, xt::range(0, 2)), second = xt::view(all, xt::range(2, 4));
        model.forward(first, split);
        REQUIRE(split.h.defined());
        CHECK(split.h.shape() == std::vector<std::size_t>{2, 2, 6});
        const xt::xarray<float> got = model.forward(second, split).value();
        CHECK(xt::allclose(got, xt::view(want, xt::range(2, 4)), 1e-5, 1e-6));
        // The state is detached: a loss on the second window has no path into the first.
        CHECK(split.h.is_leaf());
    }
}

TEST_CASE("char_lm: the Transformer is causal and bounded by its context", "[samples][char_lm]")
{
    tg::Generator gen(5);
    charlm::CharModel model(tiny(charlm::Kind::transformer, 8), gen);  // context 4
    tg::nn::RecurrentState<float> unused;
    const xt::xarray<std::int64_t> a = column({1, 2, 3, 4}), b = column({1, 2, 6, 0});
    const xt::xarray<float> la = model.forward(a, unused).value(), lb = model.forward(b, unused).value();
    // Positions 0 and 1 see only characters 0 and 1, which a and b share.
    CHECK(xt::allclose(xt::view(la, xt::range(0, 2)), xt::view(lb, xt::range(0, 2)), 1e-6, 1e-7));
    CHECK_FALSE(xt::allclose(xt::view(la, 2), xt::view(lb, 2), 1e-6, 1e-7));
    const xt::xarray<std::int64_t> long_window = xt::zeros<std::int64_t>({std::size_t(5), std::size_t(1)});
    CHECK_THROWS_WITH(model.forward(long_window, unused),
                      Catch::Contains("longer than the Transformer's context of 4"));
    CHECK_THROWS_WITH(charlm::parse_kind("rnn"), Catch::Contains("unknown model 'rnn'"));
}
