// Images: PNG and JPEG decoding and encoding, channel conversion, bilinear resizing, the
// errors of bad files (each written here from a good one), and ImageFolder.

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "helpers.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/image.hpp"

using Catch::Matchers::Contains;
using tg_test::TempDir;
namespace data = tg::data;
namespace fs = std::filesystem;

namespace {

// A smooth test picture [c, h, w] (JPEG keeps smooth pictures within a few levels), under
// 256 for up to 16 x 24 pixels.
xt::xarray<std::uint8_t> picture(std::size_t c, std::size_t h, std::size_t w)
{
    xt::xarray<std::uint8_t> a = xt::xarray<std::uint8_t>::from_shape({c, h, w});
    for (std::size_t k = 0; k < c; ++k) {
        for (std::size_t y = 0; y < h; ++y) {
            for (std::size_t x = 0; x < w; ++x) a(k, y, x) = static_cast<std::uint8_t>(20 + 50 * k + 3 * y + 2 * x);
        }
    }
    return a;
}

void put(const std::string& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

int max_difference(const xt::xarray<std::uint8_t>& a, const xt::xarray<std::uint8_t>& b)
{
    int m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int(a.data()[i]) - int(b.data()[i])));
    return m;
}

void put_be32(std::string& s, std::size_t at, std::uint32_t v)
{
    for (int k = 0; k < 4; ++k) s[at + k] = static_cast<char>(v >> (24 - 8 * k) & 0xff);
}

// A PNG whose IHDR declares width x height, its CRC made right again (so that only the
// dimensions are wrong).
std::string png_claiming(std::string png, std::uint32_t width, std::uint32_t height)
{
    put_be32(png, 16, width);
    put_be32(png, 20, height);
    const auto crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);  // "IHDR" + 13 bytes
    put_be32(png, 29, static_cast<std::uint32_t>(crc));
    return png;
}

// The position of a JPEG baseline frame header (SOF0: FF C0).
std::size_t sof0(const std::string& jpeg)
{
    const std::size_t at = jpeg.find("\xff\xc0");
    REQUIRE(at != std::string::npos);
    return at;
}

}  // namespace

TEST_CASE("PNG files round-trip gray and RGB images exactly, from a file and from memory", "[data][image]")
{
    TempDir dir;
    for (std::size_t c : {1u, 3u}) {
        const xt::xarray<std::uint8_t> img = picture(c, 5, 7);
        data::write_image(dir.file("a.png"), img);
        CHECK((data::read_image(dir.file("a.png")) == img));
        const std::string bytes = data::encode_png(img);
        CHECK((data::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == img));
    }
    // An upper-case extension chooses the format too; a 2-D array is one channel.
    const xt::xarray<std::uint8_t> flat = xt::view(picture(1, 4, 4), 0);
    data::write_image(dir.file("B.PNG"), flat);
    CHECK((data::read_image(dir.file("B.PNG")) == picture(1, 4, 4)));
}

TEST_CASE("JPEG files decode gray and RGB images within a few levels of what was encoded", "[data][image]")
{
    TempDir dir;
    for (std::size_t c : {1u, 3u}) {
        const xt::xarray<std::uint8_t> img = picture(c, 16, 24);
        data::write_image(dir.file("a.jpg"), img);
        const xt::xarray<std::uint8_t> back = data::read_image(dir.file("a.jpg"));
        REQUIRE(back.shape() == img.shape());
        CHECK(max_difference(back, img) <= 6);
    }
    CHECK_THROWS_WITH(data::encode_jpeg(picture(1, 2, 2), 0), Contains("quality must be 1 to 100 (got 0)"));
}

TEST_CASE("read_image converts color to luminance and replicates gray to three channels", "[data][image]")
{
    TempDir dir;
    const xt::xarray<std::uint8_t> rgb = picture(3, 3, 4);
    data::write_image(dir.file("rgb.png"), rgb);
    const xt::xarray<std::uint8_t> gray = data::read_image(dir.file("rgb.png"), 1);
    REQUIRE(gray.shape() == std::vector<std::size_t>{1, 3, 4});
    for (std::size_t y = 0; y < 3; ++y) {
        for (std::size_t x = 0; x < 4; ++x) {
            const double l = 0.299 * rgb(0, y, x) + 0.587 * rgb(1, y, x) + 0.114 * rgb(2, y, x);
            CHECK(std::abs(double(gray(0, y, x)) - l) <= 0.5 + 1e-3);
        }
    }
    const xt::xarray<std::uint8_t> g = picture(1, 3, 4);
    data::write_image(dir.file("g.png"), g);
    const xt::xarray<std::uint8_t> three = data::read_image(dir.file("g.png"), 3);
    REQUIRE(three.shape() == std::vector<std::size_t>{3, 3, 4});
    for (std::size_t k = 0; k < 3; ++k) CHECK((xt::xarray<std::uint8_t>(xt::view(three, k)) == xt::view(g, 0)));
    CHECK((data::read_image(dir.file("g.png"), 1) == g));
    CHECK_THROWS_WITH(data::read_image(dir.file("g.png"), 2),
                      Contains("channels must be 0 (as stored), 1 or 3 (got 2)"));
}

