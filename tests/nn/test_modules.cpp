// The module system: registration and PyTorch's names and order (checked against a nested
// PyTorch model, tests/reference/make_module_reference.py), state_dict across dtypes, files
// written by the release before registration (tests/reference/make_legacy_files.cpp),
// summary, functional_call (MAML against its closed form), module gradcheck,
// gradgradcheck and hvp, and every refusal with its message.

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/tapegrad.hpp"

#include "helpers.hpp"

namespace nn = tg::nn;
using Catch::Contains;
using Catch::Equals;
using Catch::StartsWith;
using tg::Var;

namespace {

using tg_test::json_array;
using tg_test::TempDir;
using tg_test::worst_relative;
template <class S> std::vector<std::size_t> dims(const S& shape)
{
    return std::vector<std::size_t>(shape.begin(), shape.end());
}
std::vector<std::string> names_of(const std::vector<std::pair<std::string, Var<double>>>& named)
{
    std::vector<std::string> out;
    for (const auto& np : named) out.push_back(np.first);
    return out;
}

// --- the nested model of make_module_reference.py, built from tapegrad modules ------------

template <class T> class ResidualBlock : public nn::Module<T> {
public:
    explicit ResidualBlock(std::size_t width)
    {
        norm_ = this->register_module("norm", std::make_shared<nn::LayerNorm<T>>(std::vector<std::size_t>{width}));
        fc1_ = this->register_module("fc1", std::make_shared<nn::Linear<T>>(width, 2 * width));
        act_ = this->register_module("act", std::make_shared<nn::GELU<T>>());
        fc2_ = this->register_module("fc2", std::make_shared<nn::Linear<T>>(2 * width, width));
    }
    Var<T> forward(const Var<T>& x) { return x + fc2_->forward(act_->forward(fc1_->forward(norm_->forward(x)))); }

private:
    std::shared_ptr<nn::LayerNorm<T>> norm_;
    std::shared_ptr<nn::Linear<T>> fc1_;
    std::shared_ptr<nn::GELU<T>> act_;
    std::shared_ptr<nn::Linear<T>> fc2_;
};

template <class T> class Head : public nn::Module<T> {
public:
    Head(std::size_t width, std::size_t classes)
    {
        bn_ = this->register_module("bn", std::make_shared<nn::BatchNorm1d<T>>(width));
        proj_ = this->register_module("proj",
                                      std::make_shared<nn::Sequential<T>>(std::initializer_list<nn::AnyModule<T>>{
                                          nn::Linear<T>(width, width), nn::Tanh<T>(), nn::Linear<T>(width, classes)}));
        // Registered after the children; PyTorch lists a module's own parameters first all the same.
        this->register_parameter("scale", tg::parameter(xt::xarray<T>(xt::ones<T>({classes}))));
    }
    Var<T> forward(const Var<T>& h) { return proj_->forward(tg::relu(bn_->forward(h))) * this->get_parameter("scale"); }

private:
    std::shared_ptr<nn::BatchNorm1d<T>> bn_;
    std::shared_ptr<nn::Sequential<T>> proj_;
};

template <class T> class Net : public nn::Module<T> {
public:
    Net()
    {
        this->register_parameter("temperature", tg::parameter(xt::xarray<T>(T(1.5))));
        offset_ = &this->register_buffer("offset", xt::zeros<T>({6}));
        stem_ = this->register_module("stem", std::make_shared<nn::Linear<T>>(6, 8));
        blocks_ = this->register_module("blocks", std::make_shared<nn::ModuleList<T>>());
        for (int i = 0; i < 2; ++i) blocks_->push_back(std::make_shared<ResidualBlock<T>>(8));
        dropout_ = this->register_module("dropout", std::make_shared<nn::Dropout<T>>(0.1));
        head_ = this->register_module("head", std::make_shared<Head<T>>(8, 3));
    }
    Var<T> forward(const Var<T>& x)
    {
        Var<T> h = stem_->forward(x - tg::constant(*offset_));
        for (std::size_t i = 0; i < blocks_->size(); ++i) h = blocks_->template at<ResidualBlock<T>>(i).forward(h);
        return head_->forward(dropout_->forward(h)) / this->get_parameter("temperature");
    }

private:
    xt::xarray<T>* offset_;
    std::shared_ptr<nn::Linear<T>> stem_;
    std::shared_ptr<nn::ModuleList<T>> blocks_;
    std::shared_ptr<nn::Dropout<T>> dropout_;
    std::shared_ptr<Head<T>> head_;
};

std::map<std::string, xt::xarray<double>> state_from_file(const std::string& path)
{
    std::map<std::string, xt::xarray<double>> state;
    for (const auto& [name, tensor] : tg::io::load(path).tensors) state[name] = tensor.to<double>();
    return state;
}

nlohmann::json module_reference()
{
    std::ifstream in(TAPEGRAD_REFERENCE_DIR "/module_reference.json");
    INFO("tests/reference/module_reference.json is missing; run tests/reference/make_module_reference.py");
    REQUIRE(in);
    return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("a nested model of registered modules has PyTorch's names, order and shapes", "[modules][pytorch]")
{
    const nlohmann::json ref = module_reference();
    Net<double> net;

    std::vector<std::pair<std::string, std::vector<std::size_t>>> params, want_params;
    for (const auto& [name, var] : net.named_parameters()) params.emplace_back(name, dims(var.shape()));
    for (const auto& e : ref.at("named_parameters"))
        want_params.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::vector<std::size_t>>());
    CHECK(params == want_params);

    std::vector<std::pair<std::string, std::vector<std::size_t>>> buffers, want_buffers;
    for (const auto& [name, ref_buffer] : net.named_buffers()) {
        buffers.emplace_back(name, ref_buffer.values != nullptr ? dims(ref_buffer.values->shape())
                                                                : std::vector<std::size_t>{});
    }
    for (const auto& e : ref.at("named_buffers"))
        want_buffers.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::vector<std::size_t>>());
    CHECK(buffers == want_buffers);

    std::vector<std::string> children;
    for (const auto& nc : net.named_children()) children.push_back(nc.first);
    CHECK(children == ref.at("named_children").get<std::vector<std::string>>());

    std::vector<std::pair<std::string, std::string>> modules, want_modules;
    for (const auto& [name, m] : net.named_modules()) modules.emplace_back(name, m->type_name());
    for (const auto& e : ref.at("named_modules"))
        want_modules.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
    CHECK(modules == want_modules);

    // state_dict holds exactly PyTorch's keys, listed in PyTorch's order by state_dict_keys.
    const auto want_keys = ref.at("state_dict_keys").get<std::vector<std::string>>();
    CHECK(net.state_dict_keys() == want_keys);
    std::vector<std::string> keys;
    for (const auto& kv : net.state_dict()) keys.push_back(kv.first);
    CHECK(std::set<std::string>(keys.begin(), keys.end()) == std::set<std::string>(want_keys.begin(), want_keys.end()));
    CHECK(keys.size() == want_keys.size());
}

