// The plain AVX2 instance of the packed-layout kernels (vpmaddubsw + vpmaddwd; templates in
// avx2_packed_impl.h), for CPUs with AVX2+FMA+F16C and no AVX-VNNI (or HEARTH_ISA=avx2).
#if defined(__x86_64__)
#define HEARTH_PACKED_TARGET "avx2,fma,f16c"
#define HEARTH_PACKED_VNNI 0
#define HEARTH_PACKED_NS avx2_packed
#include "tensor/x86/avx2_packed_impl.h"
#endif
