// tg::data: IDX files (plain and gzip'd), Normalize, Dataset, DataLoader, and Fashion-MNIST
// when the machine has it.

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <system_error>
#include <type_traits>

#include <catch2/catch.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

namespace data = tg::data;
namespace fs = std::filesystem;

namespace {

using tg_test::TempDir;
using tg_test::write_bytes;

using Bytes = std::vector<std::uint8_t>;

// An IDX file's bytes: magic 0x00 0x00 type rank, big-endian dimensions, then the data.
Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const Bytes& payload, std::uint8_t type = 0x08)
{
    Bytes out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (const std::uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(d >> shift));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}
void write_gzip(const std::string& path, const Bytes& bytes)
{
    gzFile out = gzopen(path.c_str(), "wb");
    REQUIRE(out != nullptr);
    if (!bytes.empty())
        REQUIRE(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
    REQUIRE(gzclose(out) == Z_OK);
}

Bytes read_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes iota_bytes(std::size_t n, unsigned step = 1)
{
    Bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(i * step);
    return out;
}

// N rows whose features are (i, -i) and whose label is i % 7: every row says which it is.
data::Dataset<double> numbered_rows(std::size_t n)
{
    xt::xarray<double> features = xt::xarray<double>::from_shape({n, 2});
    xt::xarray<std::int64_t> labels = xt::xarray<std::int64_t>::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        features(i, 0) = static_cast<double>(i);
        features(i, 1) = -static_cast<double>(i);
        labels(i) = static_cast<std::int64_t>(i % 7);
    }
    return data::Dataset<double>(std::move(features), std::move(labels));
}

// The row numbers of the current epoch's batches, in order, after checking that each row's
// features and label belong together.
std::vector<std::size_t> rows_seen(data::DataLoader<double>& loader)
{
    std::vector<std::size_t> rows;
    for (const data::Batch<double>& b : loader) {
        REQUIRE(b.features.shape()[0] == b.size());
        for (std::size_t r = 0; r < b.size(); ++r) {
            const auto i = static_cast<std::size_t>(b.features(r, 0));
            REQUIRE(b.features(r, 1) == -b.features(r, 0));
            REQUIRE(b.labels(r) == static_cast<std::int64_t>(i % 7));
            rows.push_back(i);
        }
    }
    return rows;
}

std::vector<std::size_t> epoch_rows(data::DataLoader<double>& loader, std::uint64_t epoch)
{
    loader.set_epoch(epoch);
    return rows_seen(loader);
}

}  // namespace

TEST_CASE("read_idx gives the same shape and bytes for a plain and a gzip'd file", "[data][idx]")
{
    TempDir dir;
    const Bytes pixels = iota_bytes(3 * 2 * 4, 11);
    const Bytes file = idx_bytes({3, 2, 4}, pixels);
    write_bytes(dir.file("images.idx"), file);
    write_gzip(dir.file("images.idx.gz"), file);
    REQUIRE(read_bytes(dir.file("images.idx.gz"))[0] == 0x1f);  // really gzip'd, whatever the name

    const data::Idx plain = data::read_idx(dir.file("images.idx"));
    const data::Idx gzipped = data::read_idx(dir.file("images.idx.gz"));
    CHECK(plain.shape == std::vector<std::size_t>{3, 2, 4});
    CHECK(plain.data == pixels);
    CHECK(gzipped.shape == plain.shape);
    CHECK(gzipped.data == plain.data);

    // Detection goes by content, not by name; large dimensions decode big-endian.
    const Bytes labels = iota_bytes(70000 % 256 + 300);
    write_gzip(dir.file("labels.idx"), idx_bytes({static_cast<std::uint32_t>(labels.size())}, labels));
    const data::Idx l = data::read_idx(dir.file("labels.idx"));
    CHECK(l.shape == std::vector<std::size_t>{labels.size()});
    CHECK(l.data == labels);
    write_bytes(dir.file("big.idx"), idx_bytes({0x01020304, 0}, {}));
    CHECK(data::read_idx(dir.file("big.idx")).shape == std::vector<std::size_t>{0x01020304, 0});
}

