// Safetensors reading and writing: round trips, files from other tools, F16/BF16, every
// truncation and single-byte corruption of a header, each rejection with its message,
// atomic saves, and model checkpoints.

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

namespace io = tg::io;
namespace fs = std::filesystem;
using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;

namespace {

using tg_test::TempDir;

std::string le64(std::uint64_t v)
{
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

std::uint64_t read_le64(const std::string& s)
{
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[i]);
    return v;
}

// A file as any writer lays it out: length, header, data.
std::string file_bytes(const std::string& header, const std::string& data = "")
{
    return le64(header.size()) + header + data;
}

std::string u16s(std::initializer_list<std::uint16_t> values)
{
    std::string s;
    for (auto v : values) {
        s += static_cast<char>(v & 0xff);
        s += static_cast<char>(v >> 8);
    }
    return s;
}

std::string f32s(std::initializer_list<float> values)
{
    std::string s;
    for (float f : values) {
        std::uint32_t u;
        std::memcpy(&u, &f, 4);
        for (int i = 0; i < 4; ++i) s += static_cast<char>((u >> (8 * i)) & 0xff);
    }
    return s;
}

// The message of the tg::Error that parsing throws; any other exception fails the test.
std::string parse_error(const std::string& bytes)
{
    try {
        io::parse(bytes, "bad.safetensors");
    } catch (const tg::Error& e) {
        return e.what();
    }
    return "(no error)";
}

std::string header_error(const std::string& header, const std::string& data = "")
{
    return parse_error(file_bytes(header, data));
}

// A small file: a few tensors of a few elements, so that corrupting every header byte is quick.
io::File small_file()
{
    io::File f;
    f.tensors["a"] = io::Tensor::from(xt::xarray<float>{1.5f, -2.0f});
    f.tensors["b"] = io::Tensor::from(xt::xarray<std::int64_t>(std::int64_t{7}));
    xt::xarray<double> column = {0.25, -8.0};
    column.reshape({2, 1});
    f.tensors["c"] = io::Tensor::from(column);
    f.metadata["k"] = "v";
    return f;
}
// CHECK(a == b) on a temporary xarray trips over xtensor's operator overloads; references don't.
template <class T> void check_equal(const xt::xarray<T>& actual, const xt::xarray<T>& expected)
{
    CHECK(actual == expected);
}

template <class T> std::vector<xt::xarray<T>> values_of(const tg::nn::Module<T>& m)
{
    std::vector<xt::xarray<T>> out;
    for (const auto& p : m.parameters()) out.push_back(p.value());
    return out;
}

}  // namespace

TEST_CASE("a file round-trips through serialize and parse with its bytes unchanged", "[io]")
{
    io::File f;
    xt::xarray<double> cube = xt::arange<double>(24);
    cube.reshape({2, 3, 4});
    f.tensors["weights"] = io::Tensor::from(xt::xarray<float>{{1.5f, -2.0f, 3.25f}, {0.0f, 1e-30f, -7.0f}});
    f.tensors["cube"] = io::Tensor::from(cube);
    f.tensors["scalar"] = io::Tensor::from(xt::xarray<double>(3.5));
    f.tensors["empty"] = io::Tensor::from(xt::xarray<float>(xt::zeros<float>({0})));
    f.tensors["steps"] = io::Tensor::from(xt::xarray<std::int64_t>{-1, 0, std::numeric_limits<std::int64_t>::max(),
                                                                   std::numeric_limits<std::int64_t>::min()});
    f.tensors["mask"] = io::Tensor::from(xt::xarray<std::uint8_t>{0, 255, 7});
    f.tensors["counts"] = io::Tensor::from(xt::xarray<std::int32_t>{-5, 1 << 30});
    f.metadata = {{"epoch", "12"}, {"note", "caf\xc3\xa9 \xe2\x9c\x93"}, {"", "empty key"}};

    const std::string bytes = io::serialize(f);
    const io::File back = io::parse(bytes, "mem");
    CHECK(back == f);
    CHECK(io::serialize(back) == bytes);

    CHECK(back.tensors.at("scalar").shape.empty());
    CHECK(back.tensors.at("scalar").to<double>()() == 3.5);
    CHECK(back.tensors.at("empty").shape == std::vector<std::size_t>{0});
    CHECK(back.tensors.at("empty").to<float>().size() == 0);
    check_equal(back.tensors.at("cube").to<double>(), cube);
    CHECK(back.tensors.at("steps").to<std::int64_t>()(2) == std::numeric_limits<std::int64_t>::max());
    check_equal(back.tensors.at("mask").to<std::uint8_t>(), xt::xarray<std::uint8_t>{0, 255, 7});
    check_equal(back.tensors.at("counts").to<std::int32_t>(), xt::xarray<std::int32_t>{-5, 1 << 30});
    CHECK(back.tensors.at("weights").dtype == io::Dtype::f32);
    CHECK(back.tensors.at("cube").dtype == io::Dtype::f64);

    // What other tools see: a padded header with the checksum entries, each tensor aligned.
    const std::uint64_t n = read_le64(bytes);
    CHECK(n % 8 == 0);
    const auto header = nlohmann::json::parse(bytes.substr(8, n));
    CHECK(header["__metadata__"]["tapegrad.checksum"] == "crc32");
    CHECK(header["__metadata__"]["tapegrad.crc32"].get<std::string>().size() == 8);
    CHECK(header["__metadata__"]["epoch"] == "12");
    for (const auto& [name, t] : f.tensors) {
        INFO(name);
        CHECK(header[name]["data_offsets"][0].get<std::size_t>() % io::dtype_size(t.dtype) == 0);
    }
    CHECK(back.metadata.count("tapegrad.crc32") == 0);
    CHECK(back.metadata.count("tapegrad.checksum") == 0);
}

