// Per-op time accounting for `hearth bench --profile`: the forward pass marks the end of
// each section (embedding, norms, matmuls by weight type, RoPE, KV append, attention, FFN
// activation, residual adds) with Lap; when profiling is off a lap is one relaxed load.
// Totals are process-wide; only the thread running the forward pass records (the pool's
// helpers are inside the matmul/attention sections).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/types.h"

namespace hearth::prof {

enum class Op { Embed, Norm, Matmul, Rope, KvStore, Attention, Activation, Residual, Sampling, Other, Count };

void set_enabled(bool on);
bool enabled();
void reset();

// Adds `ns` to op (for Matmul, per weight type).
void add(Op op, uint64_t ns, GgmlType type = GgmlType::F32);

struct Entry {
    std::string name;  // "matmul q4_0", "attention", ...
    uint64_t ns = 0;
    uint64_t calls = 0;
};
// Non-zero entries, largest first.
std::vector<Entry> snapshot();

uint64_t now_ns();

// Marks consecutive sections: each call charges the time since the previous one.
class Lap {
public:
    Lap() : on_(enabled()), last_(on_ ? now_ns() : 0) {}
    void operator()(Op op) { mark(op, GgmlType::F32); }
    void matmul(GgmlType type) { mark(Op::Matmul, type); }

private:
    void mark(Op op, GgmlType type) {
        if (!on_) return;
        const uint64_t t = now_ns();
        add(op, t - last_, type);
        last_ = t;
    }
    bool on_;
    uint64_t last_;
};

}  // namespace hearth::prof
