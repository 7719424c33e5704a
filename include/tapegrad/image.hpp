#pragma once
/// \file image.hpp
/// `tg::data` for images: PNG and JPEG files decoded (libpng, libjpeg-turbo) into
/// `[C, H, W]` bytes, written back, resized, and ImageFolder, a MapDataset over a folder of
/// class subfolders laid out as torchvision's `ImageFolder` expects:
///
///     root/cat/001.png
///     root/cat/002.jpg
///     root/dog/001.png      classes {"cat", "dog"}, targets 0 and 1
///
/// \code
/// tg::data::ImageFolderOptions options;
/// options.size = {32, 32};     // resized (bilinear) to 32 x 32
/// options.channels = 1;        // luminance
/// auto train = std::make_shared<tg::data::ImageFolder<float>>("data/train", options);
/// tg::data::StreamingLoader<float> loader(train, {64, true, false, 2});
/// for (const tg::data::Example<float>& batch : loader) {
///     // batch.data [64, 1, 32, 32] in [0, 1], batch.target [64] class indices
/// }
/// \endcode

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/streaming.hpp"

namespace tg::data {

/// The most pixels (height x width) a decoded image may have: 2^26, e.g. 8192 x 8192. A
/// file that declares more is refused before anything is allocated for its pixels.
inline constexpr std::size_t max_image_pixels = std::size_t(1) << 26;

/// Decodes a PNG or JPEG image held in memory (the format is recognised by its first bytes)
/// into bytes `[C, H, W]`.
///
/// `channels` 0 keeps the image's own: 1 for grayscale, 3 for color (an alpha channel is
/// dropped, as torchvision's `convert("RGB")` does); 1 converts color to luminance
/// (L = 0.299 R + 0.587 G + 0.114 B, rounded, as PIL's `convert("L")`); 3 replicates gray.
/// 16-bit PNGs are reduced to 8 bits by libpng. CMYK JPEGs are refused.
///
/// Throws tg::Error, with a message naming `name` (a path, or what the caller calls the
/// bytes), when the bytes are empty, are neither PNG nor JPEG, are corrupt or cut short,
/// declare more than max_image_pixels pixels (or, for PNG, more than the compressed data
/// could hold), or when `channels` is not 0, 1 or 3.
xt::xarray<std::uint8_t> decode_image(const std::uint8_t* bytes, std::size_t size, std::size_t channels = 0,
                                      const std::string& name = "image");

/// Reads and decodes a PNG or JPEG file into bytes `[C, H, W]` (see decode_image). Throws
/// tg::Error naming `path` when the file cannot be read or decoded.
xt::xarray<std::uint8_t> read_image(const std::string& path, std::size_t channels = 0);

/// Encodes bytes `[C, H, W]` (C = 1 or 3; a 2-D array is one channel) as a PNG file's
/// bytes. Throws tg::Error if the shape is not one of those or is empty.
std::string encode_png(const xt::xarray<std::uint8_t>& image);

/// Encodes bytes `[C, H, W]` (C = 1 or 3; a 2-D array is one channel) as a baseline JPEG
/// file's bytes at `quality` (1 to 100). Throws tg::Error for another shape or quality.
std::string encode_jpeg(const xt::xarray<std::uint8_t>& image, int quality = 95);

/// Writes bytes `[C, H, W]` as a PNG (`.png`) or JPEG (`.jpg`, `.jpeg`, at quality 95)
/// file, chosen by the extension of `path` (in any case). Throws tg::Error naming the path
/// for another extension, a bad shape, or a file that cannot be written.
void write_image(const std::string& path, const xt::xarray<std::uint8_t>& image);

/// Resizes an image `[C, H, W]` to `[C, height, width]` by bilinear interpolation with
/// half-pixel centres and no antialiasing: the same values as PyTorch's
/// `interpolate(x, (height, width), mode="bilinear", align_corners=False)`. Shrinking by
/// more than 2x therefore skips pixels (aliasing). An image already of that size is
/// returned unchanged. Throws tg::Error if the image is not 3-D or empty, or a size is 0.
template <class T> xt::xarray<T> resize_image(const xt::xarray<T>& image, std::size_t height, std::size_t width);

/// Options of an ImageFolder.
struct ImageFolderOptions {
    /// `{height, width}` to resize every image to (resize_image: bilinear); empty keeps
    /// each image's own size (then all must have the same size to be batched).
    std::vector<std::size_t> size;
    /// Channels of every example: 1 (luminance) or 3 (RGB; gray replicated).
    std::size_t channels = 3;
};

/// A MapDataset over `root/<class>/<image>`: one class per subfolder of `root`, classes
/// in sorted order (by bytes, as Python's `sorted`), target = the class's index (0-d int64).
///
/// The images of a class are the files under its folder (subfolders too) whose names end
/// in `.png`, `.jpg` or `.jpeg` in any case; other files are ignored. They are ordered as
/// torchvision's ImageFolder orders them (by folder, then by name), so that index i is the
/// same image in both. Example i is decoded when asked for (read_image), converted to
/// `options.channels`, resized to `options.size` when given, and scaled to floats
/// `[C, H, W]` in [0, 1] (byte / 255). `get` is thread-safe.
///
/// The constructor throws tg::Error naming the path or option when `root` is not a
/// folder, has no class folders, a class has no images, `channels` is not 1 or 3, or
/// `size` is not two positive numbers. `get` throws tg::Error naming the file when it
/// cannot be decoded.
template <class T> class ImageFolder : public MapDataset<T> {
public:
    /// Scans `root` for classes and images (decoding none of them).
    explicit ImageFolder(const std::string& root, ImageFolderOptions options = {});

    /// The number of images, over all classes.
    std::size_t size() const override { return samples_.size(); }
    /// Image `index` as floats `[C, H, W]` in [0, 1], and its class index.
    Example<T> get(std::size_t index) const override;

    /// The class names: the subfolders of root, sorted; target k is classes()[k].
    const std::vector<std::string>& classes() const { return classes_; }
    /// Every image's path and class index, in index order.
    const std::vector<std::pair<std::string, std::int64_t>>& samples() const { return samples_; }
    /// The options the dataset was built with.
    const ImageFolderOptions& options() const { return options_; }

private:
    ImageFolderOptions options_;
    std::vector<std::string> classes_;
    std::vector<std::pair<std::string, std::int64_t>> samples_;
};

///@{
/// resize_image, compiled once in the library for float and double.
extern template xt::xarray<float> resize_image<float>(const xt::xarray<float>&, std::size_t, std::size_t);
extern template xt::xarray<double> resize_image<double>(const xt::xarray<double>&, std::size_t, std::size_t);
///@}
extern template class ImageFolder<float>;
extern template class ImageFolder<double>;

}  // namespace tg::data
