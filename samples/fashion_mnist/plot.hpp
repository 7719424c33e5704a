#pragma once
// Training curves as an SVG file: loss on the left, accuracy on the right, one point per epoch.

#include <string>
#include <vector>

namespace fashion {

struct Curves {
    std::vector<double> train_loss, test_loss, train_acc, test_acc;  // per epoch; accuracies in [0, 1]
};

/// Writes the curves to `path` as an SVG image (throws tg::Error naming the path on failure).
void write_svg(const std::string& path, const Curves& curves, const std::string& title, const std::string& subtitle);

}  // namespace fashion
