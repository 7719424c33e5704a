// The fuzz targets' bodies and their seeds (see targets.hpp).

#include "targets.hpp"

#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data.hpp"
#include "tapegrad/image.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/tapegrad.hpp"
#include "torch_archive.hpp"

namespace tg::fuzz {
namespace {

namespace nn = tg::nn;
namespace optim = tg::optim;

// A finding: the library broke a promise without crashing (a round trip that changed the
// file, an accepted checkpoint that cannot be trained on). Aborting makes the fuzzer keep
// the input.
[[noreturn]] void broken(const char* what)
{
    std::fprintf(stderr, "fuzz target: broken promise: %s\n", what);
    std::abort();
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out.good()) broken("cannot write the scratch file");
}

void write_file(const std::string& path, const std::string& bytes)
{
    write_file(path, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

void write_gzip(const std::string& path, const std::string& bytes)
{
    gzFile out = gzopen(path.c_str(), "wb9");
    if (out == nullptr) broken("cannot write a gzip seed");
    if (!bytes.empty()) gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(out);
}

// A scratch file per process and name, for the loaders that take paths.
std::string scratch(const char* name)
{
    const char* tmp = std::getenv("TMPDIR");
    return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tapegrad-fuzz-" + std::to_string(::getpid()) +
           "-" + name;
}

template <class T> void convert_all(const io::File& f)
{
    for (const auto& kv : f.tensors) {
        try {
            const xt::xarray<T> a = kv.second.template to<T>();
            if (a.size() != kv.second.numel()) broken("Tensor::to gave the wrong number of elements");
        } catch (const Error&) {
        }
    }
}

// The model and optimisers the checkpoint seeds are saved from (and loaded into).
struct Run {
    nn::Sequential<float> model;
    std::unique_ptr<optim::Optimizer<float>> opt;

    explicit Run(bool adam)
    {
        Generator g(7);
        model.add(nn::Dense<float>(3, 4, nn::Activation::relu, nn::init::he_uniform(), nn::init::zeros(), g));
        model.add(nn::Dropout<float>(0.5, 11));
        model.add(
            nn::Dense<float>(4, 2, nn::Activation::none, nn::init::glorot_uniform(), nn::init::uniform(-1, 1), g));
        if (adam) {
            optim::AdamOptions o;
            o.amsgrad = true;
            opt = std::make_unique<optim::Adam<float>>(model.parameters(), o);
        } else {
            optim::SGDOptions o;
            o.momentum = 0.9;
            opt = std::make_unique<optim::SGD<float>>(model.parameters(), o);
        }
    }

    void step()
    {
        opt->zero_grad();
        Var<float> x = constant(xt::xarray<float>{{0.5f, -1.0f, 2.0f}, {1.0f, 1.0f, 1.0f}});
        cross_entropy(model(x), xt::xarray<std::int64_t>{0, 1}).backward();
        opt->step();
        end_pass<float>();
    }
};

// The file without its checksum entries, so that mutations of the seed reach past the CRC.
std::string without_checksum(const std::string& bytes)
{
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
    auto& meta = header["__metadata__"];
    meta.erase("tapegrad.checksum");
    meta.erase("tapegrad.crc32");
    if (meta.empty()) header.erase("__metadata__");
    std::string text = header.dump();
    while (text.size() % 8 != 0) text += ' ';
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(text.size() >> (8 * i) & 0xff);
    return out + text + bytes.substr(8 + n);
}

std::string idx_file(const std::vector<std::uint32_t>& dims, const std::string& data)
{
    std::string out{'\0', '\0', '\x08', static_cast<char>(dims.size())};
    for (std::uint32_t d : dims) {
        for (int s = 24; s >= 0; s -= 8) out += static_cast<char>(d >> s & 0xff);
    }
    return out + data;
}

// The input parsed as a safetensors file into f; false when the parser refuses it.
bool parsed(const std::uint8_t* data, std::size_t size, io::File& f)
{
    try {
        f = io::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
        return true;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace

int safetensors(const std::uint8_t* data, std::size_t size)
{
    io::File f;
    if (!parsed(data, size, f)) return 0;
    convert_all<float>(f);
    convert_all<double>(f);
    convert_all<std::int64_t>(f);
    convert_all<std::uint8_t>(f);
    std::string again;
    try {
        again = io::serialize(f);
    } catch (const Error&) {
        return 0;  // e.g. a name that parse accepts but serialize refuses to write
    }
    if (io::parse(again, "round trip") != f) broken("serialize then parse changed the file");
    return 0;
}

int checkpoint(const std::uint8_t* data, std::size_t size)
{
    io::File f;
    if (!parsed(data, size, f)) return 0;
    for (bool adam : {true, false}) {
        Run run(adam);
        const auto weights = run.model.parameters()[0].value();
        const auto state = run.opt->state_dict();
        try {
            io::load_checkpoint(f, "fuzz.safetensors", run.model, *run.opt);
        } catch (const Error&) {
            // All or nothing: a refused checkpoint changes nothing.
            if (run.model.parameters()[0].value() != weights) broken("a refused checkpoint changed the model");
            if (run.opt->state_dict() != state) broken("a refused checkpoint changed the optimiser");
            continue;
        }
        try {
            run.step();  // whatever was accepted must be usable
            run.step();
        } catch (const Error&) {
            broken("an accepted checkpoint cannot be trained on");
        }
    }
    return 0;
}

int idx(const std::uint8_t* data, std::size_t size)
{
    if (size < 3) return 0;
    const std::string a = scratch("a"), b = scratch("b");
    try {
        if ((data[0] & 1) == 0) {
            write_file(a, data + 1, size - 1);
            const data::Idx got = data::read_idx(a);
            std::size_t n = 1;
            for (std::size_t d : got.shape) n *= d;
            if (n != got.data.size()) broken("read_idx: data size differs from the product of the dims");
        } else {
            const std::size_t split = std::min<std::size_t>(size - 3, std::size_t{data[1]} << 8 | data[2]);
            write_file(a, data + 3, split);
            write_file(b, data + 3 + split, size - 3 - split);
            const data::Dataset<float> set = data::load_idx_dataset<float>(a, b);
            if (set.features().shape()[0] != set.size()) broken("load_idx_dataset: rows differ from labels");
        }
    } catch (const Error&) {
    }
    return 0;
}

int torch(const std::uint8_t* data, std::size_t size)
{
    io::File f;
    try {
        f = io::parse_torch(std::string(reinterpret_cast<const char*>(data), size), "fuzz.pt");
    } catch (const Error&) {
        return 0;
    }
    convert_all<float>(f);
    convert_all<double>(f);
    convert_all<std::int64_t>(f);
    convert_all<std::uint8_t>(f);
    // Whatever loads can be written and loads back the same: names, dtypes, bytes, metadata.
    if (io::parse_torch(io::serialize_torch(f), "round trip") != f)
        broken("serialize_torch then parse_torch changed the file");
    return 0;
}

int image(const std::uint8_t* bytes, std::size_t size)
{
    if (size == 0) return 0;
    const std::size_t channels = std::size_t{bytes[0]} % 3 == 2 ? 3 : std::size_t{bytes[0]} % 3;
    xt::xarray<std::uint8_t> img;
    try {
        img = data::decode_image(bytes + 1, size - 1, channels, "fuzz");
    } catch (const Error&) {
        return 0;
    }
    const auto& s = img.shape();
    if (s.size() != 3 || (s[0] != 1 && s[0] != 3) || s[1] == 0 || s[2] == 0) broken("decode_image gave a bad shape");
    if (channels != 0 && s[0] != channels) broken("decode_image ignored the channels asked for");
    if (s[1] * s[2] > data::max_image_pixels) broken("decode_image accepted more than max_image_pixels");
    const xt::xarray<float> small = data::resize_image<float>(xt::xarray<float>(img), 5, 3);
    if (small.shape(1) != 5 || small.shape(2) != 3) broken("resize_image gave the wrong size");
    for (float v : small) {
        if (!(v >= 0.0f && v <= 255.0f)) broken("resize_image left the range of its input");
    }
    if (s[1] * s[2] <= 4096) {
        const std::string png = data::encode_png(img);
        const xt::xarray<std::uint8_t> again =
            data::decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), 0, "again");
        if (again != img) broken("encode_png and decode_image changed the image");
    }
    return 0;
}

int write_seeds(const std::string& dir)
{
    namespace fs = std::filesystem;
    int count = 0;
    for (const char* sub : {"safetensors", "checkpoint", "idx", "torch", "image"})
        fs::create_directories(fs::path(dir) / sub);
    auto put = [&](const std::string& sub, const std::string& name, const std::string& bytes) {
        write_file((fs::path(dir) / sub / name).string(), bytes);
        ++count;
    };

    // safetensors: every dtype family, a rank-0 and an empty tensor, metadata.
    io::File f;
    f.tensors["w"] = io::Tensor::from(xt::xarray<float>{{1.5f, -2.0f, 3.25f}, {0.0f, 1e-3f, -7.0f}});
    f.tensors["b"] = io::Tensor::from(xt::xarray<double>{0.5, -0.25});
    f.tensors["i"] = io::Tensor::from(xt::xarray<std::int64_t>{-3, 0, 9});
    f.tensors["s"] = io::Tensor::from(xt::xarray<double>(2.0));
    f.tensors["e"] = io::Tensor::from(xt::xarray<float>::from_shape({0, 3}));
    f.metadata["note"] = "seed";
    const std::string st = io::serialize(f);
    put("safetensors", "tensors-crc.safetensors", st);
    put("safetensors", "tensors-plain.safetensors", without_checksum(st));

    // checkpoints from both optimisers, after two steps, with and without checksums.
    for (bool adam : {true, false}) {
        Run run(adam);
        run.step();
        run.step();
        const std::string path = scratch("seed.safetensors");
        io::CheckpointInfo info;
        info.epoch = 1;
        info.step = 2;
        info.extra["history"] = "0.5,0.25";
        io::save_checkpoint(path, run.model, *run.opt, info);
        std::ifstream in(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        std::filesystem::remove(path);
        const std::string name = adam ? "adam" : "sgd";
        put("checkpoint", name + "-crc.safetensors", bytes);
        put("checkpoint", name + "-plain.safetensors", without_checksum(bytes));
    }

    // IDX: read_idx of a plain and a gzip'd file; load_idx_dataset of an images/labels pair.
    std::string pixels, labels;
    for (int i = 0; i < 3 * 4 * 5; ++i) pixels += static_cast<char>(i * 37 % 256);
    for (int i = 0; i < 3; ++i) labels += static_cast<char>(i);
    const std::string images = idx_file({3, 4, 5}, pixels), label_file = idx_file({3}, labels);
    put("idx", "read-plain.idx", std::string(1, '\0') + images);
    const std::string gz = scratch("seed.gz");
    write_gzip(gz, images);
    std::ifstream in(gz, std::ios::binary);
    const std::string zipped((std::istreambuf_iterator<char>(in)), {});
    std::filesystem::remove(gz);
    put("idx", "read-gzip.idx", std::string(1, '\0') + zipped);
    auto pair = [](const std::string& first, const std::string& second) {
        return std::string{'\x01', static_cast<char>(first.size() >> 8 & 0xff),
                           static_cast<char>(first.size() & 0xff)} +
               first + second;
    };
    put("idx", "dataset-plain.idx", pair(images, label_file));
    put("idx", "dataset-gzip.idx", pair(zipped, label_file));

    // torch.save files: the safetensors seed's tensors and metadata as save_torch writes them
    // (also with zip64 local headers), and an optimizer state as PyTorch pickles it: nested dicts
    // and lists, floats, a tuple, None, and two views of one storage.
    put("torch", "state-dict.pt", io::serialize_torch(f));
    io::detail::force_zip64(true);
    put("torch", "state-dict-zip64.pt", io::serialize_torch(f));
    io::detail::force_zip64(false);
    tg_torch::Pickle p;
    p.op('}').str("state").op('}').integer(0).op('}');
    p.str("step").tensor("0", "FloatStorage", 1, 0, {}, {}).op('s');
    p.str("exp_avg").tensor("1", "FloatStorage", 6, 0, {2, 3}, {3, 1}).op('s');
    p.str("exp_avg_sq").tensor("1", "FloatStorage", 6, 1, {2, 2}, {1, 2}).op('s');
    p.op('s').op('s');
    p.str("param_groups").op(']').op('}');
    p.str("lr").real(0.001).op('s').str("betas").real(0.9).real(0.999).op('\x86').op('s');
    p.str("amsgrad").op('\x89').op('s').str("foreach").op('N').op('s');
    p.str("params").op(']').integer(0).op('a').op('s');
    p.op('a').op('s');
    put("torch", "optimizer.pt", tg_torch::archive(p.done(), {{"0", tg_torch::floats(1)}, {"1", tg_torch::floats(6)}}));

    // Images: tiny gray and RGB PNGs and JPEGs (byte 0: the channels to ask for).
    xt::xarray<std::uint8_t> rgb = xt::xarray<std::uint8_t>::from_shape({3, 6, 5});
    for (std::size_t i = 0; i < rgb.size(); ++i) rgb.data()[i] = static_cast<std::uint8_t>(i * 7 % 256);
    const xt::xarray<std::uint8_t> gray = xt::view(rgb, xt::range(0, 1));
    put("image", "gray.png", std::string(1, '\0') + data::encode_png(gray));
    put("image", "rgb-as-gray.png", std::string(1, '\1') + data::encode_png(rgb));
    put("image", "gray.jpg", std::string(1, '\2') + data::encode_jpeg(gray, 90));
    put("image", "rgb.jpg", std::string(1, '\0') + data::encode_jpeg(rgb, 50));
    return count;
}

}  // namespace tg::fuzz
