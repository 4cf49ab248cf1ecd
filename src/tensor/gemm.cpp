#include "tensor/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "tensor/quants.h"

namespace hearth {

namespace {

constexpr int64_t kKc = 256;      // k per chunk: a 12-row block's 256 floats per row = 12 KiB in L1
constexpr int64_t kMaxTok = 512;  // tokens per pass over the weights (C block: 96 rows x 512 floats)

inline void prefetch(const void* p) {
#if defined(__x86_64__)
    _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
#else
    __builtin_prefetch(p);
#endif
}

}  // namespace

GemmFn gemm_kernel() {
    static const GemmFn chosen = []() -> GemmFn {
        const char* env = std::getenv("HEARTH_GEMM");
        if (env && std::strcmp(env, "0") == 0) return nullptr;
        const bool force_avx2 = env && std::strcmp(env, "avx2") == 0;
        if (!force_avx2 && avx512::cpu_supported()) return &avx512::gemm_f32;
        if (detected_isa() == Isa::Avx2) return &avx2::gemm_f32;
#if defined(__aarch64__)
        if (detected_isa() == Isa::Neon) return &neon::gemm_f32;
#endif
        return nullptr;
    }();
    if (active_isa() == Isa::Scalar) return nullptr;
    return chosen;
}

GemmFn gemm_kernel(GgmlType t) {
    const GemmFn g = gemm_kernel();
    bool float_only = g == &avx2::gemm_f32;
#if defined(__aarch64__)
    float_only = float_only || g == &neon::gemm_f32;
#endif
    if (float_only && t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16) return nullptr;
    return g;
}

void gemm_panels(const MatrixView& w, const float* act_t, int64_t n_tokens, float* y, int64_t ldy, int64_t r0,
                 int64_t r1, int block_rows, const GemmRowBlockFn* table) {
    const TypeKernels& kern = kernels(w.type);
    const TypeTraits& tr = traits(w.type);
    const int64_t K = w.cols;
    const int64_t rows = block_rows;
    // Chunks must start on a block boundary of the weight type (32 or 256 elements).
    int64_t kc_len = kKc;
    if (kc_len % tr.block_size != 0 || K % kc_len != 0) kc_len = K;
    thread_local std::vector<float> cbuf_v, wbuf_v;
    if (cbuf_v.size() < static_cast<size_t>(kGemmPanelRows * kMaxTok)) cbuf_v.resize(static_cast<size_t>(kGemmPanelRows * kMaxTok));
    if (wbuf_v.size() < static_cast<size_t>(rows * kc_len)) wbuf_v.resize(static_cast<size_t>(rows * kc_len));
    float* cbuf = cbuf_v.data();
    float* wbuf = wbuf_v.data();
    const size_t chunk_bytes = row_size(w.type, kc_len);
    // Prefetches the bytes of the row block converted after (rb, k0).
    auto prefetch_next = [&](int64_t p0, int64_t p1, int64_t rb, int64_t k0) {
        int64_t nrb = rb + rows, nk = k0;
        if (nrb >= p1) {
            nrb = p0;
            nk = k0 + kc_len;
            if (nk >= K) {
                nrb = p1;
                nk = 0;
            }
        }
        if (nrb >= r1) return;
        const int64_t nr = std::min<int64_t>(rows, r1 - nrb);
        const size_t off = static_cast<size_t>(nk / kc_len) * chunk_bytes;
        for (int64_t r = 0; r < nr; ++r) {
            const uint8_t* p = w.row(nrb + r) + off;
            for (size_t b = 0; b < chunk_bytes; b += 64) prefetch(p + b);
        }
    };
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTok) {
        const int64_t nt = std::min(kMaxTok, n_tokens - t0);
        const int64_t ntv = (nt + 15) / 16 * 16;  // token columns computed (padding is zero)
        const float* at0 = act_t + (t0 / kTokBlock) * K * kTokBlock;
        for (int64_t p0 = r0; p0 < r1; p0 += kGemmPanelRows) {
            const int64_t p1 = std::min(r1, p0 + kGemmPanelRows);
            for (int64_t k0 = 0; k0 < K; k0 += kc_len) {
                const size_t off = static_cast<size_t>(k0 / kc_len) * chunk_bytes;
                for (int64_t rb = p0; rb < p1; rb += rows) {
                    const int R = static_cast<int>(std::min<int64_t>(rows, p1 - rb));
                    for (int r = 0; r < R; ++r) kern.to_float(w.row(rb + r) + off, wbuf + r * kc_len, kc_len);
                    prefetch_next(p0, p1, rb, k0);
                    table[R - 1](wbuf, kc_len, at0 + k0 * kTokBlock, K * kTokBlock, ntv, kc_len, cbuf + (rb - p0) * ntv,
                                 ntv, k0 == 0);
                }
            }
            const int64_t np = p1 - p0;
            for (int64_t t = 0; t < nt; ++t) {
                float* yt = y + (t0 + t) * ldy + p0;
                for (int64_t r = 0; r < np; ++r) yt[r] = cbuf[r * ntv + t];
            }
        }
    }
}

}  // namespace hearth
