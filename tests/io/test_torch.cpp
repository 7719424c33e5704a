// torch.save files: load_torch against what PyTorch itself reads from the files of
// tests/reference/torch (make_torch_files.py wrote them and expected.json), save_torch against
// the file torch.load verified, round trips, load_parameters/save_parameters choosing the
// format, and every kind of bad input refused with a tg::Error that says what is wrong.

#include <algorithm>
#include <cstdio>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"
#include "torch_archive.hpp"

using Catch::Contains;
using Catch::EndsWith;
using Catch::Equals;
using Catch::StartsWith;
namespace io = tg::io;
namespace nn = tg::nn;
using tg_torch::Pickle;

namespace {

const std::string dir = std::string(TAPEGRAD_REFERENCE_DIR) + "/torch";

std::string hex(const std::vector<unsigned char>& bytes)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

nlohmann::json expected()
{
    std::ifstream in(dir + "/expected.json");
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

// The tensors of a File in expected.json's form.
nlohmann::json described(const io::File& f)
{
    nlohmann::json out = {{"tensors", nlohmann::json::object()}, {"metadata", nlohmann::json::object()}};
    for (const auto& [name, t] : f.tensors) {
        out["tensors"][name] = {{"dtype", io::dtype_name(t.dtype)}, {"shape", t.shape}, {"hex", hex(t.bytes)}};
    }
    for (const auto& [k, v] : f.metadata) out["metadata"][k] = v;
    return out;
}

// The file that save_torch writes in the test below (and make_torch_files.py --check knows).
io::File from_tapegrad()
{
    io::File f;
    for (const char* name : {"dtypes.pt", "empty.pt", "model.pt"}) {
        for (auto& [k, t] : io::load_torch(dir + "/" + name).tensors) f.tensors.emplace(k, t);
    }
    f.metadata = {{"epoch", "3"}, {"note", "written by tg::io::save_torch"}, {"empty", ""}};
    return f;
}

// parse_torch of a hand-made archive, for the error tests.
io::File parse(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages = {})
{
    return io::parse_torch(tg_torch::archive(pickle, storages), "t.pt");
}

// A state dict {"w": <tensor>} whose tensor is the given view of float storage "0".
std::string one_tensor(std::int64_t numel, std::int64_t offset, std::vector<std::int64_t> shape,
                       std::vector<std::int64_t> strides)
{
    return Pickle().ordered_dict().str("w").tensor("0", "FloatStorage", numel, offset, shape, strides).op('s').done();
}

}  // namespace

TEST_CASE("load_torch reads every reference file as PyTorch does", "[io][torch][reference][pytorch]")
{
    const nlohmann::json want = expected();
    REQUIRE(want.size() >= 10);
    for (const auto& [name, content] : want.items()) {
        INFO(name);
        const io::File f = io::load_torch(dir + "/" + name);
        const nlohmann::json got = described(f);
        CHECK(got["metadata"] == content["metadata"]);
        CHECK(got["tensors"].size() == content["tensors"].size());
        for (const auto& [key, t] : content["tensors"].items()) {
            INFO("tensor '" << key << "'");
            REQUIRE(got["tensors"].contains(key));
            CHECK(got["tensors"][key] == t);
        }
    }
}

TEST_CASE("load_torch gives views, optimizer state and plain values the names and texts PyTorch's data has",
          "[io][torch][reference]")
{
    const io::File views = io::load_torch(dir + "/views.pt");
    // base = arange(24).reshape(4, 6) / 8: the slice [1:3, 2:5] and the transposed tensor.
    CHECK(views.tensors.at("slice").shape == std::vector<std::size_t>{2, 3});
    CHECK((views.tensors.at("slice").to<double>() == xt::xarray<double>{{1.0, 1.125, 1.25}, {1.75, 1.875, 2.0}}));
    CHECK(views.tensors.at("transposed").shape == std::vector<std::size_t>{6, 4});
    CHECK(views.tensors.at("transposed").to<double>()(1, 2) == 13.0 / 8);
    CHECK((views.tensors.at("expanded").to<double>() == xt::xarray<double>{{1, 2, 3}, {1, 2, 3}}));
    CHECK((views.tensors.at("shared_tail").to<std::int64_t>() == xt::xarray<std::int64_t>{6, 7, 8, 9}));

    const io::File adam = io::load_torch(dir + "/adam.pt");
    CHECK(adam.metadata.at("param_groups.0.lr") == "0.001");
    CHECK(adam.metadata.at("param_groups.1.amsgrad") == "True");
    CHECK(adam.metadata.at("param_groups.0.foreach") == "None");
    CHECK(adam.metadata.at("param_groups.1.params.0") == "1");
    CHECK(adam.tensors.at("state.0.exp_avg").shape == std::vector<std::size_t>{2, 3});
    CHECK(adam.tensors.at("state.1.max_exp_avg_sq").shape == std::vector<std::size_t>{3});

    const io::File bare = io::load_torch(dir + "/tensor.pt");
    CHECK((bare.tensors.at("").to<double>() == xt::xarray<double>{{0, 3}, {1, 4}, {2, 5}}));
}

TEST_CASE("load_torch refuses the legacy format, forbidden globals and unsupported dtypes, saying why",
          "[io][torch][errors]")
{
    CHECK_THROWS_WITH(io::load_torch(dir + "/legacy.pt"),
                      StartsWith("load_torch: " + dir + "/legacy.pt: the file is in PyTorch's legacy format") &&
                          Contains("_use_new_zipfile_serialization=True"));
    CHECK_THROWS_WITH(io::load_torch(dir + "/forbidden.pt"),
                      StartsWith("load_torch: " + dir +
                                 "/forbidden.pt: data.pkl: the pickle refers to the global "
                                 "'__builtin__.print', which a weights-only load does not allow"));
    CHECK_THROWS_WITH(io::load_torch(dir + "/complex.pt"),
                      Equals("load_torch: " + dir +
                             "/complex.pt: tensor 'z' has dtype complex64, which is not loaded (float32, float64, "
                             "float16, bfloat16, int64, int32, int16, int8, uint8 and bool are)"));
    CHECK_THROWS_WITH(io::load_torch(dir + "/missing.pt"),
                      StartsWith("load_torch: " + dir + "/missing.pt: cannot open the file"));
    // Any other global, wherever it stands: a class to call, a function as a value.
    CHECK_THROWS_WITH(parse(Pickle().global("os", "system").str("ls").op('\x85').op('R').done()),
                      Contains("the global 'os.system', which a weights-only load does not allow"));
    CHECK_THROWS_WITH(parse(Pickle().global("torch.nn.modules.linear", "Linear").op(')').op('R').done()),
                      Contains("'torch.nn.modules.linear.Linear'"));
    // A storage type may only name a storage; OrderedDict takes no arguments.
    CHECK_THROWS_WITH(parse(Pickle().global("torch", "FloatStorage").op(')').op('R').done()),
                      Contains("calls the storage type 'torch.FloatStorage'"));
    CHECK_THROWS_WITH(parse(Pickle().global("collections", "OrderedDict").op(']').op('\x85').op('R').done()),
                      Contains("'collections.OrderedDict' is called with 1 arguments"));
}

TEST_CASE("save_torch then load_torch gives the same file: every dtype, 0-d and zero-size tensors, metadata",
          "[io][torch]")
{
    tg_test::TempDir tmp;
    io::File f = from_tapegrad();
    f.tensors["naïve.name with spaces"] = io::Tensor::from(xt::xarray<float>{{1.5f, -2.0f}});
    f.tensors[""] = io::Tensor::from(xt::xarray<double>(4.0));
    f.metadata["ünïcode"] = "välue";
    const std::string path = tmp.file("f.pt");
    io::save_torch(path, f);
    CHECK(io::load_torch(path) == f);
    CHECK(io::parse_torch(io::serialize_torch(f), "memory") == f);
    // Without metadata, the state_dict has no attribute.
    io::File plain = f;
    plain.metadata.clear();
    CHECK(io::parse_torch(io::serialize_torch(plain), "memory") == plain);
    CHECK(io::parse_torch(io::serialize_torch(io::File{}), "memory") == io::File{});
    // Large values take LONG1: sizes beyond 32 bits would, too.
    io::File ints;
    ints.tensors["i"] = io::Tensor::from(xt::xarray<std::int64_t>{INT64_MIN, INT64_MAX});
    CHECK(io::parse_torch(io::serialize_torch(ints), "memory") == ints);
    // Every storage starts 64-byte aligned in the file, as PyTorch's own writer does.
    const std::string bytes = io::serialize_torch(f);
    const io::Tensor& probe = f.tensors.at("float64");
    const auto at = bytes.find(std::string(probe.bytes.begin(), probe.bytes.end()));
    REQUIRE(at != std::string::npos);
    CHECK(at % 64 == 0);
}

TEST_CASE("save_torch writes the bytes torch.load(weights_only=True) was shown to read", "[io][torch][pytorch]")
{
    // tests/reference/torch/from_tapegrad.pt is this test's output, checked once with PyTorch:
    //   /usr/bin/python3 tests/reference/make_torch_files.py --check tests/reference/torch/from_tapegrad.pt
    // Whoever changes the writer's bytes checks the new file so, and commits it.
    for (bool zip64 : {false, true}) {
        const std::string name = zip64 ? "from_tapegrad_zip64.pt" : "from_tapegrad.pt";
        INFO(name);
        io::detail::force_zip64(zip64);
        const std::string bytes = io::serialize_torch(from_tapegrad());
        io::detail::force_zip64(false);
        const std::string committed = tg_test::read_bytes(dir + "/" + name);
        if (bytes != committed) {
            const std::string out = (std::filesystem::temp_directory_path() / name).string();
            std::ofstream(out, std::ios::binary) << bytes;
            FAIL("save_torch's bytes differ from tests/reference/torch/"
                 << name << ": wrote them to " << out
                 << "; check that file with "
                    "make_torch_files.py --check and commit it");
        }
        CHECK(io::parse_torch(bytes, name) == from_tapegrad());
    }
}

TEST_CASE("load_parameters takes a torch.save state_dict by content, save_parameters writes one for .pt paths",
          "[io][torch][nn]")
{
    tg_test::TempDir tmp;
    tg::Generator gen(3);
    nn::Sequential<double> a{nn::Linear<double>(3, 4, true, gen), nn::BatchNorm1d<double>(4),
                             nn::Linear<double>(4, 2, true, gen)};
    nn::Sequential<double> b{nn::Linear<double>(3, 4, true, gen), nn::BatchNorm1d<double>(4),
                             nn::Linear<double>(4, 2, true, gen)};
    a.at<nn::BatchNorm1d<double>>(1).train();
    a(tg::constant(xt::xarray<double>{{1, 2, 3}, {-1, 0, 4}}));  // running statistics move
    for (const char* name : {"a.pt", "a.pth", "a.bin", "a.safetensors", "no_extension"}) {
        INFO(name);
        const std::string path = tmp.file(name);
        io::save_parameters(path, a, {{"epoch", "2"}});
        const bool torch = std::string(name).find('.') != std::string::npos && std::string(name) != "a.safetensors";
        CHECK((tg_test::read_bytes(path).compare(0, 2, "PK") == 0) == torch);
        if (torch) {
            CHECK(io::load_torch(path).metadata.at("epoch") == "2");
        } else {
            CHECK(io::load(path).metadata.at("epoch") == "2");
        }
        // Loading goes by content: a torch file named .safetensors loads too.
        const std::string renamed = tmp.file("renamed.safetensors");
        std::filesystem::copy_file(path, renamed, std::filesystem::copy_options::overwrite_existing);
        io::load_parameters(renamed, b);
        for (std::size_t i = 0; i < a.parameters().size(); ++i)
            CHECK(b.parameters()[i].value() == a.parameters()[i].value());
        CHECK(b.at<nn::BatchNorm1d<double>>(1).num_batches_tracked() == 1);
    }
    // A torch.save file that does not fit is refused as a safetensors file would be.
    CHECK_THROWS_WITH(io::load_parameters(dir + "/views.pt", b),
                      StartsWith(dir + "/views.pt: the file does not match the model: missing parameters"));
    CHECK_THROWS_WITH(io::load_parameters(dir + "/legacy.pt", b),
                      StartsWith("load_torch: " + dir + "/legacy.pt: the file is in PyTorch's legacy format"));
}

TEST_CASE("save_torch is atomic: a failed write leaves the old file", "[io][torch][errors]")
{
    tg_test::TempDir tmp;
    const std::string path = tmp.file("f.pt");
    io::File f = from_tapegrad();
    io::save_torch(path, f);
    const std::string before = tg_test::read_bytes(path);
    io::detail::fail_writes_after(100);
    CHECK_THROWS_WITH(io::save_torch(path, io::File{}),
                      Equals("save_torch: " + path +
                             ": write failed after 100 bytes (simulated by tg::io::detail::fail_writes_after)"));
    CHECK(tg_test::read_bytes(path) == before);
    CHECK(tmp.entries() == std::vector<std::string>{"f.pt"});
    io::Tensor bad = io::Tensor::from(xt::xarray<float>{1, 2});
    bad.bytes.pop_back();
    CHECK_THROWS_WITH(io::serialize_torch(io::File{{{"w", bad}}, {}}),
                      Equals("serialize_torch: tensor 'w' has 7 bytes, but shape [2] of F32 needs 8"));
}

TEST_CASE("load_torch refuses damaged archives: truncated, bad CRC, missing entries, not a zip", "[io][torch][errors]")
{
    const std::string good = tg_test::read_bytes(dir + "/model.pt");
    REQUIRE(good.size() > 1000);
    const std::string w = "parse_torch: t.pt: ";
    CHECK_THROWS_WITH(io::parse_torch("", "t.pt"),
                      Equals(w + "the file has 0 bytes, too few for a zip archive's end record (truncated?)"));
    CHECK_THROWS_WITH(io::parse_torch(std::string(100, 'x'), "t.pt"),
                      StartsWith(w + "no zip end record (the archive is truncated or is no zip archive) (libzip: "));
    // Every truncation is refused.
    for (std::size_t n = 0; n < good.size(); n += 7) {
        INFO("first " << n << " bytes");
        CHECK_THROWS_AS(io::parse_torch(good.substr(0, n), "t.pt"), tg::Error);
    }
    CHECK_THROWS_WITH(io::parse_torch(good.substr(0, good.size() - 1), "t.pt"), Contains("no zip end record"));

    // A flipped bit in a storage's data: the CRC catches it.
    const io::File clean = io::parse_torch(good, "t.pt");
    const io::Tensor& weight = clean.tensors.at("0.weight");
    std::string flipped = good;
    const auto at = flipped.find(std::string(weight.bytes.begin(), weight.bytes.end()));
    REQUIRE(at != std::string::npos);
    flipped[at + 5] = static_cast<char>(flipped[at + 5] ^ 0x10);
    CHECK_THROWS_WITH(io::parse_torch(flipped, "t.pt"),
                      StartsWith(w + "entry 'model/data/0': CRC-32 mismatch, the archive is corrupt (libzip: "));

    // Every byte changed, one at a time: refused, or loaded (a change in padding, say), never a crash.
    std::size_t refused = 0;
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0xa5);
        try {
            io::parse_torch(bad, "t.pt");
        } catch (const tg::Error&) {
            ++refused;
        }
    }
    CHECK(refused > good.size() / 2);

    CHECK_THROWS_WITH(io::parse_torch(tg_torch::zip_stored({{"archive/version", "3\n"}}), "t.pt"),
                      Equals(w + "the archive has no 'archive/data.pkl': not a torch.save file (or it is truncated)"));
    CHECK_THROWS_WITH(io::parse_torch(tg_torch::zip_stored({{"data.pkl", "."}}), "t.pt"),
                      Equals(w + "the archive's first entry 'data.pkl' lies in no folder: not a torch.save file"));
    CHECK_THROWS_WITH(io::parse_torch(tg_torch::zip_stored({}), "t.pt"),
                      Equals(w + "the zip archive is empty: not a torch.save file"));
    CHECK_THROWS_WITH(io::parse_torch(tg_torch::zip_stored({{"a/data.pkl", "."}, {"a/data.pkl", "."}}), "t.pt"),
                      Equals(w + "the archive holds two entries named 'a/data.pkl'"));
    CHECK_THROWS_WITH(parse(one_tensor(4, 0, {4}, {1})),
                      Equals(w + "tensor 'w': its storage 'archive/data/0' is not in the archive"));
    CHECK_THROWS_WITH(parse(one_tensor(4, 0, {4}, {1}), {{"0", tg_torch::floats(3)}}),
                      Equals(w + "tensor 'w': its storage 'archive/data/0' holds 12 bytes, but data.pkl declares "
                                 "4 elements of float32 (16 bytes)"));
    CHECK_THROWS_WITH(
        io::parse_torch(tg_torch::zip_stored({{"a/data.pkl", Pickle().done()}, {"a/byteorder", "middle"}}), "t.pt"),
        Equals(w + "'a/byteorder' is neither \"little\" nor \"big\""));
}