TEST_CASE("read_idx ignores garbage after a gzip stream but not bytes past the data", "[data][idx][errors]")
{
    TempDir dir;
    const std::string gz = dir.file("a.idx.gz");
    write_gzip(gz, idx_bytes({2, 3}, iota_bytes(6)));
    Bytes bytes = read_bytes(gz);
    bytes.insert(bytes.end(), {'j', 'u', 'n', 'k'});
    write_bytes(gz, bytes);
    CHECK(data::read_idx(gz).data == iota_bytes(6));

    const std::string plain = dir.file("b.idx");
    write_bytes(plain, idx_bytes({2, 3}, iota_bytes(11)));
    CHECK_THROWS_WITH(data::read_idx(plain),
                      Catch::Equals(plain + ": 5 bytes past the end of the data (dimensions [2, 3] describe 6 bytes)"));
    write_gzip(gz, idx_bytes({2, 3}, iota_bytes(7)));
    CHECK_THROWS_WITH(data::read_idx(gz), Catch::Equals(gz + ": 1 bytes after decompression past the end of the data "
                                                             "(dimensions [2, 3] describe 6 bytes)"));
}

TEST_CASE("read_idx reports missing, unreadable, empty and too short files with the path first", "[data][idx][errors]")
{
    TempDir dir;
    const std::string missing = dir.file("missing.idx");
    CHECK_THROWS_AS(data::read_idx(missing), tg::Error);
    CHECK_THROWS_WITH(data::read_idx(missing), Catch::Equals(missing + ": cannot open (No such file or directory)"));

    const std::string folder = dir.file("folder");
    fs::create_directory(folder);
    CHECK_THROWS_WITH(data::read_idx(folder), Catch::Equals(folder + ": read error (Is a directory)"));

    const std::string empty = dir.file("empty.idx");
    write_bytes(empty, {});
    CHECK_THROWS_WITH(data::read_idx(empty), Catch::Equals(empty + ": empty file"));
    const std::string empty_gz = dir.file("empty.idx.gz");
    write_gzip(empty_gz, {});
    CHECK_THROWS_WITH(data::read_idx(empty_gz), Catch::Equals(empty_gz + ": empty file (after decompression)"));

    const std::string short_file = dir.file("short.idx");
    write_bytes(short_file, {0x00, 0x00, 0x08});
    CHECK_THROWS_WITH(data::read_idx(short_file),
                      Catch::Equals(short_file + ": too short for an IDX file: 3 bytes, the magic number alone "
                                                 "takes 4"));
    write_bytes(short_file, {0x1f});  // half a gzip magic is a short plain file
    CHECK_THROWS_WITH(data::read_idx(short_file), Catch::Equals(short_file + ": too short for an IDX file: 1 bytes, "
                                                                             "the magic number alone takes 4"));

    const std::string cut_header = dir.file("cut_header.idx");
    Bytes bytes = idx_bytes({60000, 28, 28}, {});
    bytes.resize(9);
    write_bytes(cut_header, bytes);
    CHECK_THROWS_WITH(data::read_idx(cut_header),
                      Catch::Equals(cut_header + ": IDX header cut short: 3 dimensions take 12 bytes after the magic "
                                                 "number, found 5"));
}

TEST_CASE("read_idx reports a corrupt or cut-short gzip stream", "[data][idx][errors]")
{
    TempDir dir;
    const std::string path = dir.file("images.idx.gz");
    write_gzip(path, idx_bytes({10, 28, 28}, iota_bytes(10 * 28 * 28, 7)));
    const Bytes good = read_bytes(path);
    REQUIRE(good.size() > 30);

    // The last 8 bytes are the CRC-32 and length of the data: a changed CRC is always caught.
    Bytes bad_crc = good;
    bad_crc[bad_crc.size() - 8] ^= 0xff;
    write_bytes(path, bad_crc);
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": corrupt gzip stream (incorrect data check)"));

    // A compression method other than deflate (8) in the gzip header.
    Bytes bad_method = good;
    bad_method[2] = 7;
    write_bytes(path, bad_method);
    CHECK_THROWS_WITH(data::read_idx(path), Catch::StartsWith(path + ": corrupt gzip stream ("));

    Bytes cut = good;
    cut.resize(good.size() / 2);
    write_bytes(path, cut);
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": corrupt gzip stream (unexpected end of file)"));
}

