// Kernels over tensor element types: dequantize a row, quantize a row, and the dot product
// of a weight row with an activation row already converted to the weight type's
// vec_dot_type (see TypeTraits). Every computable type has a scalar reference; faster
// ISA-specific versions replace table entries at start-up when the CPU supports them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/types.h"

namespace hearth {

struct TypeKernels {
    // Row of n elements (n a multiple of the block size) to floats.
    void (*to_float)(const void* src, float* dst, int64_t n) = nullptr;
    // Floats to a row of the type. For K-quants this is the reference quantizer with its
    // scale search (what `hearth quantize` uses); for Q8_0/Q8_1/Q8_K it doubles as the
    // activation quantizer.
    void (*from_float)(const float* src, void* dst, int64_t n) = nullptr;
    // sum_i w[i] * a[i] where w is a row of this type and a a row of its vec_dot_type.
    float (*vec_dot)(int64_t n, const void* w, const void* a) = nullptr;
    // The same dot product for nt activation rows at once (act + t * act_stride, t < nt):
    // out[t] is bit-identical to vec_dot(n, w, act + t * act_stride) of the same table, so
    // a token's result never depends on how many others share the call; only the weight
    // row's loading and unpacking is shared. Fastest for nt <= kMultiTokens (larger nt is
    // done in groups of that size). nullptr where a type has none (callers fall back to
    // vec_dot per row).
    void (*vec_dot_multi)(int64_t n, const void* w, const uint8_t* act, size_t act_stride, int nt,
                          float* out) = nullptr;
};

// Activation rows one vec_dot_multi call handles at full speed.
constexpr int kMultiTokens = 8;

// The kernel tables: the scalar reference and one per architecture's SIMD family (Avx2: x86-64
// with AVX2+FMA+F16C and above; Neon: aarch64, with sdot kernels where the CPU has the
// dot-product extension and HEARTH_ISA allows it). A table falls back to scalar entries
// where its family has no fast path.
enum class Isa { Scalar, Avx2, Neon };

const char* isa_name(Isa isa);
// Best ISA this CPU supports among those compiled in.
Isa detected_isa();
// ISA whose kernels kernels() returns. Defaults to detected_isa(); tests and benchmarks
// may lower it (never raise it above detected_isa()).
Isa active_isa();
void set_active_isa(Isa isa);

// Kernels of the active ISA. Entries are nullptr for non-computable types.
const TypeKernels& kernels(GgmlType t);
// Kernels of a given ISA (entries fall back to scalar where that ISA has no fast path).
const TypeKernels& kernels_for(Isa isa, GgmlType t);

// Convenience wrappers over kernels(t); they throw std::invalid_argument for types
// without kernels or lengths that are not a multiple of the block size.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
float vec_dot(GgmlType t, int64_t n, const void* w, const void* a);

}  // namespace hearth
