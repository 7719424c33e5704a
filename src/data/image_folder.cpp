// tg::data::ImageFolder: root/<class>/<image> as a MapDataset, in torchvision's order.

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "tapegrad/error.hpp"
#include "tapegrad/image.hpp"

namespace tg::data {

namespace {

namespace fs = std::filesystem;

bool is_image_name(const std::string& name)
{
    std::string low = name;
    for (char& ch : low) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const char* ext : {".png", ".jpg", ".jpeg"}) {
        const std::string e(ext);
        if (low.size() > e.size() && low.compare(low.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}

[[noreturn]] void fail(const std::string& what)
{
    throw Error("ImageFolder: " + what);
}

// The images under a class folder, in torchvision's order: sorted(os.walk(folder)) visits
// folders by path, and each folder's files by name. Symbolic links are followed, as there.
std::vector<std::string> images_under(const fs::path& folder)
{
    std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
    std::error_code ec;
    fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, ec), end;
    if (ec) fail("cannot list '" + folder.string() + "' (" + ec.message() + ")");
    for (; it != end; it.increment(ec)) {
        if (ec) fail("cannot list '" + folder.string() + "' (" + ec.message() + ")");
        std::error_code type_ec;
        if (!it->is_regular_file(type_ec)) continue;
        const std::string name = it->path().filename().string();
        if (is_image_name(name)) found.emplace_back(it->path().parent_path().string(), name);
    }
    if (ec) fail("cannot list '" + folder.string() + "' (" + ec.message() + ")");
    std::sort(found.begin(), found.end());
    std::vector<std::string> paths;
    paths.reserve(found.size());
    for (const auto& f : found) paths.push_back((fs::path(f.first) / f.second).string());
    return paths;
}

}  // namespace

template <class T>
ImageFolder<T>::ImageFolder(const std::string& root, ImageFolderOptions options) : options_(std::move(options))
{
    if (options_.channels != 1 && options_.channels != 3) {
        fail("options.channels must be 1 or 3 (got " + std::to_string(options_.channels) + ")");
    }
    if (!options_.size.empty() && (options_.size.size() != 2 || options_.size[0] == 0 || options_.size[1] == 0)) {
        fail("options.size must be empty or {height, width}, both positive (got " + format_shape(options_.size) + ")");
    }
    std::error_code ec;
    if (!fs::is_directory(root, ec)) fail("root '" + root + "' is not a folder");
    for (const auto& entry : fs::directory_iterator(root, ec)) {
        std::error_code type_ec;
        if (entry.is_directory(type_ec)) classes_.push_back(entry.path().filename().string());
    }
    if (ec) fail("cannot list root '" + root + "' (" + ec.message() + ")");
    if (classes_.empty()) fail("root '" + root + "' has no class folders (expected root/<class>/<image>)");
    std::sort(classes_.begin(), classes_.end());
    for (std::size_t k = 0; k < classes_.size(); ++k) {
        const fs::path folder = fs::path(root) / classes_[k];
        const std::vector<std::string> paths = images_under(folder);
        if (paths.empty()) {
            fail("class folder '" + folder.string() + "' has no images (.png, .jpg or .jpeg files)");
        }
        for (const std::string& p : paths) samples_.emplace_back(p, static_cast<std::int64_t>(k));
    }
}

template <class T> Example<T> ImageFolder<T>::get(std::size_t index) const
{
    if (index >= samples_.size()) {
        fail("index " + std::to_string(index) + " out of range (" + std::to_string(samples_.size()) + " images)");
    }
    const auto& [path, target] = samples_[index];
    const xt::xarray<std::uint8_t> bytes = read_image(path, options_.channels);
    xt::xarray<T> data = xt::xarray<T>::from_shape(bytes.shape());
    // Divided, not multiplied by 1/255: the same floats as torchvision's ToTensor.
    std::transform(bytes.data(), bytes.data() + bytes.size(), data.data(),
                   [](std::uint8_t b) { return static_cast<T>(b) / T(255); });
    if (!options_.size.empty()) data = resize_image<T>(data, options_.size[0], options_.size[1]);
    return {std::move(data), xt::xarray<std::int64_t>(target)};
}

template class ImageFolder<float>;
template class ImageFolder<double>;

}  // namespace tg::data