TEST_CASE("read_idx reports a wrong magic number and zero or absurd dimensions", "[data][idx][errors]")
{
    TempDir dir;
    const std::string path = dir.file("bad.idx");
    write_bytes(path, {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
    CHECK_THROWS_WITH(data::read_idx(path),
                      Catch::Equals(path + ": not an IDX file: the magic number must start with 0x00 0x00, found "
                                           "0x68 0x65"));
    write_bytes(path, idx_bytes({2}, Bytes(8), 0x0d));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": unsupported IDX data type 0x0d (float), only "
                                                                 "unsigned bytes (0x08) are supported"));
    write_bytes(path, idx_bytes({2}, Bytes(2), 0x07));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": unsupported IDX data type 0x07, only unsigned "
                                                                 "bytes (0x08) are supported"));
    write_bytes(path, idx_bytes({}, Bytes(4)));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": the IDX header gives 0 dimensions"));

    write_bytes(path, idx_bytes({65536, 65536, 2}, Bytes(16)));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Equals(path + ": IDX dimensions [65536, 65536, 2] describe more "
                                                                 "than 1 GB of data (limit 1073741824 bytes)"));
    // A product that wraps around 2^64 is caught too.
    write_bytes(path, idx_bytes({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, Bytes(16)));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Contains("describe more than 1 GB of data"));
    write_bytes(path, idx_bytes({1u << 30, 2}, Bytes(16)));
    CHECK_THROWS_WITH(data::read_idx(path), Catch::Contains("[1073741824, 2] describe more than 1 GB"));
}

TEST_CASE("read_idx reports truncated data with the bytes expected and found", "[data][idx][errors]")
{
    TempDir dir;
    const std::string plain = dir.file("cut.idx");
    const std::string gz = dir.file("cut.idx.gz");
    const Bytes bytes = idx_bytes({2, 3, 3}, iota_bytes(10));
    write_bytes(plain, bytes);
    write_gzip(gz, bytes);
    CHECK_THROWS_WITH(data::read_idx(plain),
                      Catch::Equals(plain + ": truncated: dimensions [2, 3, 3] need 18 data bytes, found 10"));
    CHECK_THROWS_WITH(data::read_idx(gz), Catch::Equals(gz + ": truncated: dimensions [2, 3, 3] need 18 data bytes, "
                                                             "found 10 after decompression"));
    write_bytes(plain, idx_bytes({5}, {}));
    CHECK_THROWS_WITH(data::read_idx(plain), Catch::Equals(plain + ": truncated: dimensions [5] need 5 data bytes, "
                                                                   "found 0"));
}