TEST_CASE("PyTorch's state_dict of the nested model loads and gives PyTorch's output", "[modules][pytorch]")
{
    const nlohmann::json ref = module_reference();
    Net<double> net;
    net.load_state_dict(state_from_file(TAPEGRAD_REFERENCE_DIR "/module_state_dict.safetensors"));
    auto& bn = dynamic_cast<nn::BatchNorm1d<double>&>(*net.get_submodule("head.bn"));
    CHECK(bn.num_batches_tracked() == 3);
    net.eval();
    const Var<double> y = net.forward(tg::constant(json_array(ref.at("input"))));
    const double error = worst_relative(y.value(), json_array(ref.at("eval_output")), 1e-3);
    INFO("worst relative difference " << error);
    CHECK(error <= 1e-12);
    // And back: what the model holds now is PyTorch's state, value for value.
    const auto theirs = state_from_file(TAPEGRAD_REFERENCE_DIR "/module_state_dict.safetensors");
    const auto mine = net.state_dict();
    REQUIRE(mine.size() == theirs.size());
    for (const auto& [name, value] : theirs) {
        INFO(name);
        CHECK(mine.at(name) == value);
    }
}

TEST_CASE("registration follows PyTorch's order: own entries first, then children", "[modules]")
{
    nn::Module<double> m;
    auto child = m.register_module("child", std::make_shared<nn::Linear<double>>(2, 3));
    m.register_parameter("w", tg::parameter(xt::xarray<double>{1.0, 2.0}));
    auto& b = m.register_buffer("b", xt::xarray<double>{5.0});
    std::int64_t& count = m.register_count_buffer("count", 4);
    m.register_generator("gen", tg::Generator(1));
    CHECK(names_of(m.named_parameters()) == std::vector<std::string>{"w", "child.weight", "child.bias"});
    CHECK(names_of(m.named_parameters(false)) == std::vector<std::string>{"w"});
    CHECK(m.parameters().size() == 3);
    CHECK(m.num_parameters() == 2 + 6 + 3);
    const auto buffers = m.named_buffers();
    REQUIRE(buffers.size() == 2);
    CHECK(buffers[0].first == "b");
    CHECK(buffers[0].second.values == &b);
    CHECK(buffers[1].second.count == &count);
    CHECK(m.named_generators().size() == 1);
    CHECK(m.get_parameter("child.bias").shape() == std::vector<std::size_t>{3});
    CHECK(m.get_parameter("w").value() == xt::xarray<double>{1.0, 2.0});
    CHECK(m.get_submodule("child").get() == child.get());
    CHECK_THROWS_WITH(m.get_parameter("child.nope"), Equals("get_parameter: no parameter 'child.nope' in Module"));
    CHECK_THROWS_WITH(m.get_submodule("x.y"), Equals("get_submodule: no module 'x.y' in Module"));

    // References into the module survive a move of it.
    nn::Module<double> moved = std::move(m);
    CHECK(moved.named_buffers()[0].second.values == &b);
    // A copy shares the parameters and children, and copies buffers and generators.
    nn::Module<double> copy = moved;
    CHECK(copy.get_parameter("w").raw_node() == moved.get_parameter("w").raw_node());
    CHECK(copy.get_submodule("child").get() == child.get());
    CHECK(copy.named_buffers()[0].second.values != &b);
    CHECK((*copy.named_buffers()[0].second.values == b));
}

TEST_CASE("Sequential takes modules of one's own whose forward takes one Var", "[modules]")
{
    tg::manual_seed(12);
    nn::Sequential<double> s{ResidualBlock<double>(4), nn::ReLU<double>()};
    auto block = std::make_shared<ResidualBlock<double>>(4);
    s.add("last", block);
    CHECK(names_of(s.named_parameters()).front() == "0.norm.weight");
    CHECK(names_of(s.named_parameters()).back() == "last.fc2.bias");
    const Var<double> x = tg::constant(xt::xarray<double>{{0.5, -1.0, 2.0, 0.0}});
    const xt::xarray<double> want = block->forward(tg::relu(s.at<ResidualBlock<double>>(0).forward(x))).value();
    CHECK((s(x).value() == want));
    CHECK(s.at<ResidualBlock<double>>(2).named_parameters().size() == 6);
}

TEST_CASE("a shared module and tied weights are listed once, as PyTorch does", "[modules]")
{
    nn::Module<double> m;
    auto shared = std::make_shared<nn::Linear<double>>(2, 2);
    m.register_module("a", shared);
    m.register_module("b", shared);
    m.register_parameter("tied", shared->weight());
    CHECK(names_of(m.named_parameters()) == std::vector<std::string>{"tied", "a.bias"});
    CHECK(m.named_modules().size() == 2);
    // state_dict has every name, as PyTorch's.
    std::set<std::string> keys;
    for (const auto& kv : m.state_dict()) keys.insert(kv.first);
    CHECK(keys == std::set<std::string>{"tied", "a.weight", "a.bias", "b.weight", "b.bias"});
}