TEST_CASE("resize_image is PyTorch's bilinear interpolation with half-pixel centres", "[data][image]")
{
    const xt::xarray<double> img{{{0.0, 1.0}, {2.0, 3.0}}};
    // torch.nn.functional.interpolate(x, (4, 4), mode="bilinear", align_corners=False)
    const xt::xarray<double> up{
        {{0.0, 0.25, 0.75, 1.0}, {0.5, 0.75, 1.25, 1.5}, {1.5, 1.75, 2.25, 2.5}, {2.0, 2.25, 2.75, 3.0}}};
    CHECK(xt::allclose(data::resize_image<double>(img, 4, 4), up, 0.0, 1e-15));
    // Shrinking 4 -> 2 samples between pixels 0, 1 and 2, 3: their means.
    xt::xarray<float> big = xt::xarray<float>::from_shape({1, 4, 4});
    for (std::size_t i = 0; i < 16; ++i) big.data()[i] = float(i);
    const xt::xarray<float> small{{{2.5f, 4.5f}, {10.5f, 12.5f}}};
    CHECK(xt::allclose(data::resize_image<float>(big, 2, 2), small));
    CHECK((data::resize_image<float>(big, 4, 4) == big));
    // Different factors per axis: 1 x 3 -> 2 x 6.
    const xt::xarray<double> row{{{0.0, 3.0, 6.0}}};
    const xt::xarray<double> wide{{{0.0, 0.75, 2.25, 3.75, 5.25, 6.0}, {0.0, 0.75, 2.25, 3.75, 5.25, 6.0}}};
    CHECK(xt::allclose(data::resize_image<double>(row, 2, 6), wide, 0.0, 1e-15));
    CHECK_THROWS_WITH(data::resize_image<double>(row, 0, 6),
                      Contains("resize_image: size must be positive (got 0 x 6)"));
    CHECK_THROWS_WITH(data::resize_image<double>(xt::xarray<double>{1.0, 2.0}, 2, 2),
                      Contains("must be a non-empty [C, H, W] (got [2])"));
}

TEST_CASE("empty, foreign, truncated and corrupt image files give an error naming the file", "[data][image][errors]")
{
    TempDir dir;
    const std::string png = data::encode_png(picture(3, 16, 16));
    const std::string jpeg = data::encode_jpeg(picture(3, 16, 16), 90);

    put(dir.file("empty.png"), "");
    CHECK_THROWS_WITH(data::read_image(dir.file("empty.png")), Contains(dir.file("empty.png") + ": empty file"));
    put(dir.file("text.png"), "hello, not an image");
    CHECK_THROWS_WITH(data::read_image(dir.file("text.png")), Contains(dir.file("text.png") + ": not a PNG or JPEG"));
    CHECK_THROWS_WITH(data::read_image(dir.file("missing.png")), Contains(dir.file("missing.png") + ": cannot open"));

    put(dir.file("cut.png"), png.substr(0, png.size() / 2));
    CHECK_THROWS_WITH(data::read_image(dir.file("cut.png")),
                      Contains(dir.file("cut.png") + ": corrupt or truncated PNG"));
    put(dir.file("header-only.png"), png.substr(0, 20));
    CHECK_THROWS_WITH(data::read_image(dir.file("header-only.png")),
                      Contains(dir.file("header-only.png") + ": corrupt"));
    std::string flipped = png;
    flipped[png.size() - 20] = static_cast<char>(flipped[png.size() - 20] ^ 0x55);  // in the IDAT chunk: a bad CRC
    put(dir.file("flipped.png"), flipped);
    CHECK_THROWS_WITH(data::read_image(dir.file("flipped.png")), Contains(dir.file("flipped.png") + ": corrupt"));

    put(dir.file("cut.jpg"), jpeg.substr(0, jpeg.size() / 2));
    CHECK_THROWS_WITH(data::read_image(dir.file("cut.jpg")),
                      Contains(dir.file("cut.jpg") + ": corrupt or truncated JPEG"));
    put(dir.file("soi-only.jpg"), jpeg.substr(0, 3));
    CHECK_THROWS_WITH(data::read_image(dir.file("soi-only.jpg")), Contains(dir.file("soi-only.jpg") + ": corrupt"));
    std::string precision = jpeg;
    precision[sof0(jpeg) + 4] = 7;  // sample precision: only 8 is baseline
    put(dir.file("precision.jpg"), precision);
    CHECK_THROWS_WITH(data::read_image(dir.file("precision.jpg")), Contains(dir.file("precision.jpg") + ": corrupt"));
}