TEST_CASE("Normalize maps bytes to raw, unit and standardized features", "[data][normalize]")
{
    TempDir dir;
    const std::string images = dir.file("images.idx");
    const std::string labels = dir.file("labels.idx");
    write_bytes(images, idx_bytes({2, 1, 3}, {0, 51, 255, 102, 204, 1}));
    write_gzip(labels, idx_bytes({2}, {3, 1}));

    const auto raw = data::load_idx_dataset<double>(images, labels, data::Normalize::raw());
    CHECK(raw.features() == xt::xarray<double>{{0, 51, 255}, {102, 204, 1}});

    const auto unit = data::load_idx_dataset<double>(images, labels);  // unit is the default
    CHECK(unit.features() == xt::xarray<double>{{0.0, 0.2, 1.0}, {0.4, 0.8, 1.0 / 255.0}});
    const auto unit_f = data::load_idx_dataset<float>(images, labels, data::Normalize::unit());
    CHECK(unit_f.features() == xt::xarray<float>{{0.0f, 0.2f, 1.0f}, {0.4f, 0.8f, 1.0f / 255.0f}});

    const auto z = data::load_idx_dataset<double>(images, labels, data::Normalize::standardize(0.5, 0.25));
    const xt::xarray<double> expected{{-2.0, -1.2, 2.0}, {-0.4, 1.2, (1.0 / 255.0 - 0.5) / 0.25}};
    CHECK(xt::allclose(z.features(), expected, 1e-15, 1e-15));

    CHECK(data::Normalize::standardize(0.3, 0.4).kind == data::Normalize::Kind::standardize);
    CHECK(data::Normalize::raw().kind == data::Normalize::Kind::none);
    CHECK(data::Normalize{}.kind == data::Normalize::Kind::unit);
    CHECK_THROWS_WITH(data::Normalize::standardize(0.5, 0.0),
                      Catch::Equals("Normalize::standardize: std must be positive and finite, got 0"));
    CHECK_THROWS_WITH(data::Normalize::standardize(0.5, -1.0), Catch::StartsWith("Normalize::standardize: std must"));
    CHECK_THROWS_WITH(data::Normalize::standardize(std::nan(""), 1.0),
                      Catch::Equals("Normalize::standardize: mean must be finite, got nan"));
}

TEST_CASE("pixel_mean_std is the mean and population standard deviation of x / 255", "[data][normalize]")
{
    CHECK(data::pixel_mean_std(data::Idx{{2, 2}, {0, 255, 0, 255}}) == std::make_pair(0.5, 0.5));
    CHECK(data::pixel_mean_std(data::Idx{{1}, {51}}) == std::make_pair(0.2, 0.0));

    const std::uint64_t seed = 17;
    INFO("seed " << seed);
    std::mt19937_64 gen(seed);
    data::Idx idx{{1000}, Bytes(1000)};
    for (auto& b : idx.data) b = static_cast<std::uint8_t>(gen() % 256);
    double sum = 0.0, squares = 0.0;
    for (const auto b : idx.data) sum += b / 255.0;
    const double mean = sum / 1000.0;
    for (const auto b : idx.data) squares += (b / 255.0 - mean) * (b / 255.0 - mean);
    const auto [m, s] = data::pixel_mean_std(idx);
    CHECK(m == Approx(mean).epsilon(1e-12));
    CHECK(s == Approx(std::sqrt(squares / 1000.0)).epsilon(1e-12));

    CHECK_THROWS_WITH(data::pixel_mean_std(data::Idx{{0, 28, 28}, {}}),
                      Catch::Equals("pixel_mean_std: no pixels (dimensions [0, 28, 28])"));
}

TEST_CASE("load_idx_dataset flattens images to [N, rows * cols] and keeps labels in order", "[data][dataset]")
{
    TempDir dir;
    const std::string images = dir.file("images.idx.gz");
    const std::string labels = dir.file("labels.idx");
    const Bytes pixels = iota_bytes(4 * 2 * 3, 10);
    write_gzip(images, idx_bytes({4, 2, 3}, pixels));
    write_bytes(labels, idx_bytes({4}, {2, 0, 5, 2}));
    const auto ds = data::load_idx_dataset<float>(images, labels, data::Normalize::raw());
    CHECK(ds.size() == 4);
    CHECK(ds.num_features() == 6);
    CHECK(ds.num_classes() == 6);
    CHECK(ds.features().shape() == std::vector<std::size_t>{4, 6});
    CHECK(ds.labels() == xt::xarray<std::int64_t>{2, 0, 5, 2});
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 6; ++j) CHECK(ds.features()(i, j) == static_cast<float>(pixels[i * 6 + j]));
}