TEST_CASE("dtypes have the safetensors names and sizes", "[io]")
{
    using D = io::Dtype;
    const std::vector<std::tuple<D, std::string, std::size_t>> table = {
        {D::f64, "F64", 8}, {D::f32, "F32", 4}, {D::f16, "F16", 2}, {D::bf16, "BF16", 2}, {D::i64, "I64", 8},
        {D::i32, "I32", 4}, {D::i16, "I16", 2}, {D::i8, "I8", 1},   {D::u8, "U8", 1},     {D::boolean, "BOOL", 1}};
    for (const auto& [dtype, name, size] : table) {
        CHECK(io::dtype_name(dtype) == name);
        CHECK(io::dtype_size(dtype) == size);
        // Each name is accepted when reading, with its size.
        const std::string header =
            R"({"t":{"dtype":")" + name + R"(","shape":[2],"data_offsets":[0,)" + std::to_string(2 * size) + "]}}";
        CHECK(io::parse(file_bytes(header, std::string(2 * size, '\0')), "t").tensors.at("t").dtype == dtype);
    }
    io::Tensor t = io::Tensor::from(xt::xarray<float>(xt::zeros<float>({2, 3})));
    CHECK(t.numel() == 6);
    t.shape = {};
    CHECK(t.numel() == 1);
    t.shape = {std::size_t{1} << 40, std::size_t{1} << 40};
    CHECK_THROWS_WITH(t.numel(), Equals("Tensor::numel: shape [1099511627776, 1099511627776] has too many elements"));
}

TEST_CASE("a file written by another tool, without a checksum, loads", "[io]")
{
    const std::string header =
        R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}})";
    const io::File f = io::parse(file_bytes(header + "   ", f32s({1.0f, -2.5f})), "hf.safetensors");
    check_equal(f.tensors.at("w").to<float>(), xt::xarray<float>{1.0f, -2.5f});
    check_equal(f.tensors.at("w").to<double>(), xt::xarray<double>{1.0, -2.5});
    CHECK(f.metadata == std::map<std::string, std::string>{{"format", "pt"}});

    // No metadata at all, an empty name (allowed, as in the reference implementation), and
    // unknown fields in an entry (ignored, as there).
    const io::File g = io::parse(
        file_bytes(R"({"":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1]}})", "\x09"), "other.safetensors");
    CHECK(g.tensors.at("").to<std::int64_t>()(0) == 9);
    CHECK(g.metadata.empty());
    CHECK(io::parse(file_bytes("{}"), "empty.safetensors") == io::File{});
}

