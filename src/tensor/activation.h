// Element-wise FFN activations over whole rows, vectorized: the gated activation of the
// SwiGLU feed-forward block runs on every element of the n_ff-wide hidden state (5632 per
// token on a 1B model), so a libm exp per element costs ~8% of a prefill.
#pragma once

#include <cstdint>

namespace hearth {

// out[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i] for i < n. out may alias g or u.
// Each element's result depends only on its inputs (never on n or its position), with the
// exp of the active ISA's kernel (polynomial, within 2 ulp of the correctly rounded value).
void swiglu(const float* g, const float* u, float* out, int64_t n);

namespace scalar {
void swiglu(const float* g, const float* u, float* out, int64_t n);
}
namespace avx512 {
void swiglu(const float* g, const float* u, float* out, int64_t n);
}
namespace avx2 {
void swiglu(const float* g, const float* u, float* out, int64_t n);
}

}  // namespace hearth
