// A small SVG writer for the training curves: two panels with axes, ticks, legends.

#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <tapegrad/error.hpp>

namespace fashion {
namespace {

struct Series {
    const std::vector<double>* values;
    const char* label;
    const char* color;
    double scale;  // 100 for accuracies shown in percent
};

std::string fmt(double v, int decimals)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// One panel at (x0, y0) of size w x h.
void panel(std::ostringstream& svg, double x0, double y0, double w, double h, const std::string& title,
           const std::vector<Series>& series, int decimals)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    std::size_t n = 0;
    for (const auto& s : series) {
        for (double v : *s.values) {
            lo = std::min(lo, v * s.scale);
            hi = std::max(hi, v * s.scale);
        }
        n = std::max(n, s.values->size());
    }
    if (n == 0) return;
    if (!(hi > lo)) {
        lo -= 1;
        hi += 1;
    }
    const double pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
    const double left = x0 + 60, right = x0 + w - 15, top = y0 + 35, bottom = y0 + h - 45;
    auto px = [&](std::size_t i) { return n == 1 ? (left + right) / 2 : left + (right - left) * i / double(n - 1); };
    auto py = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };

    svg << "<text x='" << (left + right) / 2 << "' y='" << y0 + 20 << "' text-anchor='middle' font-size='15'>" << title
        << "</text>\n";
    svg << "<rect x='" << left << "' y='" << top << "' width='" << right - left << "' height='" << bottom - top
        << "' fill='none' stroke='#444'/>\n";
    for (int t = 0; t <= 5; ++t) {
        const double v = lo + (hi - lo) * t / 5.0;
        const double y = py(v);
        svg << "<line x1='" << left << "' y1='" << y << "' x2='" << right << "' y2='" << y << "' stroke='#ddd'/>\n";
        svg << "<text x='" << left - 6 << "' y='" << y + 4 << "' text-anchor='end' font-size='11'>" << fmt(v, decimals)
            << "</text>\n";
    }
    const std::size_t step = std::max<std::size_t>(1, n / 10);
    for (std::size_t i = 0; i < n; i += step) {
        svg << "<text x='" << px(i) << "' y='" << bottom + 16 << "' text-anchor='middle' font-size='11'>" << i + 1
            << "</text>\n";
    }
    svg << "<text x='" << (left + right) / 2 << "' y='" << bottom + 34
        << "' text-anchor='middle' font-size='12'>epoch</text>\n";
    double ly = top + 14;
    for (const auto& s : series) {
        if (s.values->empty()) continue;
        svg << "<polyline fill='none' stroke='" << s.color << "' stroke-width='2' points='";
        for (std::size_t i = 0; i < s.values->size(); ++i) svg << px(i) << ',' << py((*s.values)[i] * s.scale) << ' ';
        svg << "'/>\n";
        for (std::size_t i = 0; i < s.values->size(); ++i) {
            svg << "<circle cx='" << px(i) << "' cy='" << py((*s.values)[i] * s.scale) << "' r='2.5' fill='" << s.color
                << "'/>\n";
        }
        const double last = s.values->back() * s.scale;
        svg << "<line x1='" << right - 150 << "' y1='" << ly - 4 << "' x2='" << right - 130 << "' y2='" << ly - 4
            << "' stroke='" << s.color << "' stroke-width='2'/>\n";
        svg << "<text x='" << right - 125 << "' y='" << ly << "' font-size='12'>" << s.label << " ("
            << fmt(last, decimals) << ")</text>\n";
        ly += 16;
    }
}

}  // namespace

void write_svg(const std::string& path, const Curves& c, const std::string& title, const std::string& subtitle)
{
    const double w = 900, h = 380;  // plus 45 for the titles
    std::ostringstream svg;
    svg << "<?xml version='1.0' encoding='UTF-8'?>\n";
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h + 45 << "' viewBox='0 0 " << w
        << ' ' << h + 45 << "' font-family='sans-serif'>\n";
    svg << "<rect width='100%' height='100%' fill='white'/>\n";
    svg << "<text x='" << w / 2 << "' y='20' text-anchor='middle' font-size='16' font-weight='bold'>" << title
        << "</text>\n";
    svg << "<text x='" << w / 2 << "' y='38' text-anchor='middle' font-size='11' fill='#444'>" << subtitle
        << "</text>\n";
    svg << "<g transform='translate(0, 40)'>\n";
    panel(svg, 0, 0, w / 2, h, "loss (cross-entropy)",
          {{&c.train_loss, "train", "#1f77b4", 1.0}, {&c.test_loss, "test", "#d62728", 1.0}}, 3);
    panel(svg, w / 2, 0, w / 2, h, "accuracy (%)",
          {{&c.train_acc, "train", "#1f77b4", 100.0}, {&c.test_acc, "test", "#d62728", 100.0}}, 1);
    svg << "</g>\n</svg>\n";
    std::ofstream out(path, std::ios::binary);
    if (!out) throw tg::Error(path + ": cannot open the plot file for writing");
    out << svg.str();
    if (!out.flush()) throw tg::Error(path + ": writing the plot failed");
}

}  // namespace fashion