TEST_CASE("load_torch reads deflated and zip64 archives and refuses what it cannot read", "[io][torch][errors]")
{
    const std::string w = "parse_torch: t.pt: ";
    const std::string deflated = tg_test::read_bytes(dir + "/deflated.pt");
    CHECK(io::parse_torch(deflated, "t.pt") == io::load_torch(dir + "/model.pt"));
    // The method field of the first entry's local and central headers: 8 (deflate) -> 12 (bzip2).
    // (libzip could inflate bzip2; PyTorch cannot, and neither may we.)
    std::string bzip = deflated;
    const auto central = bzip.find(std::string("PK\x01\x02", 4));
    REQUIRE(central != std::string::npos);
    bzip[8] = 12;
    bzip[central + 10] = 12;
    CHECK_THROWS_WITH(io::parse_torch(bzip, "t.pt"),
                      Equals(w + "entry 'model/data.pkl' uses compression method 12 (only stored and deflated "
                                 "entries are read)"));
    // Changed in the central directory alone, the method disagrees with the local header's.
    std::string central_only = deflated;
    central_only[central + 10] = 12;
    CHECK_THROWS_WITH(io::parse_torch(central_only, "t.pt"), StartsWith(w + "the zip archive is inconsistent"));
    std::string encrypted = deflated;
    encrypted[central + 8] = 1;
    CHECK_THROWS_WITH(io::parse_torch(encrypted, "t.pt"), Equals(w + "entry 'model/data.pkl' is encrypted"));
    // Corrupt deflate data: the first entry's data starts after its local header and name.
    std::string corrupt = deflated;
    corrupt[30 + std::string("model/data.pkl").size()] = static_cast<char>(0xff);
    CHECK_THROWS_WITH(io::parse_torch(corrupt, "t.pt"),
                      StartsWith(w + "entry 'model/data.pkl': the deflated data is corrupt or truncated (libzip: "));
    // A declared size beyond what deflate can expand to is not allocated: the uncompressed size
    // in the first entry's local and central headers (they must agree, or libzip refuses the
    // archive as inconsistent before any entry is read).
    std::string lying = deflated;
    for (const std::size_t size_at : {std::size_t{22}, central + 24}) {
        lying[size_at] = 0;
        lying[size_at + 1] = 0;
        lying[size_at + 2] = 0;
        lying[size_at + 3] = 0x40;  // 1 GiB
    }
    CHECK_THROWS_WITH(io::parse_torch(lying, "t.pt"),
                      StartsWith(w + "entry 'model/data.pkl' declares 1073741824 bytes, more than its "));

    // zip64: PyTorch's reader (miniz) reads what Python's zipfile writes (zip64 extra fields in
    // the local headers), and so do we.
    const std::string model = tg_test::read_bytes(dir + "/model.pt");
    CHECK(io::load_torch(dir + "/zip64.pt") == io::parse_torch(model, "t.pt"));
    // save_torch's test hook: a zip64 extra field in every local header, right after the name.
    // (libzip writes zip64 end records only when an archive needs them: beyond 65534 entries
    // or 4 GiB; no hook makes it write them for a small archive.)
    io::detail::force_zip64(true);
    const std::string forced = io::serialize_torch(from_tapegrad());
    io::detail::force_zip64(false);
    const std::string first = "archive/data.pkl";
    REQUIRE(forced.compare(0, 4, std::string("PK\x03\x04", 4)) == 0);
    REQUIRE(forced.compare(30, first.size(), first) == 0);
    CHECK(forced.compare(30 + first.size(), 4, std::string("\x01\x00\x10\x00", 4)) == 0);
    CHECK(io::parse_torch(forced, "t.pt") == from_tapegrad());
    // zip64 end records: PyTorch's writer adds them to every archive, so model.pt has them. With
    // the plain end record's counts, directory size and offset saturated, as a writer must
    // write them for a large archive, only the zip64 end record has the values ...
    const auto end = model.rfind(std::string("PK\x05\x06", 4));
    REQUIRE(end != std::string::npos);
    std::string saturated = model;
    for (std::size_t i = 8; i < 20; ++i) saturated[end + i] = static_cast<char>(0xff);
    CHECK(io::parse_torch(saturated, "t.pt") == io::parse_torch(model, "t.pt"));
    // ... and without the zip64 locator that points to it, the archive is refused.
    std::string no_locator = saturated;
    no_locator[no_locator.find(std::string("PK\x06\x07", 4)) + 2] = 'x';
    CHECK_THROWS_WITH(io::parse_torch(no_locator, "t.pt"), StartsWith(w + "the zip archive is inconsistent"));
}