TEST_CASE("registration refuses bad names, duplicates, undefined and non-leaf Vars, and cycles", "[modules][errors]")
{
    nn::Sequential<double> s{nn::Linear<double>(2, 2)};
    CHECK_THROWS_WITH(s.register_parameter("", tg::parameter(xt::xarray<double>{1.0})),
                      Equals("register_parameter: a name must be non-empty and contain no '.' (got '' in Sequential)"));
    CHECK_THROWS_WITH(s.register_buffer("a.b", xt::xarray<double>{1.0}),
                      Equals("register_buffer: a name must be non-empty and contain no '.' (got 'a.b' in Sequential)"));
    CHECK_THROWS_WITH(s.register_parameter("0", tg::parameter(xt::xarray<double>{1.0})),
                      Equals("register_parameter: the name '0' is taken in Sequential (by a module)"));
    s.register_buffer("extra", xt::xarray<double>{1.0});
    CHECK_THROWS_WITH(s.register_count_buffer("extra"),
                      Equals("register_count_buffer: the name 'extra' is taken in Sequential (by a buffer)"));
    CHECK_THROWS_WITH(s.register_generator("extra", tg::Generator(1)),
                      Equals("register_generator: the name 'extra' is taken in Sequential (by a buffer)"));
    CHECK_THROWS_WITH(s.register_parameter("u", Var<double>()),
                      Equals("register_parameter: the Var for 'u' is undefined (in Sequential)"));
    const Var<double> p = tg::parameter(xt::xarray<double>{1.0});
    CHECK_THROWS_WITH(s.register_parameter("op", p * 2.0),
                      Equals("register_parameter: 'op' must be a leaf (tg::parameter or tg::constant), got the "
                             "output of an op (in Sequential)"));
    CHECK_THROWS_WITH(s.register_module("n", std::shared_ptr<nn::Linear<double>>()),
                      Equals("register_module: the module 'n' is null (in Sequential)"));

    auto outer = std::make_shared<nn::Module<double>>();
    auto inner = outer->register_module("inner", std::make_shared<nn::Module<double>>());
    CHECK_THROWS_WITH(outer->register_module("self", outer),
                      Equals("register_module: a module cannot be registered into itself ('self' in Module)"));
    CHECK_THROWS_WITH(inner->register_module("up", outer),
                      Equals("register_module: 'up' (Module) contains this Module; registering it would make a cycle"));
    CHECK_THROWS_WITH(s.add("0", nn::ReLU<double>()),
                      Equals("Sequential::add: the name '0' is taken in Sequential (by a module)"));
    // Nothing was registered by the refused calls.
    CHECK(names_of(s.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
    CHECK(s.named_buffers().size() == 1);
    CHECK(inner->named_children().empty());
    CHECK(s.size() == 1);
}

TEST_CASE("train, eval and zero_grad reach every registered module", "[modules]")
{
    Net<double> net;
    net.eval();
    for (const auto& [name, m] : net.named_modules()) {
        INFO(name);
        CHECK_FALSE(m->is_training());
    }
    net.train();
    for (const auto& [name, m] : net.named_modules()) CHECK(m->is_training());
    tg::sum(net.forward(tg::constant(xt::xarray<double>(xt::ones<double>({4, 6}))))).backward();
    for (const auto& p : net.parameters()) CHECK(p.has_grad());
    net.zero_grad();
    for (const auto& [name, p] : net.named_parameters()) {
        INFO(name);
        CHECK_FALSE(p.has_grad());
    }
}

TEST_CASE("type_name defaults to the class name and summary lists every registered module", "[modules][summary]")
{
    Net<float> net;
    CHECK(net.type_name() == "Net");
    CHECK(net.get_submodule("blocks.0")->type_name() == "ResidualBlock");
    CHECK(net.get_submodule("blocks")->type_name() == "ModuleList");
    CHECK(net.get_submodule("head.bn")->type_name() == "BatchNorm1d");
    CHECK(nn::Dense<float>(2, 3, nn::Activation::tanh).type_name() == "Dense, tanh");
    const std::string s = net.summary();
    INFO(s);
    // Rows in registration order, nested rows indented under their parents, each with its
    // parameter count (a block: LayerNorm 16, Linear(8, 16) 144, GELU 0, Linear(16, 8) 136).
    const std::vector<std::string> rows = {" stem (Linear)",
                                           " blocks (ModuleList)",
                                           "   blocks.0 (ResidualBlock)",
                                           "     blocks.0.norm (LayerNorm)",
                                           "     blocks.0.fc1 (Linear)",
                                           "     blocks.0.act (GELU)",
                                           "     blocks.0.fc2 (Linear)",
                                           "   blocks.1 (ResidualBlock)",
                                           " dropout (Dropout)",
                                           " head (Head)",
                                           "   head.bn (BatchNorm1d)",
                                           "   head.proj (Sequential)",
                                           "     head.proj.0 (Linear)",
                                           "     head.proj.1 (Tanh)",
                                           "     head.proj.2 (Linear)"};
    std::size_t at = 0;
    for (const auto& row : rows) {
        INFO(row);
        const std::size_t found = s.find("\n" + row + " ", at);
        REQUIRE(found != std::string::npos);
        at = found + 1;
    }
    auto count_of = [&](const std::string& label) {
        const std::size_t line = s.find("\n" + label + " ");
        REQUIRE(line != std::string::npos);
        const std::string text = s.substr(line + 1, s.find('\n', line + 1) - line - 1);
        return std::stoul(text.substr(text.find_last_of(' ') + 1));
    };
    CHECK(count_of(" stem (Linear)") == 6 * 8 + 8);
    CHECK(count_of("   blocks.0 (ResidualBlock)") == 16 + 144 + 136);
    CHECK(count_of(" blocks (ModuleList)") == 2 * (16 + 144 + 136));
    CHECK(count_of("     blocks.0.act (GELU)") == 0);
    CHECK(count_of(" head (Head)") == 3 + 16 + (8 * 8 + 8) + (8 * 3 + 3));
    const std::size_t total = 1 + 56 + 2 * 296 + 3 + 16 + 72 + 27;
    CHECK_THAT(s, Contains("Total params: " + std::to_string(total) + " (" + std::to_string(4 * total) + " bytes)"));
    CHECK(net.num_parameters() == total);
    // Features flow through a Sequential: head.proj.0 gives 8, Tanh keeps it, the last gives 3.
    CHECK_THAT(s, Contains("     head.proj.1 (Tanh)") && Contains("(None, 8)") && Contains("(None, 3)"));
}

// --- state_dict across dtypes and files of the previous release --------------------------

TEST_CASE("a float model's state_dict loads into the double model and back", "[modules][state_dict]")
{
    tg::manual_seed(4);
    Net<float> f;
    // Training batches move the batch norm statistics and its count away from their start.
    for (int i = 0; i < 2; ++i) f.forward(tg::constant(xt::xarray<float>(xt::ones<float>({5, 6}) * float(i + 1))));
    const auto state = f.state_dict();
    CHECK(state.at("head.bn.num_batches_tracked") == xt::xarray<double>(2.0));
    CHECK(state.at("head.bn.num_batches_tracked").dimension() == 0);

    tg::manual_seed(5);
    Net<double> d;
    d.load_state_dict(state);
    for (const auto& [name, p] : d.named_parameters()) {
        INFO(name);
        CHECK(p.value() == xt::xarray<double>(xt::cast<double>(f.get_parameter(name).value())));
    }
    CHECK(dynamic_cast<nn::BatchNorm1d<double>&>(*d.get_submodule("head.bn")).num_batches_tracked() == 2);

    // Back to float: values round to the nearest float.
    auto changed = d.state_dict();
    for (auto& [name, v] : changed) {
        if (name != "head.bn.num_batches_tracked") v += 1e-9;
    }
    d.load_state_dict(changed);
    Net<float> back;
    back.load_state_dict(d.state_dict());
    for (const auto& [name, v] : back.state_dict()) {
        INFO(name);
        CHECK(v == xt::xarray<double>(xt::cast<double>(xt::xarray<float>(xt::cast<float>(changed.at(name))))));
    }
    // The running statistics went across too.
    const auto& bn_f = dynamic_cast<nn::BatchNorm1d<float>&>(*f.get_submodule("head.bn"));
    const auto& bn_back = dynamic_cast<nn::BatchNorm1d<float>&>(*back.get_submodule("head.bn"));
    CHECK(xt::allclose(bn_back.running_var(), bn_f.running_var(), 1e-6, 0.0));
    CHECK(bn_back.num_batches_tracked() == 2);
}

TEST_CASE("load_state_dict refuses missing, extra and misshapen entries and changes nothing",
          "[modules][state_dict][errors]")
{
    nn::Sequential<double> m{nn::Linear<double>(2, 3), nn::BatchNorm1d<double>(3)};
    const auto before = m.state_dict();
    auto state = before;
    state.erase("0.bias");
    state["1.extra"] = xt::xarray<double>{1.0};
    state["1.weight"] = xt::zeros<double>({4});
    state["1.running_mean"] = xt::xarray<double>{7.0, 7.0, 7.0};
    CHECK_THROWS_WITH(m.load_state_dict(state),
                      Equals("load_state_dict: the state does not fit Sequential: missing '0.bias'; unexpected "
                             "'1.extra'; '1.weight' is [4] in the state but [3] in Sequential"));
    CHECK(m.state_dict() == before);
    // Not strict: missing and extra keys are fine, shapes still are not.
    CHECK_THROWS_WITH(m.load_state_dict(state, false),
                      Equals("load_state_dict: the state does not fit Sequential: '1.weight' is [4] in the state but "
                             "[3] in Sequential"));
    state["1.weight"] = xt::xarray<double>{2.0, 2.0, 2.0};
    m.load_state_dict(state, false);
    CHECK(m.get_parameter("1.weight").value() == xt::xarray<double>{2.0, 2.0, 2.0});
    CHECK(m.at<nn::BatchNorm1d<double>>(1).running_mean() == xt::xarray<double>{7.0, 7.0, 7.0});
    CHECK(m.get_parameter("0.bias").value() == before.at("0.bias"));
    // An integer buffer takes integers only; a float model refuses values beyond float.
    auto count = m.state_dict();
    count["1.num_batches_tracked"] = xt::xarray<double>(1.5);
    CHECK_THROWS_WITH(m.load_state_dict(count),
                      Equals("load_state_dict: the state does not fit Sequential: '1.num_batches_tracked' must hold an "
                             "integer, got 1.5"));
    nn::Linear<float> small(1, 1);
    xt::xarray<double> big = xt::zeros<double>({1, 1});
    big(0, 0) = 1e300;
    CHECK_THROWS_WITH(small.load_state_dict({{"weight", big}, {"bias", xt::xarray<double>{0.0}}}),
                      Equals("load_state_dict: the state does not fit Linear: 'weight' element 0 (1e+300) does not "
                             "fit in float"));
}

namespace {

// The architectures of tests/reference/make_legacy_files.cpp (seeds of their own: the
// values come from the files).
nn::Sequential<float> legacy_image_model(std::uint64_t seed)
{
    tg::Generator g(seed);
    nn::Sequential<float> inner{
        nn::Dense<float>(10, 8, nn::Activation::tanh, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), g),
        nn::Sigmoid<float>(),
        nn::Dense<float>(8, 6, nn::Activation::none, nn::init::glorot_uniform(), nn::init::uniform(-0.1, 0.1), g)};
    nn::Sequential<float> m;
    m.add(nn::Conv2d<float>(1, 4, 3, {{1, 1}, {1, 1}, {1, 1}, 1, true}, g));
    m.add(nn::BatchNorm2d<float>(4));
    m.add(nn::ReLU<float>());
    m.add(nn::MaxPool2d<float>(2));
    m.add(nn::ConvTranspose2d<float>(4, 3, 2, {{2, 2}, {0, 0}, {0, 0}, 1, true}, g));
    m.add(nn::AvgPool2d<float>(2));
    m.add(nn::AdaptiveAvgPool2d<float>({2, 2}));
    m.add(nn::Dropout2d<float>(0.3, seed + 1));
    m.add(nn::Flatten<float>());
    m.add(nn::Linear<float>(12, 10, true, g));
    m.add(nn::LayerNorm<float>({10}));
    m.add(inner);
    m.add(nn::BatchNorm1d<float>(6));
    m.add(nn::GELU<float>());
    m.add(nn::Dropout<float>(0.2, seed + 2));
    m.add(nn::LeakyReLU<float>(0.1));
    m.add(nn::SiLU<float>());
    m.add(nn::Tanh<float>());
    return m;
}

nn::Sequential<float> legacy_sequence_model(std::uint64_t seed)
{
    tg::Generator g(seed);
    return nn::Sequential<float>{nn::Embedding<float>(10, 4, g), nn::Conv1d<float>(5, 3, 2, {1, 0, 1, 1, true}, g),
                                 nn::MaxPool1d<float>(2), nn::Flatten<float>()};
}

// Every parameter and buffer equals the file's tensor of the same name, exactly.
void check_holds_file(nn::Module<float>& m, const tg::io::File& file, const std::string& prefix)
{
    std::size_t matched = 0;
    for (const auto& [name, p] : m.named_parameters()) {
        INFO(name);
        CHECK(p.value() == file.tensors.at(prefix + name).to<float>());
        ++matched;
    }
    for (const auto& [name, b] : m.named_buffers()) {
        INFO(name);
        if (b.values != nullptr) {
            CHECK((*b.values == file.tensors.at(prefix + name).to<float>()));
        } else {
            CHECK(*b.count == file.tensors.at(prefix + name).to<std::int64_t>()());
        }
        ++matched;
    }
    std::size_t in_file = 0;
    for (const auto& kv : file.tensors) in_file += kv.first.rfind(prefix, 0) == 0;
    CHECK(matched == in_file);
}

}  // namespace

TEST_CASE("parameter files and checkpoints written before registration load under the same names",
          "[modules][legacy][io]")
{
    const std::string dir = TAPEGRAD_REFERENCE_DIR;
    const tg::io::File expected = tg::io::load(dir + "/legacy_expected.safetensors");
    // The outputs are recomputed here, through oneDNN's float kernels, which may pick other
    // instruction sets on another CPU than the one that wrote the file: float rounding.
    constexpr double tolerance = 1e-5;

    nn::Sequential<float> image = legacy_image_model(101);
    tg::io::load_parameters(dir + "/legacy_image_model.safetensors", image);
    check_holds_file(image, tg::io::load(dir + "/legacy_image_model.safetensors"), "");
    image.eval();
    const Var<float> x = tg::constant(expected.tensors.at("image_input").to<float>());
    CHECK(worst_relative(image(x).value(), expected.tensors.at("image_eval_output").to<float>(), 1e-3) <= tolerance);

    nn::Sequential<float> sequence = legacy_sequence_model(102);
    tg::io::load_parameters(dir + "/legacy_sequence_model.safetensors", sequence);
    check_holds_file(sequence, tg::io::load(dir + "/legacy_sequence_model.safetensors"), "");
    CHECK(worst_relative(sequence(tg::constant(expected.tensors.at("sequence_input").to<float>())).value(),
                         expected.tensors.at("sequence_output").to<float>(), 1e-3) <= tolerance);

    // The checkpoint: model, Adam's moments and step counts, both dropout generators and
    // the default generator. Restored exactly: saved again, every tensor is the old file's.
    const std::string ck = dir + "/legacy_checkpoint.safetensors";
    nn::Sequential<float> run = legacy_image_model(103);
    tg::optim::AdamOptions o;
    o.lr = 0.01;
    o.weight_decay = 0.01;
    tg::optim::Adam<float> opt(run.parameters(), o);
    const tg::io::CheckpointInfo info = tg::io::load_checkpoint(ck, run, opt);
    CHECK(info.epoch == 1);
    CHECK(info.step == 2);
    CHECK(info.extra.at("note") == "legacy");
    check_holds_file(run, tg::io::load(ck), "model.");
    const auto generators = run.named_generators();
    REQUIRE(generators.size() == 2);
    CHECK(generators[0].first == "7.generator");
    CHECK(generators[1].first == "14.generator");
    TempDir tmp;
    tg::io::save_checkpoint(tmp.file("again.safetensors"), run, opt, info);
    const tg::io::File old_file = tg::io::load(ck), again = tg::io::load(tmp.file("again.safetensors"));
    CHECK(again.tensors.size() == old_file.tensors.size());
    for (const auto& [name, tensor] : old_file.tensors) {
        INFO(name);
        REQUIRE(again.tensors.count(name) == 1);
        CHECK(again.tensors.at(name) == tensor);
    }
    CHECK(again.metadata == old_file.metadata);

    // One more step lands where the old release's did. A moment, step count or generator
    // given to the wrong parameter or layer moves a parameter by about lr (0.01) more or
    // less; float rounding of the recomputed gradient (other kernels on another CPU), which
    // Adam amplifies where a gradient is near zero, stays below lr / 100.
    std::map<std::string, xt::xarray<float>> before;
    for (const auto& [name, p] : run.named_parameters()) before[name] = p.value();
    opt.zero_grad();
    tg::mse_loss(run(x), tg::constant(expected.tensors.at("image_target").to<float>())).backward();
    opt.step();
    double worst_step = 0;
    for (const auto& [name, p] : run.named_parameters()) {
        const xt::xarray<float> want = expected.tensors.at("after_step." + name).to<float>();
        REQUIRE(dims(want.shape()) == dims(p.shape()));
        const double moved = xt::amax(xt::abs(p.value() - before[name]))();
        const double error = xt::amax(xt::abs(p.value() - want))();
        INFO(name << ": moved up to " << moved << ", off the old release's step by up to " << error);
        CHECK(moved > 1e-4);
        CHECK(error <= o.lr / 100);
        worst_step = std::max(worst_step, error);
    }
    WARN("legacy checkpoint: the step after loading is off the old release's by at most " << worst_step);
    for (const auto& [name, b] : run.named_buffers()) {
        INFO(name);
        if (b.values != nullptr) {
            CHECK(worst_relative(*b.values, expected.tensors.at("after_step." + name).to<float>(), 1e-3) <= tolerance);
        } else {
            CHECK(*b.count == expected.tensors.at("after_step." + name).to<std::int64_t>()());
        }
    }
}

TEST_CASE("a model of the user's own modules saves, loads and checkpoints by its dotted names", "[modules][io]")
{
    TempDir tmp;
    tg::manual_seed(8);
    Net<float> a;
    a.forward(tg::constant(xt::xarray<float>(xt::ones<float>({3, 6}))));  // moves the batch norm buffers
    tg::io::save_parameters(tmp.file("net.safetensors"), a);
    const tg::io::File file = tg::io::load(tmp.file("net.safetensors"));
    CHECK(file.tensors.count("blocks.1.fc2.weight") == 1);
    CHECK(file.tensors.at("head.bn.num_batches_tracked").dtype == tg::io::Dtype::i64);
    CHECK(file.tensors.at("offset").shape == std::vector<std::size_t>{6});
    tg::manual_seed(9);
    Net<float> b;
    tg::io::load_parameters(tmp.file("net.safetensors"), b);
    CHECK(b.state_dict() == a.state_dict());

    // A checkpoint carries the nested dropout generator: two runs resumed from it agree.
    tg::optim::SGD<float> opt_a(a.parameters(), tg::optim::SGDOptions{});
    tg::io::save_checkpoint(tmp.file("ck.safetensors"), a, opt_a);
    CHECK(tg::io::load(tmp.file("ck.safetensors")).tensors.count("rng.model.dropout.generator") == 1);
    const Var<float> x = tg::constant(xt::xarray<float>(xt::ones<float>({4, 6})));
    const xt::xarray<float> first = a.forward(x).value();
    tg::optim::SGD<float> opt_b(b.parameters(), tg::optim::SGDOptions{});
    tg::io::load_checkpoint(tmp.file("ck.safetensors"), b, opt_b);
    CHECK((b.forward(x).value() == first));
}

// --- functional_call ---------------------------------------------------------------------

TEST_CASE("functional_call runs with stand-in parameters and puts the module's own back", "[modules][functional]")
{
    nn::Linear<double> lin(2, 1);
    const Var<double> w0 = lin.weight();
    const Var<double> x = tg::constant(xt::xarray<double>{{1.0, 2.0}});
    const Var<double> w = tg::parameter(xt::xarray<double>{{3.0, -1.0}});
    const Var<double> y = nn::functional_call(lin, {{"weight", w}}, [&] { return lin.forward(x); });
    CHECK(y.item() == Approx(3.0 - 2.0 + lin.bias().item()));
    CHECK(lin.weight().raw_node() == w0.raw_node());
    // The gradient reaches the stand-in, not the module's weight.
    y.backward();
    CHECK(w.grad() == xt::xarray<double>{{1.0, 2.0}});
    CHECK_FALSE(w0.has_grad());

    // Put back also when f throws; f may return nothing.
    CHECK_THROWS_WITH(nn::functional_call(lin, {{"weight", w}},
                                          [&] {
                                              CHECK(lin.weight().raw_node() == w.raw_node());
                                              throw tg::Error("inside");
                                          }),
                      Equals("inside"));
    CHECK(lin.weight().raw_node() == w0.raw_node());
    nn::functional_call(lin, {}, [] {});

    CHECK_THROWS_WITH(nn::functional_call(lin, {{"wieght", w}}, [] { return 0; }),
                      Equals("functional_call: Linear has no parameter 'wieght'"));
    CHECK_THROWS_WITH(nn::functional_call(lin, {{"bias", w}}, [] { return 0; }),
                      Equals("functional_call: 'bias' is [1, 2] but the parameter is [1]"));
    CHECK_THROWS_WITH(nn::functional_call(lin, {{"bias", Var<double>()}}, [] { return 0; }),
                      Equals("functional_call: the Var for 'bias' is undefined"));
    // Tied parameters take one stand-in.
    nn::Module<double> tied;
    auto shared = tied.register_module("a", std::make_shared<nn::Linear<double>>(2, 1));
    tied.register_module("b", shared);
    const Var<double> other = tg::parameter(xt::xarray<double>{{0.0, 0.0}});
    CHECK_THROWS_WITH(nn::functional_call(tied, {{"a.weight", w}, {"b.weight", other}}, [] { return 0; }),
                      Equals("functional_call: 'a.weight' and 'b.weight' are one parameter (tied) but were given "
                             "different Vars"));
    nn::functional_call(tied, {{"b.weight", w}}, [&] { CHECK(shared->weight().raw_node() == w.raw_node()); });
    CHECK(shared->weight().raw_node() != w.raw_node());
}

TEST_CASE("functional_call through tg::grad(create_graph) gives MAML's outer gradient in closed form",
          "[modules][functional][second_order]")
{
    // Linear regression y = X w: one inner SGD step on task a, the loss on task b at the
    // adapted weights, differentiated with respect to the starting weights. With
    // L(w) = mean((X w - y)^2), grad L = 2/N X^T (X w - y) and Hessian H = 2/N X^T X, so
    // d L_b(w - lr grad L_a(w)) / dw = (I - lr H_a) grad L_b(w').
    const std::size_t d = 3, na = 5, nb = 4;
    const double lr = 0.1;
    std::mt19937_64 rng(17);
    std::normal_distribution<double> normal;
    auto fill = [&](std::vector<std::size_t> shape) {
        xt::xarray<double> a = xt::zeros<double>(shape);
        for (auto& e : a) e = normal(rng);
        return a;
    };
    const xt::xarray<double> xa = fill({na, d}), ya = fill({na, 1}), xb = fill({nb, d}), yb = fill({nb, 1});
    nn::Linear<double> model(d, 1, false);
    model.weight().set_value(fill({1, d}));
    const xt::xarray<double> w = model.weight().value();

    auto loss = [&](const xt::xarray<double>& x, const xt::xarray<double>& y) {
        return tg::mse_loss(model.forward(tg::constant(x)), tg::constant(y));
    };
    const Var<double> g = tg::grad({loss(xa, ya)}, {model.weight()}, {}, {true})[0];
    const Var<double> adapted = model.weight() - lr * g;
    const Var<double> outer = nn::functional_call(model, {{"weight", adapted}}, [&] { return loss(xb, yb); });
    const xt::xarray<double> maml = tg::grad({outer}, {model.weight()})[0].value();

    // The closed form, with plain loops.
    auto gradient = [&](const xt::xarray<double>& x, const xt::xarray<double>& y, const std::vector<double>& v) {
        std::vector<double> out(d, 0.0);
        const std::size_t n = x.shape()[0];
        for (std::size_t r = 0; r < n; ++r) {
            double res = -y(r, 0);
            for (std::size_t j = 0; j < d; ++j) res += x(r, j) * v[j];
            for (std::size_t j = 0; j < d; ++j) out[j] += 2.0 / n * res * x(r, j);
        }
        return out;
    };
    std::vector<double> w_vec(w.begin(), w.end());
    const std::vector<double> ga = gradient(xa, ya, w_vec);
    std::vector<double> w_adapted(d);
    for (std::size_t j = 0; j < d; ++j) w_adapted[j] = w_vec[j] - lr * ga[j];
    const std::vector<double> gb = gradient(xb, yb, w_adapted);
    for (std::size_t i = 0; i < d; ++i) {
        double expected = gb[i];
        for (std::size_t j = 0; j < d; ++j) {
            double h = 0;
            for (std::size_t r = 0; r < na; ++r) h += 2.0 / na * xa(r, i) * xa(r, j);
            expected -= lr * h * gb[j];
        }
        INFO("element " << i);
        CHECK(maml(0, i) == Approx(expected).epsilon(1e-12));
        // The first-order approximation (no second derivative) differs, so the test can tell.
        CHECK(std::abs(gb[i] - expected) > 1e-6);
    }
    CHECK(model.weight().value() == w);
}

// --- module gradcheck, gradgradcheck, hvp ------------------------------------------------

namespace {

// A linear layer whose weight is counted twice in forward but once by the tape (the second
// use is detached): its weight gradient is half the true one when `wrong`.
class HalfGradient : public nn::Module<double> {
public:
    HalfGradient(std::size_t in, std::size_t out, bool wrong) : wrong_(wrong)
    {
        fc_ = register_module("fc", std::make_shared<nn::Linear<double>>(in, out));
    }
    Var<double> forward(const Var<double>& x)
    {
        const Var<double>& w = fc_->weight();
        const Var<double> twice = w + (wrong_ ? tg::detach(w) : w);
        return tg::tanh(tg::matmul(x, twice, false, true) + fc_->bias());
    }

private:
    bool wrong_;
    std::shared_ptr<nn::Linear<double>> fc_;
};

class Blocks : public nn::Module<double> {
public:
    explicit Blocks(bool wrong_second)
    {
        blocks_ = register_module("blocks", std::make_shared<nn::ModuleList<double>>());
        blocks_->push_back(std::make_shared<HalfGradient>(2, 3, false));
        blocks_->push_back(std::make_shared<HalfGradient>(3, 2, wrong_second));
        norm_ = register_module("norm", std::make_shared<nn::BatchNorm1d<double>>(2));
        drop_ = register_module("drop", std::make_shared<nn::Dropout<double>>(0.3, 5));
    }
    Var<double> forward(const Var<double>& x)
    {
        Var<double> h = blocks_->at<HalfGradient>(0).forward(x);
        h = blocks_->at<HalfGradient>(1).forward(h);
        return drop_->forward(norm_->forward(h));
    }

private:
    std::shared_ptr<nn::ModuleList<double>> blocks_;
    std::shared_ptr<nn::BatchNorm1d<double>> norm_;
    std::shared_ptr<nn::Dropout<double>> drop_;
};

const xt::xarray<double> kInput{{0.3, -0.7}, {1.1, 0.4}, {-0.5, 0.9}, {0.2, 0.1}};

}  // namespace

TEST_CASE("module gradcheck passes in training mode and leaves the model as it was", "[modules][gradcheck]")
{
    tg::manual_seed(3);
    Blocks model(false);
    const auto state = model.state_dict();
    const tg::Generator drop_state = *model.named_generators()[0].second;
    const Var<double> x = tg::constant(kInput);
    // Batch statistics and dropout masks in every evaluation: the check restores the
    // generators and buffers before each one, so every evaluation draws the same masks.
    const tg::GradcheckResult r = tg::gradcheck(model, [&] { return tg::sum(tg::square(model.forward(x))); });
    INFO(r.message);
    CHECK(r.ok);
    CHECK_THAT(r.message, StartsWith("gradcheck: ok"));
    CHECK(model.state_dict() == state);
    CHECK(*model.named_generators()[0].second == drop_state);

    const tg::GradcheckResult rr = tg::gradgradcheck(model, [&] { return tg::sum(tg::square(model.forward(x))); });
    INFO(rr.message);
    CHECK(rr.ok);
    CHECK(model.state_dict() == state);
}

TEST_CASE("module gradcheck names the parameter whose gradient is wrong", "[modules][gradcheck]")
{
    tg::manual_seed(3);
    Blocks model(true);
    model.eval();
    const Var<double> x = tg::constant(kInput);
    const tg::GradcheckResult r = tg::gradcheck(model, [&] { return tg::sum(model.forward(x)); });
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK(r.parameter == "blocks.1.fc.weight");
    CHECK_THAT(r.message, StartsWith("gradcheck: parameter 'blocks.1.fc.weight' element ["));
    CHECK_THAT(r.message, Contains("]: analytic ") && Contains(" vs numerical "));
    REQUIRE(r.input_index.size() == 2);
    CHECK(r.input_index[0] < 2);
    CHECK(r.input_index[1] < 3);
    // The detached copy hides half of the true derivative.
    CHECK(r.analytic == Approx(r.numerical / 2).epsilon(1e-4));
    // A class in an anonymous namespace is named without it.
    CHECK(model.type_name() == "Blocks");
    CHECK(model.get_submodule("blocks.1")->type_name() == "HalfGradient");
    CHECK_THROWS_WITH(tg::gradcheck(model, std::function<Var<double>()>()),
                      Equals("gradcheck: the loss function is empty"));
    nn::Module<double> empty;
    CHECK_THROWS_WITH(tg::gradcheck(empty, [] { return tg::constant(xt::xarray<double>(1.0)); }),
                      Equals("gradcheck: Module has no parameter that requires grad"));
}

namespace {

// y = x^3 with a correct fused first-order kernel and a wrong vjp rule (3 x instead of
// 3 x^2), which only a second derivative uses.
struct CubeWrongRule {
    static constexpr const char* name = "cube_wrong_rule";
    template <class T> void forward(tg::OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        xt::noalias(c.output()) = x * x * x;
    }
    template <class T> void backward(tg::OpContext<T>& c) const
    {
        const auto& x = c.input(0);
        c.add_grad(0, c.grad_out() * T(3) * x * x);
    }
    template <class T> void vjp(tg::VjpContext<T>& v) const { v.add_grad(0, v.grad_out() * v.input(0) * 3.0); }
};

class Cubic : public nn::Module<double> {
public:
    Cubic()
    {
        register_parameter("a", tg::parameter(xt::xarray<double>{0.5, -1.5}));
        inner_ = register_module("inner", std::make_shared<nn::Linear<double>>(2, 2));
    }
    Var<double> forward(const Var<double>& x)
    {
        return tg::record(CubeWrongRule{}, inner_->forward(x * get_parameter("a")));
    }

private:
    std::shared_ptr<nn::Linear<double>> inner_;
};

}  // namespace

TEST_CASE("module gradgradcheck names the parameter and the gradient that disagree", "[modules][gradcheck]")
{
    tg::manual_seed(6);
    Cubic model;
    const Var<double> x = tg::constant(xt::xarray<double>{{0.4, -0.8}, {1.2, 0.3}});
    auto loss = [&] { return tg::sum(model.forward(x)); };
    CHECK(tg::gradcheck(model, loss).ok);  // first order runs the fused kernel: right
    const tg::GradcheckResult r = tg::gradgradcheck(model, loss);
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.message, StartsWith("gradgradcheck: parameter '"));
    CHECK_THAT(r.message, Contains(", gradient of '") && Contains(" vs numerical "));
    CHECK(std::set<std::string>{"a", "inner.weight", "inner.bias"}.count(r.parameter) == 1);
}

