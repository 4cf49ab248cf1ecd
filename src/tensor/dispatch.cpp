// Kernel dispatch: builds the scalar table and the one SIMD table of this architecture (AVX2
// on x86-64, NEON on aarch64) once, and picks one from the CPU's features (CPUID, HWCAP).
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "tensor/cpu.h"
#include "tensor/kernel_table.h"

namespace hearth {

// CPUID leaf 1 (FMA, OSXSAVE, AVX, F16C), XGETBV (the OS saves YMM state) and leaf 7
// (AVX2). Read directly: compilers' __builtin_cpu_supports names differ across versions.
bool cpu_has_avx2_fma_f16c() {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!(fma && osxsave && avx && f16c)) return false;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6u) != 0x6u) return false;  // XMM and YMM state enabled by the OS
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return b & (1u << 5);
#else
    return false;
#endif
}

// CPUID leaf 7 sub-leaf 1, EAX bit 4: the VEX-encoded vpdpbusd/vpdpwssd (needs the AVX2
// checks above as well, which the callers make first).
bool cpu_has_avx_vnni() {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    if (a < 1) return false;  // no sub-leaf 1
    __cpuid_count(7, 1, a, b, c, d);
    return a & (1u << 4);
#else
    return false;
#endif
}

// aarch64 Linux: the kernel reports the dot-product extension (SDOT/UDOT) as HWCAP_ASIMDDP.
bool cpu_has_neon_dotprod() {
#if defined(__aarch64__) && defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return false;
#endif
}

namespace {

#if defined(__x86_64__)
bool vnni_enabled() {
    const char* env = std::getenv("HEARTH_VNNI");
    return !(env && std::strcmp(env, "0") == 0);
}
#endif

struct Tables {
    KernelTable scalar{};
    KernelTable avx2{};
    KernelTable neon{};
    Isa detected = Isa::Scalar;
    Isa active = Isa::Scalar;

    Tables() {
        register_scalar_float_kernels(scalar);
        register_scalar_block_kernels(scalar);
        register_scalar_kquant_kernels(scalar);
        avx2 = scalar;
        neon = scalar;
        // HEARTH_ISA (tensor/cpu.h) may hold the kernels below what the CPU has.
        [[maybe_unused]] const IsaFamily family = isa_family();
#if defined(__x86_64__)
        register_avx2_kernels(avx2);
        if (cpu_has_avx2_fma_f16c() && isa_family_is_x86(family)) {
            detected = Isa::Avx2;
            if (cpu_has_avx_vnni() && vnni_enabled() && family >= IsaFamily::Avx2Vnni) register_avx2_vnni_multi_kernels(avx2);
        }
#elif defined(__aarch64__)
        // NEON is part of ARMv8-A: the table always exists; sdot where the CPU has it and
        // HEARTH_ISA is not "neon".
        register_neon_kernels(neon, family == IsaFamily::NeonDotprod && cpu_has_neon_dotprod());
        if (family != IsaFamily::Scalar) detected = Isa::Neon;
#endif
        active = detected;
    }
    const KernelTable& table(Isa isa) const {
        return isa == Isa::Avx2 ? avx2 : isa == Isa::Neon ? neon : scalar;
    }
};

Tables& tables() {
    static Tables t;
    return t;
}

const TypeKernels& checked(GgmlType t, Isa isa) {
    const uint32_t id = static_cast<uint32_t>(t);
    if (id >= static_cast<uint32_t>(kMaxTypeId)) throw std::invalid_argument("unknown tensor type id " + std::to_string(id));
    return tables().table(isa).k[id];
}

}  // namespace

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Avx2: return "avx2";
        case Isa::Neon: return "neon";
        case Isa::Scalar: break;
    }
    return "scalar";
}
Isa detected_isa() { return tables().detected; }
Isa active_isa() { return tables().active; }

void set_active_isa(Isa isa) {
    if (isa == Isa::Avx2 && tables().detected != Isa::Avx2)
        throw std::invalid_argument("this CPU does not support AVX2+FMA+F16C");
    if (isa == Isa::Neon && tables().detected != Isa::Neon)
        throw std::invalid_argument("the NEON kernels are not available (not an aarch64 build, or HEARTH_ISA=scalar)");
    tables().active = isa;
}

const TypeKernels& kernels(GgmlType t) { return checked(t, tables().active); }
const TypeKernels& kernels_for(Isa isa, GgmlType t) { return checked(t, isa); }

static const TypeKernels& need(GgmlType t, int64_t n) {
    const TypeKernels& k = kernels(t);
    const TypeTraits* tr = type_traits(t);
    if (!tr || !k.to_float) throw std::invalid_argument(std::string("no kernels for tensor type ") + type_name(t));
    if (n % tr->block_size != 0)
        throw std::invalid_argument("row length " + std::to_string(n) + " is not a multiple of " + tr->name +
                                    "'s block size " + std::to_string(tr->block_size));
    return k;
}

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) { need(t, n).to_float(src, dst, n); }
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n) { need(t, n).from_float(src, dst, n); }
float vec_dot(GgmlType t, int64_t n, const void* w, const void* a) { return need(t, n).vec_dot(n, w, a); }

}  // namespace hearth
