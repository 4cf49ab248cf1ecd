// Internal: the per-ISA kernel tables that tensor/dispatch.cpp assembles. Each kernel file
// fills the entries it implements; later registrations override earlier ones.
#pragma once

#include "tensor/quants.h"

namespace hearth {

constexpr int kMaxTypeId = 40;

struct KernelTable {
    TypeKernels k[kMaxTypeId];
    TypeKernels& operator[](GgmlType t) { return k[static_cast<uint32_t>(t)]; }
};

// tensor/scalar/*.cpp: reference kernels for every computable type.
void register_scalar_float_kernels(KernelTable& t);  // F32, F16, BF16
void register_scalar_block_kernels(KernelTable& t);  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, MXFP4
void register_scalar_kquant_kernels(KernelTable& t); // Q2_K .. Q6_K, Q8_K

// tensor/x86/avx2.cpp: AVX2+FMA+F16C fast paths (compiled with target attributes, so the
// file builds for any x86-64 and is only called when CPUID reports the features).
void register_avx2_kernels(KernelTable& t);

// tensor/x86/avx2_multi*.cpp: vec_dot_multi for the int8 hot types (Q4_0, Q5_0, Q8_0, Q4_K,
// Q5_K, Q6_K; the float types' are in avx2.cpp). The AVX2 instance is part of
// register_avx2_kernels; the AVX-VNNI one, with the same results, replaces it where
// cpu_has_avx_vnni() (and HEARTH_VNNI is not "0").
void register_avx2_multi_kernels(KernelTable& t);
void register_avx2_vnni_multi_kernels(KernelTable& t);
bool cpu_has_avx_vnni();
bool cpu_has_avx2_fma_f16c();  // tensor/dispatch.cpp: the raw CPUID check

// tensor/arm/*.cpp (aarch64 only): the NEON family. vec_dot and vec_dot_multi for Q4_0, Q8_0,
// Q4_K, Q6_K, F16 and F32, and the Q8_0 activation quantizer (the rest stays scalar).
// `dotprod` picks the integer sums of the dot-product extension (sdot, ARMv8.2) instead of
// the plain NEON ones (smull + sadalp); both give the same int32 sums, so the two tables
// return bit-identical results. Only call with dotprod where cpu_has_neon_dotprod().
void register_neon_kernels(KernelTable& t, bool dotprod);
bool cpu_has_neon_dotprod();  // getauxval(AT_HWCAP) & HWCAP_ASIMDDP; false off aarch64

}  // namespace hearth