TEST_CASE("load_idx_dataset checks the files' ranks, counts and emptiness", "[data][dataset][errors]")
{
    TempDir dir;
    const std::string images = dir.file("images.idx");
    const std::string labels = dir.file("labels.idx");
    write_bytes(images, idx_bytes({99, 2, 2}, Bytes(99 * 4)));
    write_bytes(labels, idx_bytes({100}, Bytes(100)));
    CHECK_THROWS_WITH(
        data::load_idx_dataset<float>(images, labels),
        Catch::Equals("load_idx_dataset: " + labels + " has 100 labels but " + images + " has 99 images"));

    write_bytes(labels, idx_bytes({99, 1}, Bytes(99)));
    CHECK_THROWS_WITH(data::load_idx_dataset<float>(images, labels),
                      Catch::Equals("load_idx_dataset: " + labels + " must hold labels [N], found dimensions [99, 1]"));

    write_bytes(images, idx_bytes({99, 4}, Bytes(99 * 4)));
    write_bytes(labels, idx_bytes({99}, Bytes(99)));
    CHECK_THROWS_WITH(data::load_idx_dataset<double>(images, labels),
                      Catch::Equals("load_idx_dataset: " + images +
                                    " must hold images [N, rows, cols], found "
                                    "dimensions [99, 4]"));

    write_bytes(images, idx_bytes({0, 28, 28}, {}));
    write_bytes(labels, idx_bytes({0}, {}));
    CHECK_THROWS_WITH(data::load_idx_dataset<float>(images, labels),
                      Catch::Equals("load_idx_dataset: empty data set: " + images + " has dimensions [0, 28, 28]"));

    // A bad file is reported by read_idx, with its path first.
    CHECK_THROWS_WITH(data::load_idx_dataset<float>(dir.file("nope.idx"), labels),
                      Catch::StartsWith(dir.file("nope.idx") + ": cannot open"));
}

TEST_CASE("Dataset checks its shapes and subset copies a range of rows", "[data][dataset]")
{
    const data::Dataset<double> ds = numbered_rows(10);
    CHECK(ds.size() == 10);
    CHECK(ds.num_features() == 2);
    CHECK(ds.num_classes() == 7);

    const data::Dataset<double> part = ds.subset(7, 3);
    CHECK(part.size() == 3);
    CHECK(part.features() == xt::xarray<double>{{7, -7}, {8, -8}, {9, -9}});
    CHECK(part.labels() == xt::xarray<std::int64_t>{0, 1, 2});
    CHECK(part.num_classes() == 3);
    CHECK(ds.subset(0, 10).features() == ds.features());
    CHECK_THROWS_WITH(ds.subset(8, 3),
                      Catch::Equals("Dataset::subset: rows [8, 11) run past the 10 rows of the data set"));
    CHECK_THROWS_WITH(ds.subset(11, 1), Catch::StartsWith("Dataset::subset: rows [11, 12) run past"));
    CHECK_THROWS_WITH(ds.subset(2, std::numeric_limits<std::size_t>::max()),
                      Catch::Equals("Dataset::subset: rows [2, 2 + 18446744073709551615) run past the 10 rows of the "
                                    "data set"));
    CHECK_THROWS_WITH(ds.subset(3, 0), Catch::Equals("Dataset::subset: count must be positive (first 3)"));

    using D = data::Dataset<float>;
    using L = xt::xarray<std::int64_t>;
    CHECK_THROWS_WITH(D(xt::xarray<float>{1, 2, 3}, L{0, 1, 2}),
                      Catch::Equals("Dataset: features must be [N, D], got [3]"));
    CHECK_THROWS_WITH(D(xt::xarray<float>{{1, 1}, {2, 2}}, L{{0, 1}}),
                      Catch::Equals("Dataset: labels must be [N], got [1, 2]"));
    CHECK_THROWS_WITH(D(xt::xarray<float>{{1, 2}, {3, 4}, {5, 6}}, L{0, 1, 2, 3}),
                      Catch::Equals("Dataset: 3 rows of features but 4 labels (features [3, 2], labels [4])"));
    CHECK_THROWS_WITH(D(xt::xarray<float>::from_shape({0, 784}), L::from_shape({0})),
                      Catch::Equals("Dataset: empty data set (features [0, 784])"));
    CHECK_THROWS_WITH(D(xt::xarray<float>{{1, 1}, {2, 2}, {3, 3}}, L{0, 4, -1}),
                      Catch::Equals("Dataset: labels must be non-negative, found -1 at row 2"));
}

