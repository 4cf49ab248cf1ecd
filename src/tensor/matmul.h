// Matrix multiply for the forward pass: a weight matrix of any computable type times one
// activation vector (decode) or a batch of them (prefill). Activations are converted to
// the weight type's vec_dot_type once per call, then threads split the output rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/types.h"

namespace hearth {

class ThreadPool;

// A row-major weight matrix as stored in GGUF: `rows` rows of `cols` elements each.
struct MatrixView {
    GgmlType type = GgmlType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    const uint8_t* data = nullptr;
    size_t row_bytes = 0;
    // The interleaved copy made at load (tensor/repack.h), or null. When set, matmul reads
    // it instead of `data` (whose pages may have been dropped from memory).
    const uint8_t* packed = nullptr;

    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// Reusable buffers for matmul (activation conversions); keep one per context so the
// forward pass never allocates per token.
struct MatmulScratch {
    // Which path a batch takes. By default batches of kGemmMinTokens or more use the GEMM
    // (where the CPU has one), smaller ones the per-row dot kernels; the two round
    // differently (~1e-6), so a token's result depends on its batch's size. The serving
    // engine pins the path per token kind instead (prompt tokens: GEMM, generated tokens:
    // dot), so a sequence's output does not depend on what it was batched with.
    enum class Path : int8_t { BySize, Gemm, Dot } path = Path::BySize;
    std::vector<uint8_t> act;
    std::vector<float> act_t;  // batched path: activations in 32-token blocks of [k][token]
    std::vector<uint8_t> aux;  // packed matrices (tensor/repack.h): per-block activation terms
};

// y[t * ldy + r] = sum_k W[r][k] * x[t * ldx + k] for t < n_tokens, r < w.rows.
// `pool` may be null (single-threaded).
void matmul(const MatrixView& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool* pool, MatmulScratch& scratch);

// Same with the activations already converted to w's vec_dot_type, `act_row_bytes` apart.
void matmul_preconverted(const MatrixView& w, const uint8_t* act, size_t act_row_bytes, int64_t n_tokens,
                         float* y, int64_t ldy, ThreadPool* pool);

}  // namespace hearth
