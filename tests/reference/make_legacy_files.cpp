// Writes the files of tests/reference/legacy_*.safetensors with the release that had no
// module registration (commit 1c8801e, where every layer listed its parameters by hand), so
// that the suite can check that files written then still load, under the same names, into
// the same layers.
//
//   legacy_image_model.safetensors     save_parameters of image_model() after three training steps
//   legacy_sequence_model.safetensors  save_parameters of sequence_model()
//   legacy_checkpoint.safetensors      save_checkpoint of image_model() + Adam after two steps (epoch 1, step 2)
//   legacy_expected.safetensors        what the test recomputes: inputs, eval outputs of both models,
//                                      and every parameter and buffer after a third step from the checkpoint
//
// Built by hand against that release (everything used here exists before and after), with
// the flags of the library's own build (the allocator definition must match the library's):
//   c++ -std=c++17 -O2 -DXTENSOR_USE_XSIMD "-DXTENSOR_DEFAULT_ALLOCATOR(T)=xsimd::aligned_allocator<T,64>"
//       -Iinclude -Ibuild/release/generated/include tests/reference/make_legacy_files.cpp
//       build/release/libtapegrad.a -lopenblas -lz -ldnnl -o make_legacy_files
//   ./make_legacy_files tests/reference

#include <cstdio>
#include <string>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

// Every layer kind that takes images, chained: conv, batch norm, pooling, transposed conv,
// dropout, flatten, linear, layer norm, a nested Sequential of Dense layers, 1-d batch norm
// and the activations. [N, 1, 8, 8] -> [N, 6]
nn::Sequential<float> image_model(std::uint64_t seed)
{
    tg::Generator g(seed);
    nn::Sequential<float> inner{
        nn::Dense<float>(10, 8, nn::Activation::tanh, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), g),
        nn::Sigmoid<float>(),
        nn::Dense<float>(8, 6, nn::Activation::none, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), g)};
    nn::Sequential<float> m;
    m.add(nn::Conv2d<float>(1, 4, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true}, g));  // [N, 4, 8, 8]
    m.add(nn::BatchNorm2d<float>(4));
    m.add(nn::ReLU<float>());
    m.add(nn::MaxPool2d<float>(2));                                                    // [N, 4, 4, 4]
    m.add(nn::ConvTranspose2d<float>(4, 3, 2, {{2, 2}, {0, 0}, {0, 0}, 1, true}, g));  // [N, 3, 8, 8]
    m.add(nn::AvgPool2d<float>(2));                                                    // [N, 3, 4, 4]
    m.add(nn::AdaptiveAvgPool2d<float>({2, 2}));                                       // [N, 3, 2, 2]
    m.add(nn::Dropout2d<float>(0.3, seed + 1));
    m.add(nn::Flatten<float>());  // [N, 12]
    m.add(nn::Linear<float>(12, 10, true, g));
    m.add(nn::LayerNorm<float>({10}));
    m.add(inner);  // [N, 6]
    m.add(nn::BatchNorm1d<float>(6));
    m.add(nn::GELU<float>());
    m.add(nn::Dropout<float>(0.2, seed + 2));
    m.add(nn::LeakyReLU<float>(0.1));
    m.add(nn::SiLU<float>());
    m.add(nn::Tanh<float>());
    return m;
}

// The layers that take sequences: embedding, 1-d convolution and pooling.
// Indices [N, 5] -> [N, 5, 4] -> [N, 3, 3] -> [N, 3, 1] -> [N, 3]
nn::Sequential<float> sequence_model(std::uint64_t seed)
{
    tg::Generator g(seed);
    return nn::Sequential<float>{nn::Embedding<float>(10, 4, g), nn::Conv1d<float>(5, 3, 2, {1, 0, 1, 1, true}, g),
                                 nn::MaxPool1d<float>(2), nn::Flatten<float>()};
}

xt::xarray<float> image_input()
{
    xt::xarray<float> x = xt::zeros<float>({3, 1, 8, 8});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(std::sin(0.37 * i + 0.1));
    return x;
}

xt::xarray<float> image_target()
{
    xt::xarray<float> t = xt::zeros<float>({3, 6});
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(std::cos(0.9 * i));
    return t;
}

void train_step(nn::Sequential<float>& m, tg::optim::Adam<float>& opt)
{
    opt.zero_grad();
    tg::mse_loss(m(tg::constant(image_input())), tg::constant(image_target())).backward();
    opt.step();
}

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_legacy_files <output directory>\n");
        return 2;
    }
    const std::string dir = argv[1];
    tg::manual_seed(20);
    tg::io::File expected;
    expected.tensors["image_input"] = tg::io::Tensor::from(image_input());
    expected.tensors["image_target"] = tg::io::Tensor::from(image_target());

    // Parameters files: trained a little so that the buffers are not at their initial values.
    nn::Sequential<float> image = image_model(1);
    tg::optim::Adam<float> image_opt(image.parameters());
    for (int i = 0; i < 3; ++i) train_step(image, image_opt);
    tg::io::save_parameters(dir + "/legacy_image_model.safetensors", image, {{"written by", "make_legacy_files"}});
    image.eval();
    expected.tensors["image_eval_output"] = tg::io::Tensor::from(image(tg::constant(image_input())).value());

    nn::Sequential<float> sequence = sequence_model(2);
    const xt::xarray<float> indices{{1, 2, 3, 4, 5}, {9, 0, 9, 0, 9}};
    tg::io::save_parameters(dir + "/legacy_sequence_model.safetensors", sequence);
    expected.tensors["sequence_input"] = tg::io::Tensor::from(indices);
    expected.tensors["sequence_output"] = tg::io::Tensor::from(sequence(tg::constant(indices)).value());

    // A training checkpoint after two steps, then the third step the test repeats.
    nn::Sequential<float> run = image_model(3);
    tg::optim::AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = 0.01;
    tg::optim::Adam<float> opt(run.parameters(), o);
    train_step(run, opt);
    train_step(run, opt);
    tg::io::CheckpointInfo info;
    info.epoch = 1;
    info.step = 2;
    info.extra["note"] = "legacy";
    tg::io::save_checkpoint(dir + "/legacy_checkpoint.safetensors", run, opt, info);
    train_step(run, opt);
    for (const auto& [name, var] : run.named_parameters())
        expected.tensors["after_step." + name] = tg::io::Tensor::from(var.value());
    for (const auto& [name, buffer] : run.named_buffers()) {
        expected.tensors["after_step." + name] = buffer.values != nullptr
                                                     ? tg::io::Tensor::from(*buffer.values)
                                                     : tg::io::Tensor::from(xt::xarray<std::int64_t>(*buffer.count));
    }
    tg::io::save(dir + "/legacy_expected.safetensors", expected);
    std::printf("wrote the legacy files to %s\n", dir.c_str());
    return 0;
}