TEST_CASE("module hvp gives H v by parameter name", "[modules][hvp]")
{
    // L = mean((x W^T + b - y)^2) over N rows and O outputs: with r = x W^T + b - y,
    // (H v)_W[o, i] = 2/(N O) sum_n (x_n . vW_o + vb_o) x_ni and (H v)_b[o] = 2/(N O) sum_n (x_n . vW_o + vb_o).
    const std::size_t n = 4, in = 3, out = 2;
    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> u(-1, 1);
    auto fill = [&](std::vector<std::size_t> shape) {
        xt::xarray<double> a = xt::zeros<double>(shape);
        for (auto& e : a) e = u(rng);
        return a;
    };
    const xt::xarray<double> x = fill({n, in}), y = fill({n, out}), vw = fill({out, in}), vb = fill({out});
    nn::Linear<double> model(in, out);
    auto loss = [&] { return tg::mse_loss(model.forward(tg::constant(x)), tg::constant(y)); };
    const auto hv = tg::hvp(model, loss, {{"weight", vw}, {"bias", vb}});
    REQUIRE(hv.size() == 2);
    const double scale = 2.0 / (n * out);
    for (std::size_t o = 0; o < out; ++o) {
        double hb = 0;
        for (std::size_t r = 0; r < n; ++r) {
            double dot = vb(o);
            for (std::size_t j = 0; j < in; ++j) dot += x(r, j) * vw(o, j);
            hb += scale * dot;
        }
        CHECK(hv.at("bias")(o) == Approx(hb).epsilon(1e-12));
        for (std::size_t i = 0; i < in; ++i) {
            double hw = 0;
            for (std::size_t r = 0; r < n; ++r) {
                double dot = vb(o);
                for (std::size_t j = 0; j < in; ++j) dot += x(r, j) * vw(o, j);
                hw += scale * dot * x(r, i);
            }
            CHECK(hv.at("weight")(o, i) == Approx(hw).epsilon(1e-12));
        }
    }
    // A name left out counts as a zero direction.
    const auto only_bias = tg::hvp(model, loss, {{"bias", vb}});
    for (std::size_t o = 0; o < out; ++o) CHECK(only_bias.at("bias")(o) == Approx(scale * n * vb(o)).epsilon(1e-12));
    CHECK_THROWS_WITH(tg::hvp(model, loss, {{"weights", vw}}),
                      Equals("hvp: Linear has no parameter 'weights' that requires grad"));
    CHECK_THROWS_WITH(tg::hvp(model, loss, {{"bias", vw}}),
                      Equals("hvp: v['bias'] is [2, 3] but the parameter is [2]"));
}

