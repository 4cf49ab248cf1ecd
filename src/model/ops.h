// The transformer toolkit: the small row-wise operations every architecture composes
// (norms, RoPE, activations, soft-capping) and attention over the paged KV cache.
#pragma once

#include <cstdint>

#include "model/hparams.h"
#include "model/kv_view.h"

namespace hearth {

class ThreadPool;
struct Batch;

// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scale). out may alias x.
void rms_norm(const float* x, const float* w, float* out, int64_t n, float eps);

// out = (x - mean) / sqrt(var + eps) * w + b   (LayerNorm; w, b may be null). out may alias x.
void layer_norm(const float* x, const float* w, const float* b, float* out, int64_t n, float eps);

// Rotates the first `rope_dims` dims of each of `n_heads` heads of `x` (head_dim apart)
// for position `pos`. `cos_sin` holds rope_dims/2 (cos, sin) pairs from rope_table().
void rope_table(const RopeParams& rp, const float* freq_factors, int32_t pos, float* cos_sin);
void rope_apply(float* x, int32_t n_heads, int32_t head_dim, int32_t rope_dims, RopeStyle style, const float* cos_sin);

float silu(float x);
float gelu_tanh(float x);
// GELU as llama.cpp's CPU backend computes it, which the GELU models' references come from:
// the tanh approximation looked up for the input rounded to F16, the result rounded to F16
// (0 below -10, x above 10). Within 1e-3 of gelu_tanh; differs from it systematically.
float gelu_f16_table(float x);
inline float softcap(float x, float cap) { return cap * __builtin_tanhf(x / cap); }

// Attention for tokens [begin, end) of `batch` at layer `layer`: q is [n][q_dim] (already
// roped), out is [n][q_dim]. Keys/values come from the cache: positions 0..pos of the
// token's sequence, or the last `window` of them when `window` > 0. Streams K/V in tiles of
// 16 positions, converted to f32 once per tile for a run of consecutive tokens of a sequence,
// through an online softmax (tensor/attention.h's per-ISA kernels), so memory does not grow
// with the context. A token's result does not depend on the rest of the batch or on threads.
// `sinks` (gpt-oss; may be null): one logit per query head that joins each softmax's
// denominator without a value.
void attention(const HParams& hp, const KvView& kv, int32_t layer, const Batch& batch, size_t begin, size_t end,
               const float* q, float* out, int32_t window, ThreadPool& pool, const float* sinks = nullptr);

}  // namespace hearth
