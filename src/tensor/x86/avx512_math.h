// Internal to src/tensor/x86/: vector math shared by the AVX-512 kernels (attention
// softmax, FFN activations). Compiled for baseline x86-64: every helper carries a target
// attribute and runs only after CPUID dispatch.
#pragma once

#if defined(__x86_64__)

#include <immintrin.h>

#define HEARTH_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))
#define HEARTH_AVX512_INLINE __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline

namespace hearth::avx512 {

// e^x on 16 lanes: x = n ln2 + r (|r| <= ln2/2, Cody-Waite split of ln2), e^r by its
// degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n by scalef. Inputs
// below -110 (including -inf) give exactly 0; inputs are clamped at 88.7 above.
HEARTH_AVX512_INLINE __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-110.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

}  // namespace hearth::avx512

#endif
