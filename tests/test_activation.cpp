// The vectorized SwiGLU activation (tensor/activation.h): each ISA's kernel against a
// double-precision reference over the whole useful input range, and an element's result
// is the same whatever the row length and its position in the row (tails are masked, not
// computed by other code).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tensor/activation.h"
#include "tensor/gemm.h"
#include "tensor/quants.h"

namespace hearth {
namespace {

using Kernel = void (*)(const float*, const float*, float*, int64_t);

struct Named {
    const char* name;
    Kernel fn;
    bool usable;
};

std::vector<Named> kernels_here() {
    return {{"scalar", &scalar::swiglu, true},
            {"avx2", &avx2::swiglu, detected_isa() == Isa::Avx2},
            {"avx512", &avx512::swiglu, avx512::cpu_supported()}};
}

TEST(Activation, SwigluMatchesDoubleReference) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> gd(-30.0f, 30.0f), ud(-4.0f, 4.0f);
    const int64_t n = 4099;
    std::vector<float> g(n), u(n), out(n);
    for (int64_t i = 0; i < n; ++i) {
        g[i] = i < 64 ? (i - 32) * 0.25f : gd(rng);  // dense around 0, then the wide range
        u[i] = ud(rng);
    }
    g[100] = -100.0f;  // e^100 overflows float: the result is a (signed) zero-ish product
    g[101] = 100.0f;
    for (const Named& k : kernels_here()) {
        if (!k.usable) continue;
        SCOPED_TRACE(k.name);
        k.fn(g.data(), u.data(), out.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const double x = g[i];
            const double want = x / (1.0 + std::exp(-x)) * u[i];
            ASSERT_NEAR(out[i], want, 4e-7 * std::fabs(want) + 1e-30) << "g=" << g[i] << " u=" << u[i];
        }
    }
}

TEST(Activation, SwigluElementIndependentOfRowLengthAndPosition) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> g(67), u(67);
    for (size_t i = 0; i < g.size(); ++i) {
        g[i] = nd(rng);
        u[i] = nd(rng);
    }
    for (const Named& k : kernels_here()) {
        if (!k.usable) continue;
        SCOPED_TRACE(k.name);
        std::vector<float> full(g.size());
        k.fn(g.data(), u.data(), full.data(), static_cast<int64_t>(g.size()));
        for (int64_t start = 0; start < 20; ++start)
            for (int64_t len : {1, 3, 8, 15, 16, 17, 40}) {
                if (start + len > static_cast<int64_t>(g.size())) continue;
                std::vector<float> part(static_cast<size_t>(len) + 1, -7.0f);
                k.fn(g.data() + start, u.data() + start, part.data(), len);
                for (int64_t i = 0; i < len; ++i) ASSERT_EQ(part[i], full[start + i]) << start << "+" << i;
                EXPECT_EQ(part[len], -7.0f) << "wrote past the row";
            }
    }
    // In place (out aliases g).
    std::vector<float> a = g, ref(g.size());
    swiglu(g.data(), u.data(), ref.data(), static_cast<int64_t>(g.size()));
    swiglu(a.data(), u.data(), a.data(), static_cast<int64_t>(a.size()));
    EXPECT_EQ(a, ref);
}

}  // namespace
}  // namespace hearth
