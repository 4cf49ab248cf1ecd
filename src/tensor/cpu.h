// Kernel families and which one runs: the best the CPU has, or the one HEARTH_ISA forces
// (scalar | avx2 | avx2-vnni | avx512), so each family can be measured and tested on one
// machine. Every CPU feature check of the kernel code goes through isa_family(), so forcing
// a family turns off everything above it (the VNNI multi-token kernels, the AVX-512 GEMM,
// attention and SwiGLU, the packed AVX-512 VNNI layouts).
#pragma once

namespace hearth {

enum class IsaFamily { Scalar = 0, Avx2 = 1, Avx2Vnni = 2, Avx512 = 3 };

const char* isa_family_name(IsaFamily f);
// The best family this CPU runs (AVX-512 means AVX-512 F/BW/VNNI with the OS saving ZMM state).
IsaFamily cpu_best_family();
// HEARTH_ISA if set, else cpu_best_family(). Throws std::runtime_error (every call) for a
// name it does not know, a family this CPU lacks, or "amx", whose kernels do not exist yet.
IsaFamily isa_family();

}  // namespace hearth
