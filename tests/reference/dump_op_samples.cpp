// Writes, as JSON, every registered op's samples that name a PyTorch counterpart: the op,
// the sample's label, its float64 inputs and the PyTorch expression of the same call. The
// input of make_op_reference.py (scripts/update-op-reference runs both).

#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include <tapegrad/tapegrad.hpp>

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::cerr << "usage: dump_op_samples OUT.json\n";
        return 2;
    }
    nlohmann::json samples = nlohmann::json::array();
    std::size_t ops = 0;
    for (const auto& info : tg::registered_ops()) {
        bool any = false;
        std::mt19937_64 rng(tg::sample_seed(info.name));
        for (const auto& s : info.samples(rng)) {
            if (s.torch.empty()) continue;
            nlohmann::json inputs = nlohmann::json::array();
            for (const auto& x : s.inputs) {
                inputs.push_back({{"shape", std::vector<std::size_t>(x.shape().begin(), x.shape().end())},
                                  {"data", std::vector<double>(x.begin(), x.end())}});
            }
            samples.push_back({{"op", info.name}, {"label", s.label}, {"torch", s.torch}, {"inputs", inputs}});
            any = true;
        }
        ops += any ? 1 : 0;
    }
    std::ofstream(argv[1]) << nlohmann::json{{"samples", samples}}.dump() << '\n';
    std::printf("dump_op_samples: %zu samples of %zu ops -> %s\n", samples.size(), ops, argv[1]);
    return 0;
}
