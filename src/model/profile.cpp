#include "model/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace hearth::prof {

namespace {

constexpr int kTypes = 64;

struct Counter {
    std::atomic<uint64_t> ns{0}, calls{0};
};

std::atomic<bool> g_enabled{false};
Counter g_ops[static_cast<int>(Op::Count)];
Counter g_matmul[kTypes];

const char* op_name(Op op) {
    switch (op) {
    case Op::Embed: return "embedding";
    case Op::Norm: return "norms";
    case Op::Matmul: return "matmul";
    case Op::Rope: return "rope";
    case Op::KvStore: return "kv append";
    case Op::Attention: return "attention";
    case Op::Activation: return "ffn activation";
    case Op::Residual: return "residual add";
    case Op::Sampling: return "sampling";
    case Op::Other: return "other";
    case Op::Count: break;
    }
    return "?";
}

}  // namespace

void set_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
    for (Counter& c : g_ops) c.ns = 0, c.calls = 0;
    for (Counter& c : g_matmul) c.ns = 0, c.calls = 0;
}

uint64_t now_ns() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void add(Op op, uint64_t ns, GgmlType type) {
    Counter& c = op == Op::Matmul ? g_matmul[std::min<uint32_t>(static_cast<uint32_t>(type), kTypes - 1)]
                                  : g_ops[static_cast<int>(op)];
    c.ns.fetch_add(ns, std::memory_order_relaxed);
    c.calls.fetch_add(1, std::memory_order_relaxed);
}

std::vector<Entry> snapshot() {
    std::vector<Entry> out;
    for (int i = 0; i < static_cast<int>(Op::Count); ++i)
        if (g_ops[i].calls) out.push_back({op_name(static_cast<Op>(i)), g_ops[i].ns.load(), g_ops[i].calls.load()});
    for (int t = 0; t < kTypes; ++t)
        if (g_matmul[t].calls)
            out.push_back({std::string("matmul ") + type_name(static_cast<GgmlType>(t)), g_matmul[t].ns.load(),
                           g_matmul[t].calls.load()});
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.ns > b.ns; });
    return out;
}

}  // namespace hearth::prof