TEST_CASE("every single-byte corruption of a PNG and a JPEG decodes or gives a tg::Error", "[data][image][errors]")
{
    for (const std::string& good : {data::encode_png(picture(3, 8, 8)), data::encode_jpeg(picture(1, 8, 8), 75)}) {
        std::size_t refused = 0;
        for (std::size_t at = 0; at < good.size(); ++at) {
            for (unsigned char flip : {0x01, 0x80, 0xff}) {
                std::string bad = good;
                bad[at] = static_cast<char>(bad[at] ^ flip);
                INFO("byte " << at << " xor " << int(flip));
                try {
                    const xt::xarray<std::uint8_t> img =
                        data::decode_image(reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size(), 0, "bad");
                    CHECK(img.dimension() == 3);
                } catch (const tg::Error& e) {
                    CHECK_THAT(e.what(), Contains("read_image: bad: "));
                    ++refused;
                }
            }
        }
        CHECK(refused > good.size() / 4);
    }
}

TEST_CASE("images that declare huge dimensions are refused before their pixels are allocated", "[data][image][errors]")
{
    TempDir dir;
    const std::string png = data::encode_png(picture(1, 16, 16));
    REQUIRE(png.size() < 1024);
    put(dir.file("huge.png"), png_claiming(png, 100000, 100000));
    CHECK_THROWS_WITH(
        data::read_image(dir.file("huge.png")),
        Contains(dir.file("huge.png") + ": image declares 100000 x 100000 pixels, more than the 67108864 allowed"));
    // Within the pixel limit, but more rows than a file of this size can inflate to.
    put(dir.file("big.png"), png_claiming(png, 8000, 8000));
    CHECK_THROWS_WITH(data::read_image(dir.file("big.png")), Contains("PNG declares 8000 x 8000 pixels"));
    CHECK_THROWS_WITH(data::read_image(dir.file("big.png")), Contains("bytes can hold"));

    std::string jpeg = data::encode_jpeg(picture(3, 16, 16), 90);
    REQUIRE(jpeg.size() < 2048);
    const std::size_t at = sof0(jpeg);
    for (std::size_t k : {5u, 7u}) jpeg[at + k] = static_cast<char>(0xea);  // 60000 x 60000
    for (std::size_t k : {6u, 8u}) jpeg[at + k] = static_cast<char>(0x60);
    put(dir.file("huge.jpg"), jpeg);
    CHECK_THROWS_WITH(
        data::read_image(dir.file("huge.jpg")),
        Contains(dir.file("huge.jpg") + ": image declares 60000 x 60000 pixels, more than the 67108864 allowed"));
}