TEST_CASE("F16 and BF16 values decode exactly", "[io]")
{
    const std::string header = R"({"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},)"
                               R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[14,22]}})";
    // f16: 1, -2, smallest subnormal 2^-24, largest 65504, 1/3 rounded, -inf, NaN.
    // bf16: 1, -3, 2^-133 (a float subnormal), +inf.
    const std::string data =
        u16s({0x3C00, 0xC000, 0x0001, 0x7BFF, 0x3555, 0xFC00, 0x7E00}) + u16s({0x3F80, 0xC040, 0x0001, 0x7F80});
    const io::File f = io::parse(file_bytes(header, data), "half.safetensors");
    const xt::xarray<double> h = f.tensors.at("h").to<double>();
    CHECK(h(0) == 1.0);
    CHECK(h(1) == -2.0);
    CHECK(h(2) == std::ldexp(1.0, -24));
    CHECK(h(3) == 65504.0);
    CHECK(h(4) == 0.333251953125);
    CHECK(h(5) == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(h(6)));
    const xt::xarray<float> b = f.tensors.at("b").to<float>();
    CHECK(b(0) == 1.0f);
    CHECK(b(1) == -3.0f);
    CHECK(b(2) == std::ldexp(1.0f, -133));
    CHECK(b(3) == std::numeric_limits<float>::infinity());
    CHECK_THROWS_WITH(f.tensors.at("h").to<std::int64_t>(),
                      Equals("Tensor::to: element 2 of the F16 tensor (5.96046e-08) is not an integer, so it does not "
                             "convert to int64"));
}

TEST_CASE("Tensor::to converts integer and BOOL data and refuses values the target cannot hold", "[io]")
{
    const std::string header = R"({"i16":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},)"
                               R"("i8":{"dtype":"I8","shape":[2],"data_offsets":[4,6]},)"
                               R"("ok":{"dtype":"BOOL","shape":[2],"data_offsets":[6,8]},)"
                               R"("bad":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}})";
    const std::string data = u16s({static_cast<std::uint16_t>(-2), 300}) + "\x80\x7f" + std::string("\x00\x01\x02", 3);
    const io::File f = io::parse(file_bytes(header, data), "ints.safetensors");
    check_equal(f.tensors.at("i16").to<float>(), xt::xarray<float>{-2.0f, 300.0f});
    check_equal(f.tensors.at("i8").to<std::int64_t>(), xt::xarray<std::int64_t>{-128, 127});
    check_equal(f.tensors.at("ok").to<double>(), xt::xarray<double>{0.0, 1.0});
    CHECK_THROWS_WITH(f.tensors.at("bad").to<float>(),
                      Equals("Tensor::to: element 0 of the BOOL tensor is byte 2, neither 0 nor 1"));
    CHECK_THROWS_WITH(
        f.tensors.at("i16").to<std::uint8_t>(),
        Equals("Tensor::to: element 0 of the I16 tensor (-2) is out of range, so it does not convert to uint8"));

    const io::Tensor big = io::Tensor::from(xt::xarray<double>{1.0, 1e300});
    CHECK_THROWS_WITH(big.to<float>(), Equals("Tensor::to: element 1 of the F64 tensor (1e+300) is out of range, so it "
                                              "does not convert to float"));
    CHECK_THROWS_WITH(big.to<std::int64_t>(), Contains("element 1 of the F64 tensor (1e+300) is out of range"));
    const io::Tensor special = io::Tensor::from(xt::xarray<float>{std::nanf(""), 2.5f});
    CHECK(std::isnan(special.to<double>()(0)));
    CHECK_THROWS_WITH(special.to<std::int32_t>(), Contains("element 0 of the F32 tensor (nan) is not an integer"));
    check_equal(io::Tensor::from(xt::xarray<double>{-3.0, 9007199254740992.0}).to<std::int64_t>(),
                xt::xarray<std::int64_t>{-3, 9007199254740992});

    io::Tensor broken;
    broken.dtype = io::Dtype::f32;
    broken.shape = {2};
    broken.bytes.resize(4);
    CHECK_THROWS_WITH(broken.to<float>(), Equals("Tensor::to: the tensor has 4 bytes, but shape [2] of F32 needs 8"));
}

