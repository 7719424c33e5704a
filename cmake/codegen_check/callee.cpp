#include "probe.hpp"

namespace tapegrad_probe {

int check_defaults(Options o)
{
    int bad = 0;
    if (o.stride[0] != 1 || o.stride[1] != 1) bad |= 1;
    if (o.padding[0] != 0 || o.padding[1] != 0) bad |= 2;
    if (o.dilation[0] != 1 || o.dilation[1] != 1) bad |= 4;
    if (o.groups != 1 || !o.bias) bad |= 8;
    return bad;
}

int check_padding(std::size_t in, Options o)
{
    return o.padding[0] == in && o.padding[1] == in && o.stride[0] == 1 && o.dilation[1] == 1 ? 0 : 16;
}

int check_quad(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t d, Quad q)
{
    return q.a == a && q.b == b && q.c == c && q.d == d ? 0 : 32;
}

int check_list(std::initializer_list<double> values, double w, double x, double y, double z)
{
    const double want[4] = {w, x, y, z};
    if (values.size() != 4) return 64;
    int k = 0;
    for (double v : values) {
        if (v != want[k++]) return 64;
    }
    return 0;
}

}  // namespace tapegrad_probe