TEST_CASE("ImageFolder finds sorted classes and images in torchvision's order", "[data][image][folder]")
{
    TempDir dir;
    const fs::path root = dir.path / "train";
    for (const char* c : {"shirt", "bag", "coat"}) fs::create_directories(root / c);
    fs::create_directories(root / "coat" / "more");
    data::write_image((root / "shirt" / "b.png").string(), picture(3, 6, 5));
    data::write_image((root / "shirt" / "a.JPG").string(), picture(3, 6, 5));
    data::write_image((root / "bag" / "z.jpeg").string(), picture(1, 6, 5));
    data::write_image((root / "coat" / "more" / "x.png").string(), picture(1, 6, 5));
    data::write_image((root / "coat" / "y.png").string(), picture(1, 6, 5));
    put((root / "coat" / "notes.txt").string(), "not an image");
    put((root / "readme.md").string(), "files beside the class folders are not classes");

    data::ImageFolder<float> folder(root.string());
    CHECK(folder.classes() == std::vector<std::string>{"bag", "coat", "shirt"});
    REQUIRE(folder.size() == 5);
    const std::vector<std::pair<std::string, std::int64_t>> expected{{(root / "bag" / "z.jpeg").string(), 0},
                                                                     {(root / "coat" / "y.png").string(), 1},
                                                                     {(root / "coat" / "more" / "x.png").string(), 1},
                                                                     {(root / "shirt" / "a.JPG").string(), 2},
                                                                     {(root / "shirt" / "b.png").string(), 2}};
    CHECK(folder.samples() == expected);

    // RGB by default: gray replicated; floats in [0, 1] as byte / 255; a 0-d class index.
    const data::Example<float> e = folder.get(1);
    REQUIRE(e.data.shape() == std::vector<std::size_t>{3, 6, 5});
    CHECK(e.target.dimension() == 0);
    CHECK(e.target() == 1);
    CHECK(e.data(2, 1, 2) == static_cast<float>(20 + 3 + 4) / 255.0f);
    const data::Example<float> last = folder.get(4);
    CHECK(last.data(1, 0, 0) == 70.0f / 255.0f);
    CHECK(last.target() == 2);
    CHECK_THROWS_WITH(folder.get(5), Contains("ImageFolder: index 5 out of range (5 images)"));

    // One channel, resized: through a StreamingLoader with workers, in batches.
    data::ImageFolderOptions options;
    options.size = {8, 4};
    options.channels = 1;
    auto small = std::make_shared<data::ImageFolder<double>>(root.string(), options);
    data::StreamingLoader<double> loader(small, {2, false, false, 2});
    std::vector<std::int64_t> targets;
    for (const data::Example<double>& b : loader) {
        CHECK(b.data.shape()[1] == 1);
        CHECK(b.data.shape()[2] == 8);
        CHECK(b.data.shape()[3] == 4);
        CHECK(xt::amax(b.data)() <= 1.0);
        for (std::size_t i = 0; i < b.target.size(); ++i) targets.push_back(b.target(i));
    }
    CHECK(targets == std::vector<std::int64_t>{0, 1, 1, 2, 2});
}

TEST_CASE("ImageFolder reports a missing root, no classes, an empty class and bad options",
          "[data][image][folder][errors]")
{
    TempDir dir;
    const std::string missing = dir.file("nowhere");
    CHECK_THROWS_WITH(data::ImageFolder<float>(missing),
                      Contains("ImageFolder: root '" + missing + "' is not a folder"));
    put(dir.file("loose.png"), data::encode_png(picture(1, 2, 2)));
    CHECK_THROWS_WITH(data::ImageFolder<float>(dir.path.string()),
                      Contains("root '" + dir.path.string() + "' has no class folders"));

    fs::create_directories(dir.path / "a");
    fs::create_directories(dir.path / "b");
    data::write_image(dir.file("a/1.png"), picture(1, 2, 2));
    put(dir.file("b/1.txt"), "text");
    CHECK_THROWS_WITH(data::ImageFolder<float>(dir.path.string()),
                      Contains("class folder '" + (dir.path / "b").string() + "' has no images"));
    data::write_image(dir.file("b/1.png"), picture(1, 2, 2));
    CHECK(data::ImageFolder<float>(dir.path.string()).size() == 2);

    data::ImageFolderOptions two;
    two.channels = 2;
    CHECK_THROWS_WITH(data::ImageFolder<float>(dir.path.string(), two),
                      Contains("options.channels must be 1 or 3 (got 2)"));
    for (const std::vector<std::size_t>& size : {std::vector<std::size_t>{0, 4}, {4, 0}, {4}, {1, 2, 3}}) {
        data::ImageFolderOptions bad;
        bad.size = size;
        CHECK_THROWS_WITH(data::ImageFolder<float>(dir.path.string(), bad),
                          Contains("options.size must be empty or {height, width}, both positive (got " +
                                   tg::format_shape(size) + ")"));
    }
}

TEST_CASE("ImageFolder names a corrupt image when it is loaded, also through a loader", "[data][image][folder][errors]")
{
    TempDir dir;
    fs::create_directories(dir.path / "a");
    data::write_image(dir.file("a/1.png"), picture(1, 4, 4));
    const std::string png = data::encode_png(picture(1, 4, 4));
    put(dir.file("a/2.png"), png.substr(0, png.size() - 20));  // into the image data
    auto folder = std::make_shared<data::ImageFolder<float>>(dir.path.string());
    CHECK(folder->get(0).data.shape()[0] == 3);
    CHECK_THROWS_WITH(folder->get(1), Contains(dir.file("a/2.png") + ": corrupt or truncated PNG"));
    data::StreamingLoader<float> loader(folder, {1, false, false, 2});
    auto it = loader.begin();
    CHECK((*it).target.size() == 1);
    ++it;
    CHECK_THROWS_WITH(*it, Contains("loading example 1") && Contains(dir.file("a/2.png")));
}