TEST_CASE("every truncation of a file is rejected, none crashes or loads", "[io]")
{
    const std::string bytes = io::serialize(small_file());
    std::size_t rejected = 0;
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        try {
            io::parse(bytes.substr(0, n), "cut.safetensors");
            FAIL_CHECK("the first " << n << " of " << bytes.size() << " bytes loaded");
        } catch (const tg::Error& e) {
            if (std::string(e.what()).rfind("cut.safetensors: ", 0) != 0)
                FAIL_CHECK("message without the path: " << e.what());
            ++rejected;
        }
    }
    CHECK(rejected == bytes.size());
    CHECK(io::parse(bytes, "cut.safetensors") == small_file());
}

TEST_CASE("a corrupted header byte is rejected or changes nothing, and corrupted data fails the checksum", "[io]")
{
    const io::File original = small_file();
    const std::string bytes = io::serialize(original);
    const std::size_t header_end = 8 + read_le64(bytes);
    std::size_t rejected = 0, unchanged = 0;
    for (std::size_t pos = 0; pos < header_end; ++pos) {
        for (unsigned mask : {0x01u, 0x02u, 0x04u, 0x08u, 0x10u, 0x20u, 0x40u, 0x80u, 0xFFu}) {
            std::string b = bytes;
            b[pos] = static_cast<char>(static_cast<unsigned char>(b[pos]) ^ mask);
            try {
                if (io::parse(b, "flip.safetensors") == original) {
                    ++unchanged;
                } else {
                    FAIL_CHECK("byte " << pos << " ('" << bytes[pos] << "') ^ " << mask
                                       << " loaded different contents");
                }
            } catch (const tg::Error&) {
                ++rejected;
            }
        }
    }
    CHECK(rejected + unchanged == 9 * header_end);
    CHECK(rejected > 8 * header_end);

    for (std::size_t pos = header_end; pos < bytes.size(); ++pos) {
        std::string b = bytes;
        b[pos] = static_cast<char>(b[pos] ^ 0x10);
        INFO("data byte " << pos);
        CHECK_THAT(parse_error(b), StartsWith("bad.safetensors: checksum mismatch: the file is corrupt (stored '"));
    }
}