TEST_CASE("load_torch refuses pickles it must not trust: bad opcodes, views beyond storage, huge sizes, cycles",
          "[io][torch][errors]")
{
    const std::string w = "parse_torch: t.pt: ";
    const std::string storage = tg_torch::floats(12);
    // Views: in bounds (a transposed one), and one element past the storage.
    CHECK((parse(one_tensor(12, 2, {2, 5}, {1, 2}), {{"0", storage}}).tensors.at("w").to<float>() ==
           xt::xarray<float>{{2, 4, 6, 8, 10}, {3, 5, 7, 9, 11}}));
    CHECK_THROWS_WITH(parse(one_tensor(12, 3, {2, 5}, {1, 2}), {{"0", storage}}),
                      Equals(w + "tensor 'w': the view (size [2, 5], stride [1, 2], offset 3) reaches element 12, but "
                                 "its storage 'archive/data/0' holds 12 elements"));
    // An empty view checks no bounds (as PyTorch), a 0-d one reads one element at its offset.
    CHECK(parse(one_tensor(12, 99, {0, 3}, {3, 1}), {{"0", storage}}).tensors.at("w").shape ==
          std::vector<std::size_t>{0, 3});
    CHECK((parse(one_tensor(12, 11, {}, {}), {{"0", storage}}).tensors.at("w").to<float>() == xt::xarray<float>(11)));
    // Huge sizes: more elements than can be counted; a stride-0 view larger than any file;
    // strides that overflow.
    CHECK_THROWS_WITH(parse(one_tensor(12, 0, {1ll << 40, 1ll << 40}, {0, 0}), {{"0", storage}}),
                      Equals(w + "tensor 'w': shape [1099511627776, 1099511627776] has too many elements"));
    CHECK_THROWS_WITH(parse(one_tensor(12, 0, {1ll << 40}, {0}), {{"0", storage}}),
                      StartsWith(w + "tensor 'w': the tensors' views add up to more bytes than the file can account "
                                     "for (4398046511104 bytes more"));
    CHECK_THROWS_WITH(parse(one_tensor(12, 0, {3, 3}, {1ll << 62, 1ll << 62}), {{"0", storage}}),
                      Contains("reaches beyond any storage, but its storage 'archive/data/0' holds 12 elements"));
    CHECK_THROWS_WITH(parse(one_tensor(1ll << 62, 0, {2}, {1}), {{"0", storage}}),
                      Contains("declares 4611686018427387904 elements, too many"));
    CHECK_THROWS_WITH(parse(one_tensor(12, 0, {-1}, {1}), {{"0", storage}}),
                      StartsWith(w + "data.pkl: a tensor's size holds a negative int (at byte "));
    CHECK_THROWS_WITH(parse(one_tensor(12, 0, {2, 3}, {1}), {{"0", storage}}),
                      StartsWith(w + "data.pkl: a tensor's size [2, 3] and stride [1] differ in length"));

    // Opcodes: unknown, past the end, stack and memo misuse.
    CHECK_THROWS_WITH(parse(Pickle().op('\xff').done()),
                      Equals(w + "data.pkl: unknown or unsupported pickle opcode 0xff (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().op('i').done()),
                      Equals(w + "data.pkl: unknown or unsupported pickle opcode 0x69 ('i') (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().op('}').bytes()),
                      Equals(w + "data.pkl: the pickle ends without a STOP opcode (truncated?) (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().raw(std::string("X\x10\0\0\0abc", 8)).done()),
                      Equals(w + "data.pkl: the pickle ends inside an opcode's argument (truncated?) (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().op('a').done()),
                      Equals(w + "data.pkl: the pickle pops from an empty stack (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().op(']').op('(').op('a').done()),
                      Equals(w + "data.pkl: the pickle pops from an empty stack (at byte 4)"));
    CHECK_THROWS_WITH(parse(Pickle().raw("h\x07").done()),
                      Equals(w + "data.pkl: the pickle gets memo entry 7, which is not set (at byte 2)"));
    CHECK_THROWS_WITH(parse(Pickle().op(')').op('N').op('a').done()), Contains("APPEND to a tuple"));
    CHECK_THROWS_WITH(parse(Pickle().op(']').op(']').op('b').done()),
                      Contains("BUILD sets the state of a list from a list (only a dict's attributes are set)"));
    CHECK_THROWS_WITH(parse(Pickle().op('}').op(')').op('N').op('s').done()),
                      Contains("a dict key is a tuple, not a str or number"));
    CHECK_THROWS_WITH(parse(Pickle().raw("\x8a\x09").raw(std::string(9, '\1')).done()),
                      Contains("an int of 9 bytes is too large (at most 8)"));
    CHECK_THROWS_WITH(parse(Pickle().raw(std::string("X\x02\0\0\0\xc3\x28", 7)).done()),
                      Contains("a string is not valid UTF-8"));
    CHECK_THROWS_WITH(parse(Pickle().str("storage").op('\x85').op('Q').done()),
                      Contains("a persistent id is not ('storage', type, key, location, numel)"));
    CHECK_THROWS_WITH(parse(Pickle().op(']').str("x").op('Q').op('a').done()), Contains("a persistent id is not"));

    // Structures: a list that contains itself, a structure shared exponentially, colliding keys.
    CHECK_THROWS_WITH(parse(Pickle().op(']').put(0).get(0).op('a').done()),
                      StartsWith(w + "the object nests deeper than 200 levels at '0.0.0.0.0.") &&
                          EndsWith(".0.0' (a structure that contains itself?)"));
    Pickle bomb;
    bomb.str(std::string(1000, 'x')).put(0);
    for (int i = 0; i < 60; ++i) bomb.get(0).get(0).op('\x86').put(0);
    CHECK_THROWS_WITH(parse(bomb.done()), Contains("expand to too much text (an object shared many times over?)"));
    CHECK_THROWS_WITH(
        parse(
            Pickle().op('}').str("a.b").integer(1).op('s').str("a").op('}').str("b").integer(2).op('s').op('s').done()),
        Equals(w + "key 'a.b' appears twice (nested keys joined with '.' collide)"));
    CHECK_THROWS_WITH(parse(Pickle().op('}').str("g").global("torch", "FloatStorage").op('s').done()),
                      Equals(w + "the value at 'g' is the global 'torch.FloatStorage' itself, not data"));
    // Two persistent ids for one key must agree.
    const std::string twice = Pickle()
                                  .op('}')
                                  .str("a")
                                  .tensor("0", "FloatStorage", 12, 0, {2}, {1})
                                  .op('s')
                                  .str("b")
                                  .tensor("0", "DoubleStorage", 6, 0, {2}, {1})
                                  .op('s')
                                  .done();
    CHECK_THROWS_WITH(parse(twice, {{"0", storage}}),
                      Contains("storage '0' is declared twice, with different types or sizes"));
    // Plain values of every kind, and a dict's attributes, which are no entries.
    const io::File plain = parse(Pickle()
                                     .op('}')
                                     .put(1)
                                     .str("i")
                                     .integer(-5)
                                     .op('s')
                                     .str("f")
                                     .real(0.25)
                                     .op('s')
                                     .integer(7)
                                     .raw("\x88")
                                     .op('s')
                                     .op('}')
                                     .str("_metadata")
                                     .op('}')
                                     .op('s')
                                     .op('b')
                                     .done());
    CHECK(plain.metadata == std::map<std::string, std::string>{{"i", "-5"}, {"f", "0.25"}, {"7", "True"}});
    CHECK(plain.tensors.empty());
}
