// PNG and JPEG images: decoding (libpng's simplified API, libjpeg-turbo), encoding,
// channel conversion and bilinear resizing.
//
// Both libraries report errors by longjmp. libpng's simplified API (png_image_*) catches
// its own longjmp and returns a message, so no jump crosses this file. libjpeg's error_exit
// jumps here through `guarded`, whose only frames in between are libjpeg's own and a
// capture-by-reference lambda: no C++ object with a destructor is skipped. The decoder
// state lives in an object whose destructor calls jpeg_destroy_*, whatever happened.

#include "tapegrad/image.hpp"

#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <jpeglib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/error.hpp"

namespace tg::data {

namespace {

[[noreturn]] void fail(const std::string& who, const std::string& name, const std::string& what)
{
    throw Error(who + ": " + name + ": " + what);
}

void check_channels(const char* who, std::size_t channels)
{
    if (channels != 0 && channels != 1 && channels != 3) {
        throw Error(std::string(who) + ": channels must be 0 (as stored), 1 or 3 (got " + std::to_string(channels) +
                    ")");
    }
}

void check_pixels(const char* who, const std::string& name, std::uint64_t width, std::uint64_t height)
{
    if (width == 0 || height == 0) {
        fail(who, name, "image declares " + std::to_string(width) + " x " + std::to_string(height) + " pixels");
    }
    if (width * height > max_image_pixels) {
        fail(who, name,
             "image declares " + std::to_string(width) + " x " + std::to_string(height) + " pixels, more than the " +
                 std::to_string(max_image_pixels) + " allowed");
    }
}

// Interleaved pixels [H, W, in] (in = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA) to planar
// [C, H, W]: alpha dropped, color to luminance (PIL's fixed-point ITU-R 601-2 weights,
// rounded) or gray replicated as `channels` asks (0: 1 for gray, 3 for color).
xt::xarray<std::uint8_t> to_planar(const std::uint8_t* px, std::size_t height, std::size_t width, std::size_t in,
                                   std::size_t channels)
{
    const bool color = in >= 3;
    const std::size_t out_c = channels == 0 ? (color ? 3 : 1) : channels;
    const std::size_t plane = height * width;
    xt::xarray<std::uint8_t> out = xt::xarray<std::uint8_t>::from_shape({out_c, height, width});
    std::uint8_t* o = out.data();
    for (std::size_t i = 0; i < plane; ++i) {
        const std::uint8_t* p = px + i * in;
        if (!color) {
            for (std::size_t c = 0; c < out_c; ++c) o[c * plane + i] = p[0];
        } else if (out_c == 3) {
            o[i] = p[0];
            o[plane + i] = p[1];
            o[2 * plane + i] = p[2];
        } else {
            o[i] = static_cast<std::uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
        }
    }
    return out;
}

// ---- PNG -------------------------------------------------------------------------------

constexpr std::uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

struct PngImage {
    png_image image{};
    PngImage()
    {
        image.version = PNG_IMAGE_VERSION;
        image.opaque = nullptr;
    }
    ~PngImage() { png_image_free(&image); }
    PngImage(const PngImage&) = delete;
    PngImage& operator=(const PngImage&) = delete;
};

xt::xarray<std::uint8_t> decode_png(const std::uint8_t* bytes, std::size_t size, std::size_t channels,
                                    const std::string& name)
{
    const char* who = "read_image";
    PngImage png;
    if (!png_image_begin_read_from_memory(&png.image, bytes, size)) {
        fail(who, name, std::string("corrupt or truncated PNG (libpng: ") + png.image.message + ")");
    }
    const std::uint64_t width = png.image.width, height = png.image.height;
    check_pixels(who, name, width, height);
    // The compressed data is at most the whole file, and deflate expands at most 1032:1, so
    // a header that promises more filtered rows than that is refused before the pixels are
    // allocated. The header (IHDR) is the first chunk: libpng checked it is there.
    if (size >= 33) {
        static const unsigned samples_of[] = {1, 0, 3, 1, 2, 0, 4};  // by color type
        const unsigned depth = bytes[24], type = bytes[25];
        const unsigned samples = type < 7 ? samples_of[type] : 1;
        const std::uint64_t row_bits = width * std::max(1u, depth) * std::max(1u, samples);
        const std::uint64_t raw = height * (1 + (row_bits + 7) / 8);
        if (raw / 1032 > size) {
            fail(who, name,
                 "PNG declares " + std::to_string(width) + " x " + std::to_string(height) + " pixels (" +
                     std::to_string(raw) + " bytes of rows), more than its " + std::to_string(size) +
                     " bytes can hold");
        }
    }
    const bool color = (png.image.format & PNG_FORMAT_FLAG_COLOR) != 0;
    const bool alpha = (png.image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    // Alpha is read and then dropped here (as PIL's convert does), not composited by libpng.
    png.image.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    const std::size_t in = PNG_IMAGE_PIXEL_CHANNELS(png.image.format);
    std::vector<std::uint8_t> px(static_cast<std::size_t>(width * height) * in);
    if (!png_image_finish_read(&png.image, nullptr, px.data(), 0, nullptr)) {
        fail(who, name, std::string("corrupt or truncated PNG (libpng: ") + png.image.message + ")");
    }
    return to_planar(px.data(), height, width, in, channels);
}

// ---- JPEG ------------------------------------------------------------------------------

struct JpegErrors {
    jpeg_error_mgr mgr;  // first: libjpeg's callbacks get a pointer to it
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

// libjpeg's error_exit: keep the message, then jump back to `guarded` (never returns).
extern "C" void jpeg_error_exit(j_common_ptr info)
{
    auto* errors = reinterpret_cast<JpegErrors*>(info->err);
    (*info->err->format_message)(info, errors->message);
    std::longjmp(errors->jump, 1);
}

// Warnings (level -1) mean corrupt data that libjpeg would paper over, a truncated file
// among them ("Premature end of JPEG file", decoded as gray): they are errors here.
// Trace messages (level >= 0) are ignored.
extern "C" void jpeg_emit_message(j_common_ptr info, int level)
{
    if (level < 0) jpeg_error_exit(info);
}

// The JPEG decompressor, destroyed on every path.
struct JpegDecoder {
    jpeg_decompress_struct info{};
    JpegErrors errors{};
    bool created = false;
    JpegDecoder()
    {
        info.err = jpeg_std_error(&errors.mgr);
        errors.mgr.error_exit = jpeg_error_exit;
        errors.mgr.emit_message = jpeg_emit_message;
    }
    ~JpegDecoder()
    {
        if (created) jpeg_destroy_decompress(&info);
    }
    JpegDecoder(const JpegDecoder&) = delete;
    JpegDecoder& operator=(const JpegDecoder&) = delete;
};

struct JpegEncoder {
    jpeg_compress_struct info{};
    JpegErrors errors{};
    bool created = false;
    unsigned char* out = nullptr;  // jpeg_mem_dest's buffer (malloc'd by libjpeg)
    unsigned long out_size = 0;
    JpegEncoder()
    {
        info.err = jpeg_std_error(&errors.mgr);
        errors.mgr.error_exit = jpeg_error_exit;
        errors.mgr.emit_message = jpeg_emit_message;
    }
    ~JpegEncoder()
    {
        if (created) jpeg_destroy_compress(&info);
        std::free(out);
    }
    JpegEncoder(const JpegEncoder&) = delete;
    JpegEncoder& operator=(const JpegEncoder&) = delete;
};

// Runs `f` (libjpeg calls only, no objects with destructors) with `errors.jump` set:
// false, with errors.message set, if libjpeg raised an error.
template <class F> bool guarded(JpegErrors& errors, const F& f)
{
    if (setjmp(errors.jump) != 0) return false;
    f();
    return true;
}

xt::xarray<std::uint8_t> decode_jpeg(const std::uint8_t* bytes, std::size_t size, std::size_t channels,
                                     const std::string& name)
{
    const char* who = "read_image";
    JpegDecoder d;
    auto check = [&](bool ok, const char* stage) {
        if (!ok) fail(who, name, std::string("corrupt or truncated JPEG (") + stage + ": " + d.errors.message + ")");
    };
    check(guarded(d.errors, [&] { jpeg_create_decompress(&d.info); }), "create");
    d.created = true;
    // libjpeg's own allocations (the progressive coefficient buffers) stay bounded too.
    d.info.mem->max_memory_to_use = 1L << 30;
    check(guarded(d.errors,
                  [&] {
                      jpeg_mem_src(&d.info, bytes, static_cast<unsigned long>(size));
                      jpeg_read_header(&d.info, TRUE);
                  }),
          "header");
    check_pixels(who, name, d.info.image_width, d.info.image_height);
    const bool gray = d.info.jpeg_color_space == JCS_GRAYSCALE;
    if (!gray && d.info.num_components != 3) {
        fail(who, name, "JPEG with " + std::to_string(d.info.num_components) + " components (CMYK?) is not supported");
    }
    // libjpeg-turbo converts YCbCr to luminance exactly as to_planar does (same fixed-point
    // weights), but it is done in to_planar for both formats alike.
    d.info.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    check(guarded(d.errors, [&] { jpeg_start_decompress(&d.info); }), "start");
    const std::size_t width = d.info.output_width, height = d.info.output_height;
    const std::size_t in = static_cast<std::size_t>(d.info.output_components);
    const std::size_t stride = width * in;
    // The rows grow as they are decoded: a cut-short file costs the rows it holds, not the
    // rows its header promises.
    std::vector<std::uint8_t> px;
    while (d.info.output_scanline < height) {
        const std::size_t row = d.info.output_scanline;
        px.resize((row + 1) * stride);
        JSAMPROW out = px.data() + row * stride;
        check(guarded(d.errors, [&] { jpeg_read_scanlines(&d.info, &out, 1); }), "scanlines");
    }
    check(guarded(d.errors, [&] { jpeg_finish_decompress(&d.info); }), "finish");
    return to_planar(px.data(), height, width, in, channels);
}

// [C, H, W] or [H, W] to interleaved rows; channel count in `c`.
std::vector<std::uint8_t> interleave(const xt::xarray<std::uint8_t>& image, const char* who, std::size_t& c,
                                     std::size_t& h, std::size_t& w)
{
    const auto& s = image.shape();
    if (s.size() == 2) {
        c = 1, h = s[0], w = s[1];
    } else if (s.size() == 3 && (s[0] == 1 || s[0] == 3)) {
        c = s[0], h = s[1], w = s[2];
    } else {
        throw Error(std::string(who) + ": image must be [C, H, W] with C 1 or 3, or [H, W] (got " + format_shape(s) +
                    ")");
    }
    if (h == 0 || w == 0) throw Error(std::string(who) + ": image is empty (" + format_shape(s) + ")");
    if (h * w > max_image_pixels) throw Error(std::string(who) + ": image too large (" + format_shape(s) + ")");
    const xt::xarray<std::uint8_t>& planar = image;  // row-major
    std::vector<std::uint8_t> px(c * h * w);
    const std::size_t plane = h * w;
    for (std::size_t i = 0; i < plane; ++i) {
        for (std::size_t k = 0; k < c; ++k) px[i * c + k] = planar.data()[k * plane + i];
    }
    return px;
}

std::string lower(std::string s)
{
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

bool ends_with(const std::string& s, const std::string& tail)
{
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

xt::xarray<std::uint8_t> decode_image(const std::uint8_t* bytes, std::size_t size, std::size_t channels,
                                      const std::string& name)
{
    check_channels("read_image", channels);
    if (size == 0 || bytes == nullptr) fail("read_image", name, "empty file");
    if (size >= 8 && std::memcmp(bytes, png_signature, 8) == 0) return decode_png(bytes, size, channels, name);
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
        return decode_jpeg(bytes, size, channels, name);
    }
    fail("read_image", name, "not a PNG or JPEG file (its first bytes are neither signature)");
}

xt::xarray<std::uint8_t> read_image(const std::string& path, std::size_t channels)
{
    check_channels("read_image", channels);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("read_image", path, std::string("cannot open the file (") + std::strerror(errno) + ")");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("read_image", path, "cannot read the file");
    return decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), channels, path);
}

std::string encode_png(const xt::xarray<std::uint8_t>& image)
{
    std::size_t c = 0, h = 0, w = 0;
    const std::vector<std::uint8_t> px = interleave(image, "encode_png", c, h, w);
    PngImage png;
    png.image.width = static_cast<png_uint_32>(w);
    png.image.height = static_cast<png_uint_32>(h);
    png.image.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    png_alloc_size_t bytes = 0;
    if (!png_image_write_get_memory_size(png.image, bytes, 0, px.data(), 0, nullptr)) {
        throw Error(std::string("encode_png: libpng failed: ") + png.image.message);
    }
    std::string out(bytes, '\0');
    if (!png_image_write_to_memory(&png.image, out.data(), &bytes, 0, px.data(), 0, nullptr)) {
        throw Error(std::string("encode_png: libpng failed: ") + png.image.message);
    }
    out.resize(bytes);
    return out;
}

std::string encode_jpeg(const xt::xarray<std::uint8_t>& image, int quality)
{
    if (quality < 1 || quality > 100) {
        throw Error("encode_jpeg: quality must be 1 to 100 (got " + std::to_string(quality) + ")");
    }
    std::size_t c = 0, h = 0, w = 0;
    const std::vector<std::uint8_t> px = interleave(image, "encode_jpeg", c, h, w);
    if (h > JPEG_MAX_DIMENSION || w > JPEG_MAX_DIMENSION) {
        throw Error("encode_jpeg: image too large for JPEG (" + format_shape(image.shape()) + ")");
    }
    JpegEncoder e;
    auto check = [&](bool ok) {
        if (!ok) throw Error(std::string("encode_jpeg: libjpeg failed: ") + e.errors.message);
    };
    check(guarded(e.errors, [&] { jpeg_create_compress(&e.info); }));
    e.created = true;
    check(guarded(e.errors, [&] {
        jpeg_mem_dest(&e.info, &e.out, &e.out_size);
        e.info.image_width = static_cast<JDIMENSION>(w);
        e.info.image_height = static_cast<JDIMENSION>(h);
        e.info.input_components = static_cast<int>(c);
        e.info.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
        jpeg_set_defaults(&e.info);
        jpeg_set_quality(&e.info, quality, TRUE);
        jpeg_start_compress(&e.info, TRUE);
    }));
    const std::size_t stride = w * c;
    while (e.info.next_scanline < h) {
        JSAMPROW row = const_cast<std::uint8_t*>(px.data()) + e.info.next_scanline * stride;
        check(guarded(e.errors, [&] { jpeg_write_scanlines(&e.info, &row, 1); }));
    }
    check(guarded(e.errors, [&] { jpeg_finish_compress(&e.info); }));
    return std::string(reinterpret_cast<const char*>(e.out), e.out_size);
}

void write_image(const std::string& path, const xt::xarray<std::uint8_t>& image)
{
    const std::string name = lower(path);
    std::string bytes;
    if (ends_with(name, ".png")) {
        bytes = encode_png(image);
    } else if (ends_with(name, ".jpg") || ends_with(name, ".jpeg")) {
        bytes = encode_jpeg(image, 95);
    } else {
        throw Error("write_image: " + path + ": the extension must be .png, .jpg or .jpeg");
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw Error("write_image: " + path + ": cannot write the file (" + std::strerror(errno) + ")");
}

template <class T> xt::xarray<T> resize_image(const xt::xarray<T>& image, std::size_t height, std::size_t width)
{
    const auto& s = image.shape();
    if (s.size() != 3 || s[0] == 0 || s[1] == 0 || s[2] == 0) {
        throw Error("resize_image: image must be a non-empty [C, H, W] (got " + format_shape(s) + ")");
    }
    if (height == 0 || width == 0) {
        throw Error("resize_image: size must be positive (got " + std::to_string(height) + " x " +
                    std::to_string(width) + ")");
    }
    const std::size_t c = s[0], ih = s[1], iw = s[2];
    if (ih == height && iw == width) return image;
    const xt::xarray<T>& src = image;  // row-major
    // Output pixel o samples input coordinate (o + 0.5) * in / out - 0.5, clamped at 0
    // (half-pixel centres, PyTorch's align_corners=False); its two neighbours and weights
    // are the same for every row (columns) or column (rows), so they are computed once.
    struct Tap {
        std::size_t lo, hi;
        T w;
    };
    auto taps = [](std::size_t in, std::size_t out) {
        std::vector<Tap> t(out);
        const double scale = static_cast<double>(in) / static_cast<double>(out);
        for (std::size_t o = 0; o < out; ++o) {
            const double x = std::max(0.0, (static_cast<double>(o) + 0.5) * scale - 0.5);
            const std::size_t lo = std::min(static_cast<std::size_t>(x), in - 1);
            const std::size_t hi = std::min(lo + 1, in - 1);
            t[o] = {lo, hi, static_cast<T>(x - static_cast<double>(lo))};
        }
        return t;
    };
    const std::vector<Tap> ty = taps(ih, height), tx = taps(iw, width);
    xt::xarray<T> out = xt::xarray<T>::from_shape({c, height, width});
    T* o = out.data();
    for (std::size_t k = 0; k < c; ++k) {
        const T* plane = src.data() + k * ih * iw;
        for (std::size_t y = 0; y < height; ++y) {
            const T* r0 = plane + ty[y].lo * iw;
            const T* r1 = plane + ty[y].hi * iw;
            const T wy = ty[y].w;
            for (std::size_t x = 0; x < width; ++x) {
                const Tap& t = tx[x];
                const T top = r0[t.lo] + (r0[t.hi] - r0[t.lo]) * t.w;
                const T bottom = r1[t.lo] + (r1[t.hi] - r1[t.lo]) * t.w;
                *o++ = top + (bottom - top) * wy;
            }
        }
    }
    return out;
}

template xt::xarray<float> resize_image<float>(const xt::xarray<float>&, std::size_t, std::size_t);
template xt::xarray<double> resize_image<double>(const xt::xarray<double>&, std::size_t, std::size_t);

}  // namespace tg::data