// --- Var::set_grad, reshape with -1, factories, printing ---------------------------------

TEST_CASE("set_grad sets a leaf's gradient, which backward then adds to", "[modules][set_grad]")
{
    const Var<double> w = tg::parameter(xt::xarray<double>{1.0, 2.0});
    w.set_grad(xt::xarray<double>{0.5, 0.25});
    CHECK(w.grad() == xt::xarray<double>{0.5, 0.25});
    tg::sum(w * 3.0).backward();
    CHECK(w.grad() == xt::xarray<double>{3.5, 3.25});
    CHECK_THROWS_WITH(w.set_grad(xt::xarray<double>{1.0}),
                      Equals("set_grad: shape [1] differs from the leaf's shape [2]"));
    const Var<double> y = w * 2.0;
    CHECK_THROWS_WITH(y.set_grad(xt::xarray<double>{1.0, 1.0}),
                      Equals("set_grad: only a leaf (parameter or constant) keeps a gradient; this Var is the output "
                             "of an op"));
}

TEST_CASE("reshape infers one size given as -1 and still takes braced lists of sizes", "[modules][reshape]")
{
    const Var<double> x = tg::parameter(xt::xarray<double>(xt::arange<double>(24.0).reshape({2, 3, 4})));
    const std::size_t n = x.shape()[0];
    CHECK(tg::reshape(x, {n, 12}).shape() == std::vector<std::size_t>{2, 12});  // a size_t beside an int
    CHECK(tg::reshape(x, {n, -1}).shape() == std::vector<std::size_t>{2, 12});
    CHECK(tg::reshape(x, {-1}).shape() == std::vector<std::size_t>{24});
    CHECK(tg::reshape(x, {3, -1, 2}).shape() == std::vector<std::size_t>{3, 4, 2});
    CHECK(tg::reshape(x, std::vector<std::ptrdiff_t>{-1, 6}).shape() == std::vector<std::size_t>{4, 6});
    const Var<double> y = tg::reshape(x, {4, -1});
    CHECK(y.value()(3, 5) == 23.0);
    tg::sum(y * y).backward();
    CHECK(x.grad() == 2.0 * x.value());
    CHECK_THROWS_WITH(tg::reshape(x, {-1, 2, -1}), Equals("reshape: only one size can be -1 (got [-1, 2, -1])"));
    CHECK_THROWS_WITH(tg::reshape(x, {-2, 12}), Equals("reshape: sizes must be non-negative or -1 (got [-2, 12])"));
    CHECK_THROWS_WITH(
        tg::reshape(x, {5, -1}),
        Equals("reshape: cannot reshape [2, 3, 4] (24 elements) into [5, -1]: 24 is not a multiple of 5"));
    CHECK_THROWS_WITH(
        tg::reshape(tg::constant(xt::xarray<double>(xt::zeros<double>({0, 3}))), {0, -1}),
        Equals("reshape: the size for -1 cannot be inferred when another size is 0 ([0, -1] for [0, 3])"));
    CHECK_THROWS_WITH(tg::reshape(x, {5, 5}),
                      StartsWith("reshape: cannot reshape [2, 3, 4] (24 elements) into [5, 5]"));
    CHECK_THROWS_WITH(tg::reshape(Var<double>(), {-1}), Contains("undefined"));
}