TEST_CASE("a malformed length or header is rejected with the path and what is wrong", "[io]")
{
    CHECK(parse_error("abc") ==
          "bad.safetensors: the file has 3 bytes, too few for the 8-byte header length (truncated?)");
    CHECK(parse_error(le64(100) + "{}") ==
          "bad.safetensors: the header length 100 exceeds the 2 bytes that follow it (truncated?)");
    CHECK(parse_error(le64(200ull << 20) + "{}") ==
          "bad.safetensors: the header length 209715200 exceeds the limit of 104857600 bytes (100 MiB)");
    CHECK(parse_error(le64(~0ull) + "{}") ==
          "bad.safetensors: the header length 18446744073709551615 exceeds the limit of 104857600 bytes (100 MiB)");
    CHECK_THAT(header_error(R"({"w":)"),
               StartsWith("bad.safetensors: the header is not valid UTF-8 JSON (parse error"));
    CHECK_THAT(header_error(""), StartsWith("bad.safetensors: the header is not valid UTF-8 JSON"));
    CHECK_THAT(header_error("{\"w\xff\":{}}"), StartsWith("bad.safetensors: the header is not valid UTF-8 JSON") &&
                                                   Contains("ill-formed UTF-8 byte") && Contains("\\xff"));
    CHECK_THAT(header_error("{} x"), StartsWith("bad.safetensors: the header is not valid UTF-8 JSON"));
    CHECK(header_error(std::string("{}\0 garbage", 11)) == "bad.safetensors: the header contains a NUL byte");
    CHECK(header_error("[1, 2]") == "bad.safetensors: the header is an array, not an object");
    CHECK(header_error(R"({"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", "abcd") ==
          "bad.safetensors: the header nests deeper than a safetensors header does");
    CHECK(header_error(std::string(100000, '[')) ==
          "bad.safetensors: the header nests deeper than a safetensors header does");
}

TEST_CASE("a malformed tensor entry is rejected naming the tensor", "[io]")
{
    auto entry = [](const std::string& body, const std::string& data = "abcd") {
        return header_error(R"({"w":)" + body + "}", data);
    };
    CHECK(entry("3") == "bad.safetensors: tensor 'w' is a number, not an object");
    CHECK(entry(R"({"shape":[1],"data_offsets":[0,4]})") == R"(bad.safetensors: tensor 'w' has no "dtype")");
    CHECK(entry(R"({"dtype":"F32","data_offsets":[0,4]})") == R"(bad.safetensors: tensor 'w' has no "shape")");
    CHECK(entry(R"({"dtype":"F32","shape":[1]})") == R"(bad.safetensors: tensor 'w' has no "data_offsets")");
    CHECK(entry(R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})") ==
          R"(bad.safetensors: tensor 'w': "dtype" is a number, not a string)");
    CHECK(entry(R"({"dtype":"F8","shape":[1],"data_offsets":[0,4]})") ==
          "bad.safetensors: tensor 'w': unknown dtype 'F8'");
    CHECK(entry(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})") ==
          "bad.safetensors: tensor 'w': unknown dtype 'f32'");
    CHECK(entry(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})") ==
          R"(bad.safetensors: tensor 'w': "shape" is a string, not an array)");
    CHECK(entry(R"({"dtype":"F32","shape":[1,-1],"data_offsets":[0,4]})") ==
          R"(bad.safetensors: tensor 'w': "shape" must hold non-negative integers, element 1 is -1)");
    CHECK(entry(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})") ==
          R"(bad.safetensors: tensor 'w': "shape" must hold non-negative integers, element 0 is 1.0)");
    CHECK(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-1,4]})") ==
          R"(bad.safetensors: tensor 'w': "data_offsets" must be [begin, end], two non-negative integers, not [-1,4])");
    CHECK(
        entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.5]})") ==
        R"(bad.safetensors: tensor 'w': "data_offsets" must be [begin, end], two non-negative integers, not [0,4.5])");
    CHECK_THAT(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,4]})"),
               StartsWith(R"(bad.safetensors: tensor 'w': "data_offsets" must be [begin, end])"));
    CHECK_THAT(entry(R"({"dtype":"F32","shape":[1],"data_offsets":{"0":4}})"),
               StartsWith(R"(bad.safetensors: tensor 'w': "data_offsets" must be [begin, end])"));
    CHECK_THAT(entry(R"({"dtype":"F32","shape":[1],"data_offsets":")" + std::string(1000, 'x') + "\"}"),
               StartsWith(R"(bad.safetensors: tensor 'w': "data_offsets" must be [begin, end], two non-negative )"
                          R"(integers, not "xxxxx)") &&
                   Catch::EndsWith("xxx..."));
    CHECK(entry(R"({"dtype":"F32","shape":[3],"data_offsets":[0,4]})") ==
          "bad.safetensors: tensor 'w': shape [3] of F32 needs 12 bytes, but data_offsets [0, 4] hold 4");
    // 2^32 * 2^32 * 4 bytes overflows 64 bits; a product that wraps to 4 must not pass.
    CHECK(entry(R"({"dtype":"F32","shape":[4294967296,4294967296,1],"data_offsets":[0,4]})") ==
          "bad.safetensors: tensor 'w': shape [4294967296, 4294967296, 1] has too many elements");
    CHECK(entry(R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})") ==
          "bad.safetensors: tensor 'w': data_offsets [4, 0] end before they begin");
    CHECK(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})") ==
          "bad.safetensors: tensor 'w': data_offsets [0, 8] reach past the end of the 4-byte data buffer");
    CHECK(
        entry(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})") ==
        "bad.safetensors: tensor 'w': data_offsets [18446744073709551612, 18446744073709551615] reach past the end of "
        "the 4-byte data buffer");
}

