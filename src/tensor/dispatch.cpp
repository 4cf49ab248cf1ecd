#include <stdexcept>
#include <string>

#include "tensor/kernel_table.h"

namespace hearth {
namespace {

bool cpu_has_avx2_fma_f16c() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

struct Tables {
    KernelTable scalar{};
    KernelTable avx2{};
    Isa detected = Isa::Scalar;
    Isa active = Isa::Scalar;

    Tables() {
        register_scalar_float_kernels(scalar);
        register_scalar_block_kernels(scalar);
        register_scalar_kquant_kernels(scalar);
        avx2 = scalar;
#if defined(__x86_64__)
        register_avx2_kernels(avx2);
        if (cpu_has_avx2_fma_f16c()) detected = Isa::Avx2;
#endif
        active = detected;
    }
    const KernelTable& table(Isa isa) const { return isa == Isa::Avx2 ? avx2 : scalar; }
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

const char* isa_name(Isa isa) { return isa == Isa::Avx2 ? "avx2" : "scalar"; }
Isa detected_isa() { return tables().detected; }
Isa active_isa() { return tables().active; }

void set_active_isa(Isa isa) {
    if (isa == Isa::Avx2 && tables().detected != Isa::Avx2)
        throw std::invalid_argument("this CPU does not support AVX2+FMA+F16C");
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
