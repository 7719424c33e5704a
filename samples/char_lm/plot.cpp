#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <tapegrad/error.hpp>

namespace charlm {
namespace {

std::string number(double v, int decimals)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// A step for axis labels: 1, 2 or 5 times a power of ten, giving about `ticks` intervals.
double nice_step(double span, int ticks)
{
    const double raw = span / ticks;
    const double power = std::pow(10.0, std::floor(std::log10(raw)));
    for (const double m : {1.0, 2.0, 5.0}) {
        if (m * power >= raw) return m * power;
    }
    return 10 * power;
}

}  // namespace

void write_loss_svg(const std::string& path, const LossCurves& curves, const std::string& title)
{
    const double width = 720, height = 440, left = 70, right = width - 20, top = 50, bottom = height - 55;
    double x_max = 0, y_lo = curves.bigram, y_hi = curves.bigram;
    for (const auto* series : {&curves.train, &curves.validation}) {
        for (const Point& p : *series) {
            x_max = std::max(x_max, p.minutes);
            y_lo = std::min(y_lo, p.bpc);
            y_hi = std::max(y_hi, p.bpc);
        }
    }
    // The first steps' losses (log2 of the vocabulary and more) would flatten everything else:
    // the axis stops a little above the bigram baseline, and higher points sit on its edge.
    if (curves.bigram > 0) y_hi = std::min(y_hi, curves.bigram + 0.5);
    if (!(x_max > 0)) x_max = 1;
    if (!(y_hi > y_lo)) y_hi = y_lo + 1;
    const double y_step = nice_step(y_hi - y_lo, 6), x_step = nice_step(x_max, 8);
    y_lo = std::floor(y_lo / y_step) * y_step;
    y_hi = std::ceil(y_hi / y_step) * y_step;
    x_max = std::ceil(x_max / x_step) * x_step;
    auto sx = [&](double m) { return left + (right - left) * m / x_max; };
    auto sy = [&](double b) { return bottom - (bottom - top) * (std::clamp(b, y_lo, y_hi) - y_lo) / (y_hi - y_lo); };

    std::ostringstream svg;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
        << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    svg << "<text x='" << width / 2 << "' y='24' text-anchor='middle' font-size='15'>" << title << "</text>\n";
    for (double y = y_lo; y <= y_hi + y_step / 2; y += y_step) {
        svg << "<line x1='" << left << "' x2='" << right << "' y1='" << sy(y) << "' y2='" << sy(y)
            << "' stroke='#ddd'/><text x='" << left - 6 << "' y='" << sy(y) + 4 << "' text-anchor='end'>"
            << number(y, y_step < 0.1 ? 2 : 1) << "</text>\n";
    }
    for (double x = 0; x <= x_max + x_step / 2; x += x_step) {
        svg << "<line x1='" << sx(x) << "' x2='" << sx(x) << "' y1='" << top << "' y2='" << bottom
            << "' stroke='#eee'/><text x='" << sx(x) << "' y='" << bottom + 16 << "' text-anchor='middle'>"
            << number(x, x_step < 1 ? 1 : 0) << "</text>\n";
    }
    svg << "<rect x='" << left << "' y='" << top << "' width='" << right - left << "' height='" << bottom - top
        << "' fill='none' stroke='#444'/>\n";
    svg << "<text x='" << (left + right) / 2 << "' y='" << height - 18
        << "' text-anchor='middle'>minutes of training</text>\n";
    svg << "<text transform='translate(18," << (top + bottom) / 2
        << ") rotate(-90)' text-anchor='middle'>bits per character</text>\n";
    svg << "<line x1='" << left << "' x2='" << right << "' y1='" << sy(curves.bigram) << "' y2='" << sy(curves.bigram)
        << "' stroke='#888' stroke-dasharray='6 4'/>\n";
    auto polyline = [&](const std::vector<Point>& points, const char* color, bool dots) {
        if (points.empty()) return;
        svg << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
        for (const Point& p : points) svg << sx(p.minutes) << ',' << sy(p.bpc) << ' ';
        svg << "'/>\n";
        if (!dots) return;
        for (const Point& p : points) {
            svg << "<circle cx='" << sx(p.minutes) << "' cy='" << sy(p.bpc) << "' r='3.5' fill='" << color << "'/>\n";
        }
    };
    polyline(curves.train, "#1f77b4", false);
    polyline(curves.validation, "#d62728", true);
    const struct {
        const char* label;
        const char* color;
        const char* dash;
    } legend[] = {{"training (running mean)", "#1f77b4", "none"},
                  {"validation", "#d62728", "none"},
                  {"bigram baseline", "#888", "6 4"}};
    double y = top + 18;
    for (const auto& item : legend) {
        svg << "<line x1='" << right - 190 << "' x2='" << right - 160 << "' y1='" << y - 4 << "' y2='" << y - 4
            << "' stroke='" << item.color << "' stroke-width='2' stroke-dasharray='" << item.dash << "'/><text x='"
            << right - 152 << "' y='" << y << "'>" << item.label << "</text>\n";
        y += 18;
    }
    svg << "</svg>\n";
    std::ofstream out(path);
    out << svg.str();
    if (!out) throw tg::Error("char_lm: cannot write the plot " + path);
}

}  // namespace charlm