TEST_CASE("byte ranges must tile the data buffer exactly", "[io]")
{
    const std::string a4 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":)";
    const std::string b4 = R"("b":{"dtype":"F32","shape":[1],"data_offsets":)";
    CHECK(header_error("{" + a4 + "[0,4]}," + b4 + "[4,8]}}", "12345678") == "(no error)");
    CHECK(header_error("{" + a4 + "[0,4]}," + b4 + "[2,6]}}", "123456") ==
          "bad.safetensors: tensors 'a' and 'b' overlap ([0, 4] and [2, 6])");
    CHECK(header_error("{" + a4 + "[0,4]}," + b4 + "[0,4]}}", "1234") ==
          "bad.safetensors: tensors 'a' and 'b' overlap ([0, 4] and [0, 4])");
    CHECK(header_error("{" + a4 + "[0,4]}," + b4 + "[6,10]}}", "1234567890") ==
          "bad.safetensors: bytes [4, 6) of the data buffer belong to no tensor");
    CHECK(header_error("{" + a4 + "[2,6]}}", "123456") ==
          "bad.safetensors: bytes [0, 2) of the data buffer belong to no tensor");
    CHECK(header_error("{" + a4 + "[0,4]}}", "12345678") ==
          "bad.safetensors: bytes [4, 8) of the data buffer belong to no tensor");
    CHECK(header_error("{}", "x") == "bad.safetensors: bytes [0, 1) of the data buffer belong to no tensor");
    // Empty tensors take no bytes and may sit at any boundary, but not inside another tensor.
    const std::string e0 = R"("e":{"dtype":"F64","shape":[0],"data_offsets":)";
    CHECK(header_error("{" + a4 + "[0,4]}," + e0 + "[4,4]}}", "1234") == "(no error)");
    CHECK(header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)" + e0 + "[4,4]}}", "12345678") ==
          "bad.safetensors: tensors 'a' and 'e' overlap ([0, 8] and [4, 4])");
}

