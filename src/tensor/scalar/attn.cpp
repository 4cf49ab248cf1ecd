// The portable attention tile kernel (tensor/attention.h) and the dispatch that picks the
// kernel for a head_dim (attn_kernel): plain loops with std::exp, in the same order as the AVX-512 kernel's
// structure (scores, block max, rescale, weights, P.V), for any head_dim.
#include "tensor/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tensor/quants.h"

namespace hearth {

namespace {

void pack_k_scalar(const float* k, int64_t d, int i0, int i1, float* kt) {
    for (int64_t c = 0; c < d; ++c) {
        float* row = kt + c * kAttnTile;
        for (int i = 0; i < kAttnTile; ++i) row[i] = (i >= i0 && i < i1) ? k[i * d + c] : 0.0f;
    }
}

void block_scalar(const float* q, int64_t g, int64_t d, const float* kt, const float* v, int i0, int i1, float scale,
                  float cap, float* m, float* l, float* acc) {
    float s[kAttnTile];
    for (int64_t j = 0; j < g; ++j) {
        const float* qj = q + j * d;
        float bmax = -INFINITY;
        for (int i = i0; i < i1; ++i) {
            float dot = 0.0f;
            for (int64_t c = 0; c < d; ++c) dot += qj[c] * kt[c * kAttnTile + i];
            float x = dot * scale;
            if (cap > 0) x = cap * std::tanh(x / cap);
            s[i] = x;
            bmax = std::max(bmax, x);
        }
        float* a = acc + j * d;
        if (bmax > m[j]) {
            const float r = std::exp(m[j] - bmax);  // 0 on the first tile (m = -inf)
            for (int64_t c = 0; c < d; ++c) a[c] *= r;
            l[j] *= r;
            m[j] = bmax;
        }
        float sum = 0.0f;
        for (int i = i0; i < i1; ++i) {
            const float w = std::exp(s[i] - m[j]);
            sum += w;
            const float* vr = v + i * d;
            for (int64_t c = 0; c < d; ++c) a[c] += w * vr[c];
        }
        l[j] += sum;
    }
}

}  // namespace

namespace scalar {
const AttnKernel attn{&pack_k_scalar, &block_scalar, nullptr};
}

const AttnKernel& attn_kernel(int64_t d) {
    static const bool avx512_ok = avx512::cpu_supported() && avx512::attn.block != nullptr;
    static const bool enabled = [] {
        const char* env = std::getenv("HEARTH_ATTN");
        return !(env && std::strcmp(env, "0") == 0);
    }();
    if (!enabled || active_isa() != Isa::Avx2) return scalar::attn;
    if (avx512_ok && d % 16 == 0) return avx512::attn;
    if (avx2::attn.block != nullptr && d % 8 == 0) return avx2::attn;
    return scalar::attn;
}

}  // namespace hearth
