// custom_module: a residual network built from modules of one's own. ResidualBlock
// registers a LayerNorm and two Linear layers; ResNet registers a stem, a ModuleList of
// blocks and a head. Everything else follows from the registrations: parameter names
// ("blocks.1.fc2.weight"), the summary, the optimiser's parameters, saving and loading,
// converting the float model to double through its state_dict, and a gradcheck of the
// double model with respect to every parameter.
//
// Prints the summary, the training loss, and a last line that ctest checks; exits with
// status 1 when a check fails.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

// x + fc2(gelu(fc1(norm(x)))): a pre-norm residual block.
template <class T> class ResidualBlock : public nn::Module<T> {
public:
    ResidualBlock(std::size_t width, std::size_t hidden)
    {
        norm_ = this->register_module("norm", std::make_shared<nn::LayerNorm<T>>(std::vector<std::size_t>{width}));
        fc1_ = this->register_module("fc1", std::make_shared<nn::Linear<T>>(width, hidden));
        fc2_ = this->register_module("fc2", std::make_shared<nn::Linear<T>>(hidden, width));
    }

    tg::Var<T> forward(const tg::Var<T>& x) { return x + fc2_->forward(tg::gelu(fc1_->forward(norm_->forward(x)))); }

private:
    std::shared_ptr<nn::LayerNorm<T>> norm_;
    std::shared_ptr<nn::Linear<T>> fc1_, fc2_;
};

// stem -> blocks -> head, for inputs [batch, in] and outputs [batch, out].
template <class T> class ResNet : public nn::Module<T> {
public:
    ResNet(std::size_t in, std::size_t width, std::size_t depth, std::size_t out)
    {
        stem_ = this->register_module("stem", std::make_shared<nn::Linear<T>>(in, width));
        blocks_ = this->register_module("blocks", std::make_shared<nn::ModuleList<T>>());
        for (std::size_t i = 0; i < depth; ++i)
            blocks_->push_back(std::make_shared<ResidualBlock<T>>(width, 2 * width));
        head_ = this->register_module("head", std::make_shared<nn::Linear<T>>(width, out));
    }

    tg::Var<T> forward(const tg::Var<T>& x)
    {
        tg::Var<T> h = stem_->forward(x);
        for (std::size_t i = 0; i < blocks_->size(); ++i) h = blocks_->template at<ResidualBlock<T>>(i).forward(h);
        return head_->forward(h);
    }

private:
    std::shared_ptr<nn::Linear<T>> stem_;
    std::shared_ptr<nn::ModuleList<T>> blocks_;
    std::shared_ptr<nn::Linear<T>> head_;
};

// The toy task: y = sin(2 x0) + x1 x2 on inputs uniform in [-1, 1).
template <class T> std::pair<tg::Var<T>, tg::Var<T>> toy_data(std::size_t n, tg::Generator& gen)
{
    const xt::xarray<T> x = tg::rand<T>({n, 3}, gen).value() * T(2) - T(1);
    xt::xarray<T> y = xt::zeros<T>({n, std::size_t(1)});
    for (std::size_t i = 0; i < n; ++i) y(i, 0) = std::sin(T(2) * x(i, 0)) + x(i, 1) * x(i, 2);
    return {tg::constant(x), tg::constant(y)};
}

int main()
{
    try {
        tg::manual_seed(7);
        ResNet<float> net(3, 16, 2, 1);
        std::cout << net.summary();

        tg::Generator data_gen(11);
        const auto [x, y] = toy_data<float>(256, data_gen);
        tg::optim::AdamOptions o;
        o.lr = 1e-2;
        tg::optim::Adam<float> adam(net.parameters(), o);
        double first = 0, last = 0;
        for (int step = 0; step < 300; ++step) {
            adam.zero_grad();
            const tg::Var<float> loss = tg::mse_loss(net.forward(x), y);
            loss.backward();
            adam.step();
            if (step == 0) first = loss.item();
            last = loss.item();
            if (step % 100 == 0 || step == 299) std::printf("step %3d  loss %.5f\n", step, last);
        }
        const auto [x_test, y_test] = toy_data<float>(3, data_gen);
        std::cout << "targets:     " << y_test << "\npredictions: " << net.forward(x_test) << '\n';

        // Save and load by name, into a model initialised differently.
        const std::string path =
            (std::filesystem::temp_directory_path() / "tapegrad_custom_module.safetensors").string();
        tg::io::save_parameters(path, net);
        tg::manual_seed(99);
        ResNet<float> loaded(3, 16, 2, 1);
        tg::io::load_parameters(path, loaded);
        std::filesystem::remove(path);
        const bool same = loaded.forward(x).value() == net.forward(x).value();

        // Float to double through the state_dict; the outputs agree to float precision.
        ResNet<double> dnet(3, 16, 2, 1);
        dnet.load_state_dict(net.state_dict());
        const tg::Var<double> xd = tg::constant(xt::xarray<double>(xt::cast<double>(x.value())));
        const double difference =
            xt::amax(xt::abs(dnet.forward(xd).value() - xt::cast<double>(net.forward(x).value())))();

        // Every parameter's gradient against central differences, in double, on a few rows.
        tg::Generator check_gen(5);
        const auto [xc, yc] = toy_data<double>(6, check_gen);
        const tg::GradcheckResult check =
            tg::gradcheck(dnet, [&, xc = xc, yc = yc] { return tg::mse_loss(dnet.forward(xc), yc); });
        std::cout << check.message << '\n';

        const bool ok = last < 0.02 && last < first && same && difference < 1e-5 && check.ok;
        std::printf("custom_module: %zu parameters trained (loss %.4f -> %.4f), saved and reloaded (%s outputs), "
                    "float -> double (max difference %.2g), %s: %s\n",
                    net.num_parameters(), first, last, same ? "identical" : "DIFFERENT", difference,
                    check.ok ? "gradcheck ok" : "gradcheck FAILED", ok ? "ok" : "FAILED");
        return ok ? 0 : 1;
    } catch (const tg::Error& e) {
        std::fprintf(stderr, "custom_module: %s\n", e.what());
        return 2;
    }
}