TEST_CASE("duplicate keys and malformed metadata are rejected", "[io]")
{
    const std::string w = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
    CHECK(header_error(R"({"w":)" + w + R"(,"w":)" + w + "}", "x") == "bad.safetensors: duplicate tensor name 'w'");
    CHECK(header_error(R"({"w":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "x") ==
          "bad.safetensors: tensor 'w' has the key 'dtype' twice");
    CHECK(header_error(R"({"__metadata__":{"k":"1","k":"2"}})") == "bad.safetensors: duplicate metadata key 'k'");
    CHECK(header_error(R"({"__metadata__":{},"__metadata__":{}})") ==
          "bad.safetensors: the header has two __metadata__ entries");
    CHECK(header_error(R"({"w":[{"a":1,"a":2}]})") == "bad.safetensors: tensor 'w' has the key 'a' twice");
    CHECK(header_error(R"({"__metadata__":{"k":{"a":1,"a":2}}})") ==
          "bad.safetensors: __metadata__ has the key 'a' twice");
    CHECK(header_error(R"([{"a":1,"a":2}])") == "bad.safetensors: the header has the key 'a' twice");
    CHECK(header_error(R"({"__metadata__":["k"]})") == "bad.safetensors: __metadata__ is an array, not an object");
    CHECK(header_error(R"({"__metadata__":{"k":1}})") ==
          "bad.safetensors: __metadata__ must map to strings, but 'k' is a number");
    CHECK(header_error(R"({"__metadata__":{"k":null}})") ==
          "bad.safetensors: __metadata__ must map to strings, but 'k' is null");
    // "__metadata__" is always the metadata key: an entry there is read as metadata.
    CHECK(header_error(R"({"__metadata__":)" + w + "}", "x") ==
          "bad.safetensors: __metadata__ must map to strings, but 'data_offsets' is an array");
}

TEST_CASE("a damaged checksum entry is an error, not a file without a checksum", "[io]")
{
    CHECK(header_error(R"({"__metadata__":{"tapegrad.checksum":"crc32"}})") ==
          "bad.safetensors: checksum entry 'tapegrad.crc32' is missing: the file is corrupt");
    CHECK(header_error(R"({"__metadata__":{"tapegrad.checksum":"md5","tapegrad.crc32":"00000000"}})") ==
          "bad.safetensors: unknown checksum kind 'md5' in 'tapegrad.checksum'");
    CHECK_THAT(header_error(R"({"__metadata__":{"tapegrad.crc32":"12345678"}})"),
               StartsWith("bad.safetensors: checksum mismatch: the file is corrupt (stored '12345678', computed '"));

    // Renaming a metadata key keeps the file well-formed; the checksum still notices.
    std::string bytes = io::serialize(small_file());
    const auto at = bytes.find("\"k\":\"v\"");
    REQUIRE(at != std::string::npos);
    bytes[at + 1] = 'j';
    CHECK_THAT(parse_error(bytes), StartsWith("bad.safetensors: checksum mismatch: the file is corrupt"));
}

TEST_CASE("serialize and save reject tensors they cannot write, naming them", "[io]")
{
    io::File f;
    f.tensors["w"].dtype = io::Dtype::f32;
    f.tensors["w"].shape = {2};
    f.tensors["w"].bytes.resize(4);
    CHECK_THROWS_WITH(io::serialize(f), Equals("serialize: tensor 'w' has 4 bytes, but shape [2] of F32 needs 8"));
    TempDir dir;
    const std::string path = (dir.path / "x.safetensors").string();
    CHECK_THROWS_WITH(io::save(path, f), Equals(path + ": tensor 'w' has 4 bytes, but shape [2] of F32 needs 8"));
    CHECK(dir.entries().empty());

    io::File g;
    g.tensors["__metadata__"] = io::Tensor::from(xt::xarray<float>{1.0f});
    CHECK_THROWS_WITH(io::serialize(g), StartsWith("serialize: a tensor cannot be named '__metadata__'"));
    io::File h;
    h.metadata["tapegrad.crc32"] = "0";
    CHECK_THROWS_WITH(io::serialize(h), Equals("serialize: metadata key 'tapegrad.crc32' is reserved"));
    h.metadata = {{"tapegrad.checksum", "crc32"}};
    CHECK_THROWS_WITH(io::serialize(h), Equals("serialize: metadata key 'tapegrad.checksum' is reserved"));
    io::File u;
    u.tensors["bad\xff"] = io::Tensor::from(xt::xarray<float>{1.0f});
    CHECK_THROWS_WITH(io::serialize(u), Equals("serialize: a tensor name or metadata entry is not valid UTF-8"));
}

TEST_CASE("a failed save leaves the previous file intact and no temporary behind", "[io][save]")
{
    TempDir dir;
    const std::string path = (dir.path / "model.safetensors").string();
    const io::File a = small_file();
    io::File b = small_file();
    b.tensors["a"] = io::Tensor::from(xt::xarray<float>{9.0f, 9.0f});
    b.metadata["k"] = "b";

    io::save(path, a);
    CHECK(io::load(path) == a);
    const std::size_t size = io::serialize(b).size();
    for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{64}, size - 1, size}) {
        INFO("fail after " << n << " bytes");
        io::detail::fail_writes_after(n);
        CHECK_THROWS_WITH(io::save(path, b), Equals(path + ": write failed after " + std::to_string(n) +
                                                    " bytes (simulated by tg::io::detail::fail_writes_after)"));
        CHECK(io::load(path) == a);
        CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});
    }
    // The hook is spent: the next save goes through.
    io::save(path, b);
    CHECK(io::load(path) == b);
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

    // The file gets the usual permissions (0666 less the umask), not a temporary's 0600.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == (0666 & ~mask));

    const std::string nowhere = (dir.path / "missing" / "model.safetensors").string();
    CHECK_THROWS_WITH(io::save(nowhere, a),
                      Equals(nowhere + ": cannot create a temporary file next to it (No such file or directory)"));
    CHECK_THROWS_WITH(io::load(nowhere), Equals(nowhere + ": cannot open the file (No such file or directory)"));
    CHECK_THROWS_WITH(io::load(dir.path.string()), Equals(dir.path.string() + ": not a regular file"));
    CHECK_THROWS_WITH(io::save(dir.path.string(), a),
                      StartsWith(dir.path.string() + ": cannot rename the temporary file over it"));
    CHECK(dir.entries() == std::vector<std::string>{"model.safetensors"});

    // A corrupted file on disk is reported with its path.
    {
        std::string bytes = io::serialize(a);
        bytes.back() = static_cast<char>(bytes.back() ^ 1);
        std::FILE* out = std::fopen(path.c_str(), "wb");
        REQUIRE(out != nullptr);
        std::fwrite(bytes.data(), 1, bytes.size(), out);
        std::fclose(out);
    }
    CHECK_THROWS_WITH(io::load(path), StartsWith(path + ": checksum mismatch: the file is corrupt"));
}

