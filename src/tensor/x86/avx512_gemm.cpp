// AVX-512F GEMM for batched matmuls (see tensor/gemm.h). Compiled for baseline x86-64 with
// per-function target attributes; called only when CPUID and XCR0 report AVX-512 state.
#include "tensor/gemm.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "tensor/quants.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define HEARTH_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define HEARTH_AVX512_INLINE __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline

namespace hearth::avx512 {

namespace {

constexpr int kRows = 12;     // weight rows per register block
constexpr int64_t kKc = 256;  // k per chunk: 12 rows x 256 floats = 12 KiB of weights in L1
constexpr int64_t kMaxTok = 512;  // tokens per pass over the weights (C block: panel rows x 512 floats)

// C[r][t..t+16*NV) (+)= sum_k W[r][k] * A[k][t..]: R x NV accumulators stay in registers.
template <int R, int NV>
HEARTH_AVX512_INLINE void block(const float* wb, int64_t ldw, const float* at, int64_t kc, float* c, int64_t ldc,
                                bool first) {
    __m512 acc[R][NV];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * v);
    for (int64_t k = 0; k < kc; ++k) {
        __m512 a[NV];
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) a[v] = _mm512_loadu_ps(at + k * kTokBlock + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m512 b = _mm512_set1_ps(wb[r * ldw + k]);
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(b, a[v], acc[r][v]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

// All token vectors of one row block and k chunk. `at` is the chunk's start in the first
// token block; token blocks are `blk` floats apart.
template <int R>
HEARTH_AVX512 void row_block(const float* wb, int64_t ldw, const float* at, int64_t blk, int64_t nt, int64_t kc,
                             float* c, int64_t ldc, bool first) {
    int64_t t = 0;
    for (; t + 32 <= nt; t += 32) block<R, 2>(wb, ldw, at + (t / 32) * blk, kc, c + t, ldc, first);
    if (t < nt) block<R, 1>(wb, ldw, at + (t / 32) * blk, kc, c + t, ldc, first);
}

using RowBlockFn = void (*)(const float*, int64_t, const float*, int64_t, int64_t, int64_t, float*, int64_t, bool);

template <int... Rs>
constexpr auto make_table(std::integer_sequence<int, Rs...>) {
    return std::array<RowBlockFn, sizeof...(Rs)>{&row_block<Rs + 1>...};
}

}  // namespace

bool cpu_supported() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    if (!(c & (1u << 27))) return false;  // OSXSAVE
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return false;  // XMM, YMM, opmask and both ZMM halves saved by the OS
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 16);  // AVX512F
}

// Loop order: rows in panels of kPanel row blocks whose C block stays in L2; per k chunk,
// the activations' chunk (all tokens) is read once per panel instead of once per row
// block, and each row block's weights are dequantized into an L1 buffer while the next
// block's bytes are prefetched (weights stream from memory once per prefill).
HEARTH_AVX512 void gemm_f32(const MatrixView& w, const float* act_t, int64_t /*ntp*/, int64_t n_tokens, float* y,
                            int64_t ldy, int64_t r0, int64_t r1) {
    static constexpr auto table = make_table(std::make_integer_sequence<int, kRows>{});
    constexpr int64_t kPanel = 8 * kRows;
    const TypeKernels& kern = kernels(w.type);
    const TypeTraits& tr = traits(w.type);
    const int64_t K = w.cols;
    // Chunks must start on a block boundary of the weight type (32 or 256 elements).
    int64_t kc_len = kKc;
    if (kc_len % tr.block_size != 0 || K % kc_len != 0) kc_len = K;
    thread_local std::vector<float> cbuf_v, wbuf_v;
    if (cbuf_v.size() < static_cast<size_t>(kPanel * kMaxTok)) cbuf_v.resize(static_cast<size_t>(kPanel * kMaxTok));
    if (wbuf_v.size() < static_cast<size_t>(kRows * kc_len)) wbuf_v.resize(static_cast<size_t>(kRows * kc_len));
    float* cbuf = cbuf_v.data();
    float* wbuf = wbuf_v.data();
    const size_t chunk_bytes = row_size(w.type, kc_len);
    // Prefetch the bytes of the row block converted after (rb, k0).
    auto prefetch_next = [&](int64_t p0, int64_t p1, int64_t rb, int64_t k0) {
        int64_t nrb = rb + kRows, nk = k0;
        if (nrb >= p1) {
            nrb = p0;
            nk = k0 + kc_len;
            if (nk >= K) {
                nrb = p1;
                nk = 0;
            }
        }
        if (nrb >= r1) return;
        const int64_t nr = std::min<int64_t>(kRows, r1 - nrb);
        const size_t off = static_cast<size_t>(nk / kc_len) * chunk_bytes;
        for (int64_t r = 0; r < nr; ++r) {
            const char* p = reinterpret_cast<const char*>(w.row(nrb + r) + off);
            for (size_t b = 0; b < chunk_bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
        }
    };
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kMaxTok) {
        const int64_t nt = std::min(kMaxTok, n_tokens - t0);
        const int64_t ntv = (nt + 15) / 16 * 16;  // token columns computed (padding is zero)
        const float* at0 = act_t + (t0 / kTokBlock) * K * kTokBlock;
        for (int64_t p0 = r0; p0 < r1; p0 += kPanel) {
            const int64_t p1 = std::min(r1, p0 + kPanel);
            for (int64_t k0 = 0; k0 < K; k0 += kc_len) {
                const size_t off = static_cast<size_t>(k0 / kc_len) * chunk_bytes;
                for (int64_t rb = p0; rb < p1; rb += kRows) {
                    const int R = static_cast<int>(std::min<int64_t>(kRows, p1 - rb));
                    for (int r = 0; r < R; ++r) kern.to_float(w.row(rb + r) + off, wbuf + r * kc_len, kc_len);
                    prefetch_next(p0, p1, rb, k0);
                    table[static_cast<size_t>(R - 1)](wbuf, kc_len, at0 + k0 * kTokBlock, K * kTokBlock, ntv, kc_len,
                                                      cbuf + (rb - p0) * ntv, ntv, k0 == 0);
                }
            }
            // Out as y[token][row]: contiguous runs of the panel's rows per token.
            const int64_t np = p1 - p0;
            for (int64_t t = 0; t < nt; ++t) {
                float* yt = y + (t0 + t) * ldy + p0;
                for (int64_t r = 0; r < np; ++r) yt[r] = cbuf[r * ntv + t];
            }
        }
    }
}

}  // namespace hearth::avx512

#else

namespace hearth::avx512 {
bool cpu_supported() { return false; }
void gemm_f32(const MatrixView&, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t) {}
}  // namespace hearth::avx512

#endif
