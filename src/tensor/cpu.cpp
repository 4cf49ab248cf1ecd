#include "tensor/cpu.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tensor/kernel_table.h"
#include "tensor/repack.h"

#if defined(__x86_64__)
#include <cpuid.h>

#include "tensor/x86/amx_packed.h"
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace hearth {

const char* isa_family_name(IsaFamily f) {
    switch (f) {
        case IsaFamily::Scalar: return "scalar";
        case IsaFamily::Avx2: return "avx2";
        case IsaFamily::Avx2Vnni: return "avx2-vnni";
        case IsaFamily::Avx512: return "avx512";
        case IsaFamily::Amx: return "amx";
        case IsaFamily::Neon: return "neon";
        case IsaFamily::NeonDotprod: return "neon-dotprod";
    }
    return "?";
}

bool amx_cpuid_ok(uint32_t cpuid7_edx, uint64_t xcr0) {
    const bool tile = cpuid7_edx & (1u << 24), int8 = cpuid7_edx & (1u << 25);
    const uint64_t tile_state = (uint64_t{1} << 17) | (uint64_t{1} << 18);  // XTILECFG, XTILEDATA
    return tile && int8 && (xcr0 & tile_state) == tile_state;
}

bool amx_request_permission() {
#if defined(__x86_64__) && defined(__linux__)
    // Linux 5.16+: the tile data is a dynamically enabled XSAVE feature; a process asks once
    // (the permission covers all its threads) before its first tile instruction.
    constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
    unsigned long bitmask = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
    return (bitmask & (1ul << kXfeatureXtiledata)) != 0;
#else
    return false;
#endif
}

bool cpu_has_amx() {
    static const bool has = [] {
#if defined(__x86_64__)
        if (!cpu_has_avx2_fma_f16c() || !avx512::cpu_has_vnni()) return false;  // also checks OSXSAVE
        if (__get_cpuid_max(0, nullptr) < 7) return false;
        unsigned a, b, c, d;
        __cpuid_count(7, 0, a, b, c, d);
        unsigned lo, hi;
        __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        if (!amx_cpuid_ok(d, (uint64_t{hi} << 32) | lo)) return false;
        return amx_request_permission();
#else
        return false;
#endif
    }();
    return has;
}

bool amx_usable() {
    static const bool ok = [] {
#if defined(__x86_64__)
        if (!cpu_has_amx()) return false;
        std::string why;
        if (amx::self_check(&why)) return true;
        std::fprintf(stderr, "hearth: warning: AMX kernels disabled: self-check failed (%s); using avx512\n", why.c_str());
#endif
        return false;
    }();
    return ok;
}

const PackedKernels* amx_packed_kernels() {
#if defined(__x86_64__)
    if (amx_usable()) return &amx::hw_packed_kernels();
#endif
    return nullptr;
}

IsaFamily cpu_best_family() {
    static const IsaFamily best = [] {
#if defined(__x86_64__)
        if (!cpu_has_avx2_fma_f16c()) return IsaFamily::Scalar;
        if (avx512::cpu_has_vnni()) return amx_usable() ? IsaFamily::Amx : IsaFamily::Avx512;
        return cpu_has_avx_vnni() ? IsaFamily::Avx2Vnni : IsaFamily::Avx2;
#elif defined(__aarch64__)
        return cpu_has_neon_dotprod() ? IsaFamily::NeonDotprod : IsaFamily::Neon;  // NEON is baseline ARMv8-A
#else
        return IsaFamily::Scalar;
#endif
    }();
    return best;
}

namespace {
bool is_arm(IsaFamily f) { return f == IsaFamily::Neon || f == IsaFamily::NeonDotprod; }
}  // namespace

bool isa_family_supported(IsaFamily f) {
    if (f == IsaFamily::Scalar) return true;
    const IsaFamily best = cpu_best_family();
    if (best == IsaFamily::Scalar || is_arm(f) != is_arm(best)) return false;
    return static_cast<int>(f) <= static_cast<int>(best);
}

IsaFamily isa_family() {
    static const std::string env = [] {
        const char* e = std::getenv("HEARTH_ISA");
        return std::string(e ? e : "");
    }();
    if (env.empty()) return cpu_best_family();
    IsaFamily want;
    if (env == "scalar") want = IsaFamily::Scalar;
    else if (env == "avx2") want = IsaFamily::Avx2;
    else if (env == "avx2-vnni") want = IsaFamily::Avx2Vnni;
    else if (env == "avx512") want = IsaFamily::Avx512;
    else if (env == "neon") want = IsaFamily::Neon;
    else if (env == "neon-dotprod") want = IsaFamily::NeonDotprod;
    else if (env == "amx") want = IsaFamily::Amx;
    else
        throw std::runtime_error("HEARTH_ISA='" + env +
                                 "' is not a kernel family (scalar, avx2, avx2-vnni, avx512, amx, neon, neon-dotprod)");
    if (want == IsaFamily::Amx && !isa_family_supported(want)) {
        const std::string best = isa_family_name(cpu_best_family());
        if (cpu_has_amx())
            throw std::runtime_error("HEARTH_ISA=amx: the AMX kernels failed their self-check against avx512 on this CPU "
                                     "(see the warning above); this CPU's best kernel family is " + best);
        throw std::runtime_error("HEARTH_ISA=amx: this CPU has no usable AMX-INT8 tiles (CPUID AMX-TILE/AMX-INT8, the "
                                 "OS's XTILEDATA state and permission); this CPU's best kernel family is " + best);
    }
    if (!isa_family_supported(want))
        throw std::runtime_error(std::string("HEARTH_ISA=") + env + ": this CPU's best kernel family is " +
                                 isa_family_name(cpu_best_family()));
    return want;
}

}  // namespace hearth
