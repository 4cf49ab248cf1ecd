// Scalar reference kernels for the float types: F32, F16 and BF16.
//
// Conversions round to nearest even (fp32_to_fp16 / fp32_to_bf16). Dot products
// accumulate in double, as ggml's portable C code does, so the reference is at least as
// accurate as any vectorised version.
#include <cstring>

#include "tensor/kernel_table.h"
#include "tensor/scalar/common.h"

namespace hearth {
namespace {

using scalar::half_to_float;

// ---- F32

void f32_to_float(const void* src, float* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void f32_from_float(const float* src, void* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

float f32_vec_dot(int64_t n, const void* w, const void* a) {
    const float* x = static_cast<const float*>(w);
    const float* y = static_cast<const float*>(a);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(y[i]);
    return static_cast<float>(sum);
}

// ---- F16

void f16_to_float(const void* src, float* dst, int64_t n) {
    const fp16_t* x = static_cast<const fp16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(x[i]);
}

void f16_from_float(const float* src, void* dst, int64_t n) {
    fp16_t* y = static_cast<fp16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

float f16_vec_dot(int64_t n, const void* w, const void* a) {
    const fp16_t* x = static_cast<const fp16_t*>(w);
    const fp16_t* y = static_cast<const fp16_t*>(a);
    double sum = 0.0;
    // The product of two halves is exact in float (11 + 11 significant bits).
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(half_to_float(x[i]) * half_to_float(y[i]));
    return static_cast<float>(sum);
}

// ---- BF16

void bf16_to_float(const void* src, float* dst, int64_t n) {
    const bf16_t* x = static_cast<const bf16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void bf16_from_float(const float* src, void* dst, int64_t n) {
    bf16_t* y = static_cast<bf16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

float bf16_vec_dot(int64_t n, const void* w, const void* a) {
    const bf16_t* x = static_cast<const bf16_t*>(w);
    const bf16_t* y = static_cast<const bf16_t*>(a);
    double sum = 0.0;
    // 8 + 8 significant bits: the float product is exact.
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
    return static_cast<float>(sum);
}

}  // namespace

void register_scalar_float_kernels(KernelTable& t) {
    t[GgmlType::F32] = {f32_to_float, f32_from_float, f32_vec_dot};
    t[GgmlType::F16] = {f16_to_float, f16_from_float, f16_vec_dot};
    t[GgmlType::BF16] = {bf16_to_float, bf16_from_float, bf16_vec_dot};
}

}  // namespace hearth
