// Builds without src/tensor/x86/ (every target but x86-64; CMakeLists.txt leaves that folder
// out there): the x86 entry points that ISA-neutral code names (tensor/gemm.h, attention.h,
// activation.h, repack.h) as inert stand-ins. Their CPU checks say "no", so nothing calls the
// kernels; the GEMM, attention and SwiGLU stand-ins fall back to the scalar path.
#if !defined(__x86_64__)

#include <cmath>

#include "tensor/activation.h"
#include "tensor/attention.h"
#include "tensor/gemm.h"
#include "tensor/kernel_table.h"
#include "tensor/repack.h"

namespace hearth {

namespace avx512 {
bool cpu_supported() { return false; }
bool cpu_has_avx512f() { return false; }
bool cpu_has_vnni() { return false; }
void gemm_f32(const MatrixView&, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t) {}
void swiglu(const float* g, const float* u, float* out, int64_t n) { scalar::swiglu(g, u, out, n); }
const AttnKernel attn{};
void attn_exp16(const float* x, float* y) {
    for (int i = 0; i < kAttnTile; ++i) y[i] = std::exp(x[i]);
}
void q4_0x16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q8_0x16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q4_kx16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, const float*, const int32_t*, int, float*, int64_t) {}
void q4_0x16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q8_0x16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q4_kx16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q4_kx16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
void q4_0x16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
void q6_kx16_rows(int64_t, const uint8_t*, const uint8_t*, size_t, int, float*, int64_t) {}
void q6_kx16_unpack(int64_t, const uint8_t*, uint8_t*, float*) {}
void q6_kx16_gemm_block(int64_t, const uint8_t*, const float*, int, const uint8_t*, float*) {}
}  // namespace avx512

namespace avx2 {
void gemm_f32(const MatrixView&, const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t) {}
float vec_dot_f16_f32act(int64_t, const void*, const void*) { return 0.0f; }
void vec_dot_multi_f16_f32act(int64_t, const void*, const uint8_t*, size_t, int, float*) {}
void swiglu(const float* g, const float* u, float* out, int64_t n) { scalar::swiglu(g, u, out, n); }
const AttnKernel attn{};
void attn_exp8(const float* x, float* y) {
    for (int i = 0; i < 8; ++i) y[i] = std::exp(x[i]);
}
}  // namespace avx2

void register_avx2_kernels(KernelTable&) {}
void register_avx2_multi_kernels(KernelTable&) {}
void register_avx2_vnni_multi_kernels(KernelTable&) {}

}  // namespace hearth

#endif  // !__x86_64__