TEST_CASE("model parameters save and load by name, into float or double models", "[io][model]")
{
    using tg::nn::Dense;
    using tg::nn::Sequential;
    TempDir dir;
    const std::string path = (dir.path / "mlp.safetensors").string();
    tg::manual_seed(11);
    Sequential<float> model{Dense<float>(3, 4, tg::nn::Activation::tanh), Dense<float>(4, 2)};
    model.at<Dense<float>>(0).bias().set_value(xt::xarray<float>{0.5f, -0.25f, 1.0f, 2.0f});
    io::save_parameters(path, model, {{"epoch", "3"}});

    const io::File f = io::load(path);
    CHECK(f.metadata == std::map<std::string, std::string>{{"epoch", "3"}});
    REQUIRE(f.tensors.size() == 4);
    CHECK(f.tensors.at("0.weight").shape == std::vector<std::size_t>{3, 4});
    CHECK(f.tensors.at("0.weight").dtype == io::Dtype::f32);
    CHECK(f.tensors.at("1.bias").shape == std::vector<std::size_t>{2});

    tg::manual_seed(12);
    Sequential<float> same{Dense<float>(3, 4, tg::nn::Activation::tanh), Dense<float>(4, 2)};
    REQUIRE(values_of(same) != values_of(model));
    io::load_parameters(path, same);
    CHECK(values_of(same) == values_of(model));

    Sequential<double> wide{Dense<double>(3, 4), Dense<double>(4, 2)};
    io::load_parameters(path, wide);
    const auto floats = values_of(model);
    const auto doubles = values_of(wide);
    for (std::size_t i = 0; i < floats.size(); ++i)
        CHECK(doubles[i] == xt::xarray<double>(xt::cast<double>(floats[i])));
}

TEST_CASE("a checkpoint that does not fit the model is rejected and the model is unchanged", "[io][model]")
{
    using tg::nn::Dense;
    using tg::nn::Sequential;
    TempDir dir;
    const std::string path = (dir.path / "mlp.safetensors").string();
    Sequential<float> model{Dense<float>(3, 4), Dense<float>(4, 2)};
    io::save_parameters(path, model);

    Sequential<float> deeper{Dense<float>(3, 4), Dense<float>(4, 2), Dense<float>(2, 1)};
    auto before = values_of(deeper);
    CHECK_THROWS_WITH(io::load_parameters(path, deeper),
                      Equals(path + ": the file does not match the model: missing parameters '2.weight', '2.bias'"));
    CHECK(values_of(deeper) == before);

    Sequential<float> shallower{Dense<float>(3, 4)};
    before = values_of(shallower);
    CHECK_THROWS_WITH(io::load_parameters(path, shallower),
                      Equals(path + ": the file does not match the model: unexpected tensors '1.bias', '1.weight'"));
    CHECK(values_of(shallower) == before);

    // The first layer fits and would load; all or nothing keeps it as it was.
    Sequential<float> other{Dense<float>(3, 4), Dense<float>(4, 3), Dense<float>(3, 1)};
    before = values_of(other);
    CHECK_THROWS_WITH(io::load_parameters(path, other),
                      Equals(path + ": the file does not match the model: missing parameters '2.weight', '2.bias'; "
                                    "parameter '1.weight' is [4, 2] in the file but [4, 3] in the model; "
                                    "parameter '1.bias' is [2] in the file but [3] in the model"));
    CHECK(values_of(other) == before);

    // A value a float cannot hold, in the last parameter: nothing is set.
    Sequential<double> huge{Dense<double>(3, 4), Dense<double>(4, 2)};
    huge.at<Dense<double>>(1).bias().set_value(xt::xarray<double>{0.0, 1e300});
    io::save_parameters(path, huge);
    Sequential<float> target{Dense<float>(3, 4), Dense<float>(4, 2)};
    before = values_of(target);
    CHECK_THROWS_WITH(io::load_parameters(path, target),
                      Equals(path + ": parameter '1.bias': element 1 of the F64 tensor (1e+300) is out of range, so it "
                                    "does not convert to float"));
    CHECK(values_of(target) == before);

    CHECK_THROWS_WITH(io::load_parameters(path + ".missing", target),
                      StartsWith(path + ".missing: cannot open the file"));
}