TEST_CASE("factory functions make constants of the requested shape, dtype and distribution", "[modules][factory]")
{
    static_assert(std::is_same<decltype(tg::randn({2})), Var<float>>::value, "float by default, as torch");
    tg::Generator gen(31);
    const Var<double> r = tg::randn<double>({200, 50}, gen);
    CHECK_FALSE(r.requires_grad());
    CHECK(r.shape() == std::vector<std::size_t>{200, 50});
    const double mean = xt::mean(r.value())(), sd = std::sqrt(xt::variance(r.value())());
    CHECK(std::abs(mean) < 0.03);
    CHECK(std::abs(sd - 1.0) < 0.03);
    const Var<float> u = tg::rand({1000}, gen);
    CHECK(xt::amin(u.value())() >= 0.0f);
    CHECK(xt::amax(u.value())() < 1.0f);
    CHECK(std::abs(xt::mean(u.value())() - 0.5f) < 0.05f);
    tg::manual_seed(2);
    const xt::xarray<float> first = tg::randn({3}).value();
    tg::manual_seed(2);
    CHECK((tg::randn({3}).value() == first));
    CHECK((tg::zeros<double>({2, 2}).value() == xt::xarray<double>{{0, 0}, {0, 0}}));
    CHECK((tg::ones({3}).value() == xt::xarray<float>{1, 1, 1}));
    CHECK((tg::full<double>({2}, 2.5).value() == xt::xarray<double>{2.5, 2.5}));
    CHECK((tg::arange(4).value() == xt::xarray<float>{0, 1, 2, 3}));
    CHECK((tg::arange<double>(0.0, 1.0, 0.25).value() == xt::xarray<double>{0, 0.25, 0.5, 0.75}));
    CHECK((tg::arange<double>(3.0, 0.0, -1.5).value() == xt::xarray<double>{3.0, 1.5}));
    CHECK(tg::arange(0).shape() == std::vector<std::size_t>{0});
    CHECK_THROWS_WITH(tg::arange(0.0, 1.0, 0.0), Equals("arange: step must be nonzero"));
    CHECK_THROWS_WITH(tg::arange(0.0, 1.0, -1.0), Equals("arange: step -1 points away from end (start 0, end 1)"));
    CHECK_THROWS_WITH(tg::zeros({std::size_t(1) << 62, 8}),
                      Equals("zeros: shape [4611686018427387904, 8] has too many elements"));
}