TEST_CASE("DataLoader counts batches with and without drop_last", "[data][loader]")
{
    const data::Dataset<double> ds = numbered_rows(10);
    data::DataLoader<double> keep(ds, {3, false, false, 0});
    data::DataLoader<double> drop(ds, {3, false, true, 0});
    CHECK(keep.num_batches() == 4);
    CHECK(drop.num_batches() == 3);
    CHECK(keep.batch(3).size() == 1);
    CHECK(keep.batch(3).features == xt::xarray<double>{{9, -9}});
    CHECK(keep.batch(2).size() == 3);
    CHECK(epoch_rows(drop, 0) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8});
    CHECK_THROWS_WITH(drop.batch(3), Catch::Equals("DataLoader::batch: batch 3 is out of range for 3 batches"));
    CHECK_THROWS_WITH(keep.batch(4), Catch::Equals("DataLoader::batch: batch 4 is out of range for 4 batches"));

    const data::Dataset<double> nine = numbered_rows(9);
    CHECK(data::DataLoader<double>(nine, {3, true, false, 0}).num_batches() == 3);
    CHECK(data::DataLoader<double>(nine, {3, true, true, 0}).num_batches() == 3);
    CHECK(data::DataLoader<double>(nine, {9, true, true, 0}).num_batches() == 1);
    CHECK(data::DataLoader<double>(nine, {100, true, false, 0}).num_batches() == 1);
    CHECK(data::DataLoader<double>(nine).num_batches() == 1);  // default batch_size 32

    CHECK_THROWS_WITH(data::DataLoader<double>(ds, {0, true, false, 0}),
                      Catch::Equals("DataLoader: batch_size must be positive"));
    CHECK_THROWS_WITH(data::DataLoader<double>(ds, {11, true, true, 0}),
                      Catch::Equals("DataLoader: drop_last leaves no batch: batch_size 11 is larger than the 10 rows"));
    // A loader keeps a pointer to its dataset, so a temporary dataset does not compile.
    STATIC_REQUIRE_FALSE(std::is_constructible<data::DataLoader<double>, data::Dataset<double>&&,
                                               data::DataLoader<double>::Options>::value);
    STATIC_REQUIRE(std::is_constructible<data::DataLoader<double>, const data::Dataset<double>&,
                                         data::DataLoader<double>::Options>::value);
}

TEST_CASE("DataLoader with shuffle visits every row exactly once per epoch", "[data][loader]")
{
    const std::size_t n = 103;
    const data::Dataset<double> ds = numbered_rows(n);
    std::vector<std::size_t> all(n);
    std::iota(all.begin(), all.end(), std::size_t{0});
    for (const std::size_t batch_size : {std::size_t{1}, std::size_t{10}, std::size_t{103}, std::size_t{500}}) {
        data::DataLoader<double> loader(ds, {batch_size, true, false, 5});
        for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
            INFO("batch_size " << batch_size << ", epoch " << epoch);
            std::vector<std::size_t> rows = epoch_rows(loader, epoch);
            CHECK(rows == loader.order());
            if (batch_size < n) CHECK(rows != all);  // shuffled
            std::sort(rows.begin(), rows.end());
            CHECK(rows == all);
        }
    }
    // With drop_last, the dropped rows differ from epoch to epoch; the rest are distinct.
    data::DataLoader<double> drop(ds, {10, true, true, 5});
    std::set<std::size_t> seen;
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
        const std::vector<std::size_t> rows = epoch_rows(drop, epoch);
        CHECK(rows.size() == 100);
        CHECK(std::set<std::size_t>(rows.begin(), rows.end()).size() == 100);
        seen.insert(rows.begin(), rows.end());
    }
    CHECK(seen.size() > 100);
}

