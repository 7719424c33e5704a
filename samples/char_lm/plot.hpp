#pragma once
// The char_lm sample's loss curves as an SVG file: bits per character against minutes of
// training, the training loss as it goes, validation after each epoch, the bigram baseline.

#include <string>
#include <vector>

namespace charlm {

struct Point {
    double minutes;  ///< of training (evaluation not counted)
    double bpc;      ///< bits per character
};

struct LossCurves {
    std::vector<Point> train;       ///< running means during training
    std::vector<Point> validation;  ///< after each epoch
    double bigram = 0;              ///< the baseline, drawn as a dashed line
};

/// Writes the curves to `path`; tg::Error naming the path when it cannot be written.
void write_loss_svg(const std::string& path, const LossCurves& curves, const std::string& title);

}  // namespace charlm