TEST_CASE("a Var prints as torch prints a tensor, with its shape and dtype", "[modules][print]")
{
    auto text = [](const auto& v) {
        std::ostringstream s;
        s << v;
        return s.str();
    };
    CHECK(text(tg::constant(xt::xarray<float>{{0.5f, -1.25f}})) ==
          "tensor([[ 0.5000, -1.2500]], shape=[1, 2], dtype=float32)");
    CHECK(text(tg::constant(xt::xarray<double>{{1.5, -2.0}, {3.0, 4.0}})) ==
          "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  4.0000]], shape=[2, 2], dtype=float64)");
    CHECK(text(tg::constant(xt::xarray<double>{1.0, 2.0, 30.0})) ==
          "tensor([ 1.,  2., 30.], shape=[3], dtype=float64)");
    CHECK(text(tg::parameter(xt::xarray<double>(1.5))) ==
          "tensor(1.5000, shape=[], dtype=float64, requires_grad=true)");
    CHECK(text(tg::constant(xt::xarray<double>{1e-5, 1.0})) ==
          "tensor([1.0000e-05, 1.0000e+00], shape=[2], dtype=float64)");
    CHECK(text(tg::constant(xt::xarray<double>{std::nan(""), -INFINITY, 0.5})) ==
          "tensor([   nan,   -inf, 0.5000], shape=[3], dtype=float64)");
    CHECK(text(tg::zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=float32)");
    CHECK(text(Var<float>()) == "tensor(undefined)");
    // Three dimensions: a blank line between the matrices.
    CHECK(text(tg::reshape(tg::arange<double>(8), {2, 2, 2})) ==
          "tensor([[[0., 1.],\n         [2., 3.]],\n\n        [[4., 5.],\n         [6., 7.]]], shape=[2, 2, 2], "
          "dtype=float64)");
    // Over 1000 elements: three at each end of every dimension; scientific notation when the
    // magnitudes span more than 1000x, integers too; rows wrap at 80 columns.
    CHECK(text(tg::arange(1001)) ==
          "tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.], shape=[1001], dtype=float32)");
    CHECK(text(tg::arange(2000)) == "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
                                    "        1.9990e+03], shape=[2000], dtype=float32)");
    CHECK(text(tg::arange<double>(0.0, 2.0, 0.1)) ==
          "tensor([0.0000, 0.1000, 0.2000, 0.3000, 0.4000, 0.5000, 0.6000, 0.7000, 0.8000,\n"
          "        0.9000, 1.0000, 1.1000, 1.2000, 1.3000, 1.4000, 1.5000, 1.6000, 1.7000,\n"
          "        1.8000, 1.9000], shape=[20], dtype=float64)");
    CHECK(text(tg::reshape(tg::arange(1200), {40, 30})) ==
          "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 2.7000e+01, 2.8000e+01,\n"
          "         2.9000e+01],\n"
          "        [3.0000e+01, 3.1000e+01, 3.2000e+01,  ..., 5.7000e+01, 5.8000e+01,\n"
          "         5.9000e+01],\n"
          "        [6.0000e+01, 6.1000e+01, 6.2000e+01,  ..., 8.7000e+01, 8.8000e+01,\n"
          "         8.9000e+01],\n"
          "        ...,\n"
          "        [1.1100e+03, 1.1110e+03, 1.1120e+03,  ..., 1.1370e+03, 1.1380e+03,\n"
          "         1.1390e+03],\n"
          "        [1.1400e+03, 1.1410e+03, 1.1420e+03,  ..., 1.1670e+03, 1.1680e+03,\n"
          "         1.1690e+03],\n"
          "        [1.1700e+03, 1.1710e+03, 1.1720e+03,  ..., 1.1970e+03, 1.1980e+03,\n"
          "         1.1990e+03]], shape=[40, 30], dtype=float32)");
}
