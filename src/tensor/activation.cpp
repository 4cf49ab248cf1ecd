#include "tensor/activation.h"

#include <cmath>

#include "tensor/gemm.h"
#include "tensor/quants.h"

namespace hearth {

namespace scalar {
void swiglu(const float* g, const float* u, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}
}  // namespace scalar

void swiglu(const float* g, const float* u, float* out, int64_t n) {
    static const bool has_avx512 = avx512::cpu_supported();
    const Isa isa = active_isa();
    if (isa == Isa::Scalar) return scalar::swiglu(g, u, out, n);
    if (has_avx512) return avx512::swiglu(g, u, out, n);
    return avx2::swiglu(g, u, out, n);
}

}  // namespace hearth
