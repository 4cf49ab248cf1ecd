#include "tensor/matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "tensor/threadpool.h"
#include "tensor/gemm.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

namespace hearth {
namespace {

// Rows per tile in the batched path: a tile of weights is reused for every token while
// it is hot in L1/L2.
constexpr int64_t kRowTile = 16;

// The batched path (tensor/gemm.h): activations rounded through the vec_dot_type, laid out
// as [k][token], then threads split the rows.
void matmul_gemm(GemmFn gemm, const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
                 ThreadPool* pool, MatmulScratch& scratch) {
    const int64_t K = w.cols;
    const int64_t ntp = (n_tokens + kTokBlock - 1) / kTokBlock * kTokBlock;
    const size_t need = static_cast<size_t>(K * ntp);
    if (scratch.act_t.size() < need) scratch.act_t.resize(need);
    float* at = scratch.act_t.data();
    const GgmlType vt = traits(w.type).vec_dot_type;
    const TypeKernels& vk = kernels(vt);
    const size_t qrow = vt == GgmlType::F32 ? 0 : row_size(vt, K);
    // Groups of 16 tokens per task, so threads write disjoint cache lines of act_t.
    auto pack = [&](int64_t g0, int64_t g1, int) {
        // Per-thread conversion buffers, grown once (this runs for every layer of a prefill).
        thread_local std::vector<float> rows;
        thread_local std::vector<uint8_t> q;
        if (rows.size() < static_cast<size_t>(16 * K)) rows.resize(static_cast<size_t>(16 * K));
        if (q.size() < qrow) q.resize(qrow);
        for (int64_t t0 = g0 * 16; t0 < std::min(ntp, g1 * 16); t0 += 16) {
            // The group's 16 rows (rounded, padding zero), then written out 16 tokens per k:
            // one contiguous 64-byte run per k instead of one strided float per token and k.
            const float* src[16];
            for (int64_t i = 0; i < 16; ++i) {
                const int64_t t = t0 + i;
                float* row = rows.data() + i * K;
                src[i] = row;
                if (t >= n_tokens) std::fill(row, row + K, 0.0f);
                else if (qrow) {
                    vk.from_float(x + t * ldx, q.data(), K);
                    vk.to_float(q.data(), row, K);
                } else src[i] = x + t * ldx;
            }
            float* dst = at + (t0 / kTokBlock) * K * kTokBlock + t0 % kTokBlock;  // token t0's column
            for (int64_t k = 0; k < K; ++k)
                for (int i = 0; i < 16; ++i) dst[k * kTokBlock + i] = src[i][k];
        }
    };
    if (pool) pool->parallel_for(ntp / 16, 1, pack);
    else pack(0, ntp / 16, 0);
    auto body = [&](int64_t r0, int64_t r1, int) { gemm(w, at, ntp, n_tokens, y, ldy, r0, r1); };
    if (pool) pool->parallel_for(w.rows, 48, body);
    else body(0, w.rows, 0);
}

}  // namespace

namespace {

using DotFn = float (*)(int64_t n, const void* w, const void* a);
using MultiFn = void (*)(int64_t n, const void* w, const uint8_t* act, size_t act_stride, int nt, float* out);

void matmul_rows(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y, int64_t ldy,
                 ThreadPool* pool, DotFn dot, MultiFn multi) {
    const int64_t cols = w.cols;

    auto body = [&](int64_t r0, int64_t r1, int) {
        if (n_tokens == 1) {
            for (int64_t r = r0; r < r1; ++r) y[r] = dot(cols, w.row(r), act);
            return;
        }
        for (int64_t rt = r0; rt < r1; rt += kRowTile) {
            const int64_t re = std::min(r1, rt + kRowTile);
            if (multi) {
                // Each weight row unpacked once per group of up to kMultiTokens tokens; the
                // results equal vec_dot's bit for bit.
                for (int64_t t0 = 0; t0 < n_tokens; t0 += kMultiTokens) {
                    const int nt = static_cast<int>(std::min<int64_t>(kMultiTokens, n_tokens - t0));
                    const uint8_t* a = act + static_cast<size_t>(t0) * act_row_bytes;
                    float out[kMultiTokens];
                    for (int64_t r = rt; r < re; ++r) {
                        multi(cols, w.row(r), a, act_row_bytes, nt, out);
                        for (int t = 0; t < nt; ++t) y[(t0 + t) * ldy + r] = out[t];
                    }
                }
                continue;
            }
            for (int64_t t = 0; t < n_tokens; ++t) {
                const uint8_t* a = act + static_cast<size_t>(t) * act_row_bytes;
                float* yt = y + t * ldy;
                for (int64_t r = rt; r < re; ++r) yt[r] = dot(cols, w.row(r), a);
            }
        }
    };
    // Chunks of whole tiles, aligned to 64 rows so threads never share an output cache line
    // in the common (contiguous) case.
    const int64_t grain = n_tokens == 1 ? 64 : kRowTile * 4;
    if (pool) pool->parallel_for(w.rows, grain, body);
    else body(0, w.rows, 0);
}

// F16 weights on the AVX2 table: activations rounded through F16 once and kept as f32, so the
// dot kernels convert only the weights (the same results as the F16 vec_dot).
#if defined(__x86_64__)
bool f16_f32act(const MatrixView& w) {
    return w.type == GgmlType::F16 && active_isa() == Isa::Avx2 &&
           kernels(GgmlType::F16).vec_dot != kernels_for(Isa::Scalar, GgmlType::F16).vec_dot;
}
#endif

}  // namespace

void matmul_preconverted(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens, float* y,
                         int64_t ldy, ThreadPool* pool) {
    const TypeKernels& k = kernels(w.type);
    if (!k.vec_dot) throw std::invalid_argument(std::string("matmul: no kernels for type ") + type_name(w.type));
    matmul_rows(w, act, act_row_bytes, n_tokens, y, ldy, pool, k.vec_dot, k.vec_dot_multi);
}

void matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool* pool, MatmulScratch& scratch) {
    const TypeTraits& tr = traits(w.type);
    const GgmlType at = tr.vec_dot_type;
    using Path = MatmulScratch::Path;
    const bool batched = scratch.path == Path::Gemm || (scratch.path == Path::BySize && n_tokens >= kGemmMinTokens);
    if (use_packed(w)) {
        // Prompt batches take the packed prompt kernels wherever batches have a GEMM path (every
        // family with packed kernels, NEON included); HEARTH_GEMM=0 keeps them on the decode
        // kernels (comparisons).
        packed_matmul(w, x, ldx, n_tokens, y, ldy, pool, scratch, batched && gemm_kernel() != nullptr);
        return;
    }
    if (batched) {
        const GemmFn gemm = gemm_kernel(w.type);
        if (gemm && kernels(w.type).to_float && (at == GgmlType::F32 || kernels(at).to_float)) {
            matmul_gemm(gemm, w, x, ldx, n_tokens, y, ldy, pool, scratch);
            return;
        }
    }
    if (at == GgmlType::F32) {
        matmul_preconverted(w, reinterpret_cast<const uint8_t*>(x), static_cast<size_t>(ldx) * sizeof(float), n_tokens,
                            y, ldy, pool);
        return;
    }
#if defined(__x86_64__)
    if (f16_f32act(w)) {
        const size_t frow = static_cast<size_t>(w.cols) * sizeof(float);
        if (scratch.act.size() < frow * static_cast<size_t>(n_tokens)) scratch.act.resize(frow * static_cast<size_t>(n_tokens));
        const TypeKernels& fk = kernels(GgmlType::F16);
        uint8_t* act = scratch.act.data();
        auto conv = [&](int64_t t0, int64_t t1, int) {
            thread_local std::vector<uint16_t> half;
            if (half.size() < static_cast<size_t>(w.cols)) half.resize(static_cast<size_t>(w.cols));
            for (int64_t t = t0; t < t1; ++t) {
                fk.from_float(x + t * ldx, half.data(), w.cols);
                fk.to_float(half.data(), reinterpret_cast<float*>(act + static_cast<size_t>(t) * frow), w.cols);
            }
        };
        if (pool && n_tokens > 1) pool->parallel_for(n_tokens, 1, conv);
        else conv(0, n_tokens, 0);
        matmul_rows(w, act, frow, n_tokens, y, ldy, pool, avx2::vec_dot_f16_f32act, avx2::vec_dot_multi_f16_f32act);
        return;
    }
#endif
    const size_t arow = row_size(at, w.cols);
    if (scratch.act.size() < arow * static_cast<size_t>(n_tokens)) scratch.act.resize(arow * static_cast<size_t>(n_tokens));
    const auto convert = kernels(at).from_float;
    uint8_t* act = scratch.act.data();
    auto conv = [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) convert(x + t * ldx, act + static_cast<size_t>(t) * arow, w.cols);
    };
    if (pool && n_tokens > 1) pool->parallel_for(n_tokens, 1, conv);
    else conv(0, n_tokens, 0);
    matmul_preconverted(w, act, arow, n_tokens, y, ldy, pool);
}

}  // namespace hearth
