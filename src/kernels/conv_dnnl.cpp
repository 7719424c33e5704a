// Float convolutions through oneDNN (when the build found it): its JIT kernels use the
// machine's widest vectors (AVX-512 where present) and run 3-5x faster here than im2col +
// OpenBLAS's gemm, whose kernels on this CPU stop at AVX2. Primitives are costly to create
// (tens to hundreds of microseconds), so each thread keeps the ones it made, keyed by
// geometry and role; arrays are passed in the plain layouts (nchw, oihw), so no reorders.

#include "kernels/conv.hpp"

#ifdef TAPEGRAD_HAVE_DNNL

#include <cstring>
#include <list>
#include <memory>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/threads.hpp"
#include "tapegrad/error.hpp"

namespace tg::conv::dnnl_path {
namespace {

using dnnl::memory;
using Dims = memory::dims;

dnnl::engine& engine()
{
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

struct Key {
    Geometry g;
    int role;
    bool bias;
    int threads;  // a primitive runs on as many threads as there were when it was made
    bool operator==(const Key& k) const
    {
        return std::memcmp(&g, &k.g, sizeof g) == 0 && role == k.role && bias == k.bias && threads == k.threads;
    }
};

// One argument of a primitive: the caller's plain layout and, when the primitive chose
// another (blocked) layout, a buffer in that layout and the reorder between the two.
struct Arg {
    memory::desc user, chosen;
    memory buffer;
    dnnl::reorder in, out;  // user -> chosen (an input), chosen -> user (an output)
    bool reordered = false;
};

struct Plan {
    Key key;
    dnnl::primitive prim;
    Arg x, w, y;
    memory::desc b;
};

Dims x_dims(const Geometry& g)
{
    return {memory::dim(g.n), memory::dim(g.c), memory::dim(g.ih), memory::dim(g.iw)};
}
Dims y_dims(const Geometry& g)
{
    return {memory::dim(g.n), memory::dim(g.o), memory::dim(g.oh), memory::dim(g.ow)};
}

memory::desc weight_desc(const Geometry& g)
{
    using tag = memory::format_tag;
    const memory::dim cg = g.c / g.groups, og = g.o / g.groups;
    if (g.groups == 1) return {{og, cg, memory::dim(g.kh), memory::dim(g.kw)}, memory::data_type::f32, tag::oihw};
    return {{memory::dim(g.groups), og, cg, memory::dim(g.kh), memory::dim(g.kw)}, memory::data_type::f32, tag::goihw};
}

std::unique_ptr<Plan> make_plan(const Key& key)
{
    using tag = memory::format_tag;
    const Geometry& g = key.g;
    auto plan = std::make_unique<Plan>();
    plan->key = key;
    plan->x.user = memory::desc(x_dims(g), memory::data_type::f32, tag::nchw);
    plan->y.user = memory::desc(y_dims(g), memory::data_type::f32, tag::nchw);
    plan->w.user = weight_desc(g);
    plan->b = memory::desc({memory::dim(g.o)}, memory::data_type::f32, tag::x);
    // Layouts left to oneDNN: its direct JIT kernels want channel-blocked arrays, and the
    // reorders to and from them cost far less than the slower kernels on plain arrays.
    const memory::desc ax(x_dims(g), memory::data_type::f32, tag::any);
    const memory::desc ay(y_dims(g), memory::data_type::f32, tag::any);
    const memory::desc aw(plan->w.user.dims(), memory::data_type::f32, tag::any);
    const Dims strides{memory::dim(g.sh), memory::dim(g.sw)};
    const Dims dilates{memory::dim(g.dh) - 1, memory::dim(g.dw) - 1};  // oneDNN counts from 0
    const Dims pad_l{memory::dim(g.ph), memory::dim(g.pw)};
    // The right padding that gives exactly oh x ow outputs (negative when the stride skips
    // the last rows, as oneDNN allows).
    const Dims pad_r{(memory::dim(g.oh) - 1) * g.sh + (memory::dim(g.kh) - 1) * g.dh + 1 - g.ih - g.ph,
                     (memory::dim(g.ow) - 1) * g.sw + (memory::dim(g.kw) - 1) * g.dw + 1 - g.iw - g.pw};
    const auto alg = dnnl::algorithm::convolution_direct;
    auto& eng = engine();
    const bool fwd_bias = key.bias && key.role == 0;
    dnnl::convolution_forward::desc fd =
        fwd_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, ax, aw, plan->b, ay, strides,
                                                   dilates, pad_l, pad_r)
                 : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, ax, aw, ay, strides, dilates,
                                                   pad_l, pad_r);
    dnnl::convolution_forward::primitive_desc fpd(fd, eng);
    if (key.role == 0) {
        plan->prim = dnnl::convolution_forward(fpd);
        plan->x.chosen = fpd.src_desc();
        plan->w.chosen = fpd.weights_desc();
        plan->y.chosen = fpd.dst_desc();
    } else if (key.role == 1) {
        dnnl::convolution_backward_data::desc bd(alg, ax, aw, ay, strides, dilates, pad_l, pad_r);
        dnnl::convolution_backward_data::primitive_desc pd(bd, eng, fpd);
        plan->prim = dnnl::convolution_backward_data(pd);
        plan->x.chosen = pd.diff_src_desc();
        plan->w.chosen = pd.weights_desc();
        plan->y.chosen = pd.diff_dst_desc();
    } else {
        dnnl::convolution_backward_weights::desc wd(alg, ax, aw, ay, strides, dilates, pad_l, pad_r);
        dnnl::convolution_backward_weights::primitive_desc pd(wd, eng, fpd);
        plan->prim = dnnl::convolution_backward_weights(pd);
        plan->x.chosen = pd.src_desc();
        plan->w.chosen = pd.diff_weights_desc();
        plan->y.chosen = pd.diff_dst_desc();
    }
    for (Arg* a : {&plan->x, &plan->w, &plan->y}) {
        a->reordered = a->chosen != a->user;
        if (!a->reordered) continue;
        a->buffer = memory(a->chosen, eng);
        a->in = dnnl::reorder(dnnl::reorder::primitive_desc(eng, a->user, eng, a->chosen));
        a->out = dnnl::reorder(dnnl::reorder::primitive_desc(eng, a->chosen, eng, a->user));
    }
    return plan;
}

// The plans this thread made, most recent first (a training loop uses a handful).
Plan& plan_for(const Key& key)
{
    static thread_local std::list<std::unique_ptr<Plan>> plans;
    for (auto it = plans.begin(); it != plans.end(); ++it) {
        if ((*it)->key == key) {
            if (it != plans.begin()) plans.splice(plans.begin(), plans, it);
            return *plans.front();
        }
    }
    plans.push_front(make_plan(key));
    if (plans.size() > 64) plans.pop_back();
    return *plans.front();
}

dnnl::stream& stream()
{
    static thread_local dnnl::stream s(engine());
    return s;
}

memory wrap(const memory::desc& d, const float* p)
{
    return memory(d, engine(), const_cast<float*>(p));
}

// The memory a primitive reads for argument `a`: the caller's array, or the array reordered
// into the primitive's layout.
memory input(Arg& a, const float* p)
{
    memory user = wrap(a.user, p);
    if (!a.reordered) return user;
    a.in.execute(stream(), user, a.buffer);
    return a.buffer;
}

// The memory a primitive writes for argument `a`; finish() copies it to the caller's array.
memory output(Arg& a, float* p)
{
    return a.reordered ? a.buffer : wrap(a.user, p);
}
void finish(Arg& a, float* p)
{
    if (a.reordered) {
        memory user = wrap(a.user, p);
        a.out.execute(stream(), a.buffer, user);
    }
    stream().wait();
}

}  // namespace