TEST_CASE("DataLoader gives epoch e the same batches whether or not epochs 0 .. e-1 ran (resume)", "[data][loader]")
{
    const data::Dataset<double> ds = numbered_rows(50);
    const data::DataLoader<double>::Options options{8, true, false, 1234};
    data::DataLoader<double> uninterrupted(ds, options);
    std::vector<std::vector<std::size_t>> orders;
    for (std::uint64_t epoch = 0; epoch < 6; ++epoch) orders.push_back(epoch_rows(uninterrupted, epoch));

    for (std::uint64_t epoch = 0; epoch < 6; ++epoch) {
        INFO("resumed at epoch " << epoch);
        data::DataLoader<double> resumed(ds, options);
        CHECK(epoch_rows(resumed, epoch) == orders[epoch]);
        // Going back and forth changes nothing either.
        resumed.set_epoch(epoch + 7);
        CHECK(epoch_rows(resumed, epoch) == orders[epoch]);
        CHECK(resumed.epoch() == epoch);
    }
    data::DataLoader<double> fresh(ds, options);
    CHECK(fresh.epoch() == 0);
    CHECK(rows_seen(fresh) == orders[0]);  // a new loader is at epoch 0
}

TEST_CASE("DataLoader shuffles differently for each epoch and seed", "[data][loader]")
{
    const data::Dataset<double> ds = numbered_rows(40);
    data::DataLoader<double> a(ds, {8, true, false, 1});
    data::DataLoader<double> b(ds, {8, true, false, 2});
    std::set<std::vector<std::size_t>> orders;
    for (std::uint64_t epoch = 0; epoch < 20; ++epoch) {
        orders.insert(epoch_rows(a, epoch));
        CHECK(epoch_rows(a, epoch) != epoch_rows(b, epoch));
    }
    CHECK(orders.size() == 20);
}

TEST_CASE("DataLoader shuffles are the fixed permutations of tapegrad's algorithm", "[data][loader]")
{
    // mt19937_64 and the draws are specified to the bit, so these orders hold with any
    // standard library; a change here breaks every saved run's resumption.
    const data::Dataset<double> ds = numbered_rows(10);
    data::DataLoader<double> loader(ds, {4, true, false, 42});
    loader.set_epoch(0);
    CHECK(loader.order() == std::vector<std::size_t>{2, 0, 4, 7, 8, 3, 5, 1, 9, 6});
    loader.set_epoch(3);
    CHECK(loader.order() == std::vector<std::size_t>{5, 2, 0, 1, 8, 7, 9, 6, 4, 3});
}

TEST_CASE("DataLoader draws every permutation equally often", "[data][loader]")
{
    // 24 permutations of 4 rows, 24000 epochs: each count is about 1000 with a standard
    // deviation near 31. A biased shuffle (j drawn from all 4 places) is off by hundreds.
    const data::Dataset<double> ds = numbered_rows(4);
    data::DataLoader<double> loader(ds, {4, true, false, 99});
    std::map<std::vector<std::size_t>, int> counts;
    for (std::uint64_t epoch = 0; epoch < 24000; ++epoch) {
        loader.set_epoch(epoch);
        ++counts[loader.order()];
    }
    CHECK(counts.size() == 24);
    for (const auto& [order, count] : counts) {
        INFO("order " << tg::format_shape(order));
        CHECK(count > 850);
        CHECK(count < 1150);
    }
}

TEST_CASE("DataLoader without shuffle gives rows in dataset order every epoch", "[data][loader]")
{
    const data::Dataset<double> ds = numbered_rows(23);
    data::DataLoader<double> loader(ds, {5, false, false, 7});
    std::vector<std::size_t> all(23);
    std::iota(all.begin(), all.end(), std::size_t{0});
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) CHECK(epoch_rows(loader, epoch) == all);
    CHECK(loader.batch(0).features == xt::view(ds.features(), xt::range(0, 5), xt::all()));
    CHECK(loader.batch(4).labels == xt::view(ds.labels(), xt::range(20, 23)));
}

