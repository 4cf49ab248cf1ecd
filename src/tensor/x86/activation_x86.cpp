// AVX-512 and AVX2 twins of tensor/activation.h's kernels. The tails go through masked
// loads and stores of the same vector code, so an element's result never depends on where
// it sits in the row.
#include "tensor/activation.h"

#if defined(__x86_64__)

#include "tensor/x86/avx2_math.h"
#include "tensor/x86/avx512_math.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wuninitialized
// reports once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace hearth {

namespace avx512 {
namespace {
HEARTH_AVX512_INLINE __m512 swiglu16(__m512 g, __m512 u) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), u);
}
}  // namespace

HEARTH_AVX512 void swiglu(const float* g, const float* u, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, swiglu16(_mm512_loadu_ps(g + i), _mm512_loadu_ps(u + i)));
    if (i < n) {
        const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, swiglu16(_mm512_maskz_loadu_ps(m, g + i), _mm512_maskz_loadu_ps(m, u + i)));
    }
}
}  // namespace avx512

namespace avx2 {
namespace {
HEARTH_AVX2_INLINE __m256 swiglu8(__m256 g, __m256 u) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}
}  // namespace

HEARTH_AVX2 void swiglu(const float* g, const float* u, float* out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
    if (i < n) {
        alignas(32) int32_t lanes[8];
        for (int j = 0; j < 8; ++j) lanes[j] = j < n - i ? -1 : 0;
        const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
        _mm256_maskstore_ps(out + i, m, swiglu8(_mm256_maskload_ps(g + i, m), _mm256_maskload_ps(u + i, m)));
    }
}
}  // namespace avx2

}  // namespace hearth

#else

namespace hearth {
namespace avx512 {
void swiglu(const float* g, const float* u, float* out, int64_t n) { scalar::swiglu(g, u, out, n); }
}  // namespace avx512
namespace avx2 {
void swiglu(const float* g, const float* u, float* out, int64_t n) { scalar::swiglu(g, u, out, n); }
}  // namespace avx2
}  // namespace hearth

#endif