bool usable(const Geometry& g)
{
    return g.n > 0 && g.c > 0 && g.o > 0 && g.ih > 0 && g.iw > 0 && g.oh > 0 && g.ow > 0;
}

void forward(const Geometry& g, const float* x, const float* w, const float* bias, float* y)
{
    Plan& p = plan_for(Key{g, 0, bias != nullptr, threads::enter()});
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, input(p.x, x)}, {DNNL_ARG_WEIGHTS, input(p.w, w)}, {DNNL_ARG_DST, output(p.y, y)}};
    if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, wrap(p.b, bias));
    p.prim.execute(stream(), args);
    finish(p.y, y);
}

void input_grad(const Geometry& g, const float* y, const float* w, float* x)
{
    Plan& p = plan_for(Key{g, 1, false, threads::enter()});
    p.prim.execute(
        stream(),
        {{DNNL_ARG_DIFF_DST, input(p.y, y)}, {DNNL_ARG_WEIGHTS, input(p.w, w)}, {DNNL_ARG_DIFF_SRC, output(p.x, x)}});
    finish(p.x, x);
}

void weight_grad(const Geometry& g, const float* x, const float* y, float* w)
{
    Plan& p = plan_for(Key{g, 2, false, threads::enter()});
    p.prim.execute(
        stream(),
        {{DNNL_ARG_SRC, input(p.x, x)}, {DNNL_ARG_DIFF_DST, input(p.y, y)}, {DNNL_ARG_DIFF_WEIGHTS, output(p.w, w)}});
    finish(p.w, w);
}

}  // namespace tg::conv::dnnl_path

#endif