TEST_CASE("DataLoader reuses its batch buffers across batches and epochs", "[data][loader]")
{
    const data::Dataset<double> ds = numbered_rows(10);
    data::DataLoader<double> loader(ds, {4, true, false, 3});
    const double* full = loader.batch(0).features.data();
    const std::int64_t* full_labels = loader.batch(0).labels.data();
    const double* last = loader.batch(2).features.data();
    for (std::uint64_t epoch = 0; epoch < 3; ++epoch) {
        loader.set_epoch(epoch);
        std::size_t count = 0;
        for (auto it = loader.begin(); it != loader.end(); ++it) {
            const data::Batch<double>& b = *it;
            CHECK(&b == &loader.batch(it.index()));
            if (b.size() == 4) {
                CHECK(b.features.data() == full);
                CHECK(b.labels.data() == full_labels);
            } else {
                CHECK(b.size() == 2);
                CHECK(b.features.data() == last);
            }
            ++count;
        }
        CHECK(count == loader.num_batches());
    }
}

TEST_CASE("the Fashion-MNIST training and test sets load with 60000 and 10000 rows", "[data][fashion-mnist]")
{
    const fs::path dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::is_directory(dir)) {
        WARN("skipped: " << dir << " is missing (Debian package dataset-fashion-mnist)");
        return;
    }
    const std::string train_images = (dir / "train-images-idx3-ubyte.gz").string();
    const std::string train_labels = (dir / "train-labels-idx1-ubyte.gz").string();
    const std::string test_images = (dir / "t10k-images-idx3-ubyte.gz").string();
    const std::string test_labels = (dir / "t10k-labels-idx1-ubyte.gz").string();

    const auto train = data::load_idx_dataset<float>(train_images, train_labels);
    const auto test = data::load_idx_dataset<double>(test_images, test_labels);
    CHECK(train.size() == 60000);
    CHECK(test.size() == 10000);
    CHECK(train.num_features() == 784);
    CHECK(test.num_features() == 784);
    CHECK(train.num_classes() == 10);
    CHECK(test.num_classes() == 10);
    // Over raw pointers: xtensor's reducers crawl in the sanitizer's debug build.
    const float* train_pixels = train.features().data();
    const auto [train_min, train_max] = std::minmax_element(train_pixels, train_pixels + train.features().size());
    CHECK(*train_min == 0.0f);
    CHECK(*train_max == 1.0f);
    const double* test_pixels = test.features().data();
    const auto [test_min, test_max] = std::minmax_element(test_pixels, test_pixels + test.features().size());
    CHECK(*test_min == 0.0);
    CHECK(*test_max == 1.0);
    // Both sets are balanced: 6000 and 1000 images of each class.
    for (std::int64_t c = 0; c < 10; ++c) {
        CHECK(std::count(train.labels().begin(), train.labels().end(), c) == 6000);
        CHECK(std::count(test.labels().begin(), test.labels().end(), c) == 1000);
    }
    CHECK(train.labels()(0) == 9);  // the first training image is an ankle boot

    // The commonly quoted normalisation constants of Fashion-MNIST's training set.
    const data::Idx images = data::read_idx(train_images);
    CHECK(images.shape == std::vector<std::size_t>{60000, 28, 28});
    const auto [mean, stddev] = data::pixel_mean_std(images);
    CHECK(mean == Approx(0.2860).margin(1e-4));
    CHECK(stddev == Approx(0.3530).margin(1e-4));
    const auto z = data::load_idx_dataset<float>(test_images, test_labels, data::Normalize::standardize(mean, stddev));
    CHECK(z.features()(0, 0) == Approx(-mean / stddev));

    data::DataLoader<float> loader(train, {128, true, false, 0});
    CHECK(loader.num_batches() == 469);
    const data::Batch<float>& b = loader.batch(0);
    CHECK(b.features.shape() == std::vector<std::size_t>{128, 784});
    CHECK(loader.batch(468).size() == 60000 - 468 * 128);
}
