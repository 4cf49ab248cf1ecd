// GrammarMatcher: llama.cpp-style parse stacks, hash-consed, with sets of stacks interned
// as states and a lazily filled byte transition table.
//
// A stack is a chain of nodes (pos, parent): pos is the next element of some alternative
// and parent is where to continue once that alternative ends; node 0 is the empty stack
// (the input so far is a full sentence). A normalized stack's top is always a Char
// element. A reference in tail position (nothing after it in its alternative) reuses the
// caller's continuation instead of pushing a frame, so right recursion (x* lowered to
// star ::= x star | "") keeps stacks short, and the same states recur.
//
// Multi-byte code points: after a lead byte the state keeps the bits seen so far, and a
// stack survives only while its class holds a code point the sequence can still become.
#include <algorithm>
#include <unordered_map>

#include "sampling/grammar.h"

namespace hearth {

namespace {

constexpr uint32_t kMinForLen[5] = {0, 0, 0x80, 0x800, 0x10000};
constexpr size_t kMaxStates = 1u << 14;  // about 16 MiB of transition rows
constexpr size_t kMaxNodes = 1u << 20;

}  // namespace

struct GrammarMatcher::Impl {
    explicit Impl(const Grammar& g) : g(g) { clear(); }

    struct Node {
        uint32_t pos, parent;
    };
    struct State {
        uint32_t begin, end;  // stacks: pool[begin, end), ascending
        uint32_t acc;         // partial code point bits
        uint8_t need, len;    // continuation bytes still needed; sequence length
    };

    const Grammar& g;
    std::vector<Node> nodes;
    std::unordered_map<uint64_t, uint32_t> node_ids;
    std::vector<uint32_t> mark;
    uint32_t epoch = 0;
    std::vector<State> states;
    std::vector<uint32_t> pool;
    std::unordered_map<std::string, uint32_t> state_ids;
    std::vector<uint32_t> work, out, src;

    void clear() {
        nodes.assign(1, {0, 0});
        node_ids.clear();
        mark.assign(1, 0);
        epoch = 0;
        states.assign(1, {0, 0, 0, 0, 0});
        pool.clear();
        state_ids.clear();
    }

    uint32_t intern_node(uint32_t pos, uint32_t parent) {
        const uint64_t key = (static_cast<uint64_t>(pos) << 32) | parent;
        auto [it, fresh] = node_ids.try_emplace(key, static_cast<uint32_t>(nodes.size()));
        if (fresh) {
            nodes.push_back({pos, parent});
            mark.push_back(0);
        }
        return it->second;
    }

    // The stack that continues at `pos` then returns to `parent`.
    uint32_t cont(uint32_t pos, uint32_t parent) {
        return g.elems()[pos].op == Grammar::Op::End ? parent : intern_node(pos, parent);
    }

    // Adds to `out` the normalized stacks `node` stands for (call with a fresh epoch).
    void expand(uint32_t node) {
        work.push_back(node);
        while (!work.empty()) {
            const uint32_t id = work.back();
            work.pop_back();
            if (id == 0) {
                out.push_back(0);
                continue;
            }
            if (mark[id] == epoch) continue;
            mark[id] = epoch;
            const Node n = nodes[id];
            const Grammar::Elem e = g.elems()[n.pos];
            if (e.op == Grammar::Op::Char) {
                out.push_back(id);
                continue;
            }
            const uint32_t ret = cont(n.pos + 1, n.parent);
            for (uint32_t a : g.alts(e.arg)) work.push_back(cont(a, ret));
        }
    }

    const Grammar::CharClass& top_class(uint32_t stack) const {
        return g.char_class(g.elems()[nodes[stack].pos].arg);
    }

    StateId intern_state(GrammarMatcher& m, uint32_t acc, uint8_t need, uint8_t len) {
        std::sort(out.begin(), out.end());
        out.erase(std::unique(out.begin(), out.end()), out.end());
        if (out.empty()) return kDead;
        std::string key(reinterpret_cast<const char*>(out.data()), out.size() * sizeof(uint32_t));
        key.append(reinterpret_cast<const char*>(&acc), sizeof acc);
        key += static_cast<char>(need);
        key += static_cast<char>(len);
        auto [it, fresh] = state_ids.try_emplace(std::move(key), static_cast<uint32_t>(states.size()));
        if (fresh) {
            const auto begin = static_cast<uint32_t>(pool.size());
            pool.insert(pool.end(), out.begin(), out.end());
            states.push_back({begin, static_cast<uint32_t>(pool.size()), acc, need, len});
            uint8_t f = 0;
            if (need == 0 && out.front() == 0) f |= kComplete;
            if (out.back() != 0) f |= kLive;
            m.flags_.push_back(f);
            m.row_.push_back(kNone);
        }
        return it->second;
    }

    // The code points a partial sequence can still become; false when none.
    static bool partial_range(uint32_t acc, uint8_t need, uint8_t len, uint32_t& lo, uint32_t& hi) {
        lo = acc << (6 * need);
        hi = lo | ((1u << (6 * need)) - 1);
        lo = std::max(lo, kMinForLen[len]);
        hi = std::min<uint32_t>(hi, 0x10FFFF);
        return lo <= hi;
    }

    // Keeps the stacks whose class can still match the partial code point.
    StateId filter(GrammarMatcher& m, uint32_t acc, uint8_t need, uint8_t len) {
        uint32_t lo, hi;
        out.clear();
        if (!partial_range(acc, need, len, lo, hi)) return kDead;
        for (uint32_t s : src)
            if (s != 0 && top_class(s).intersects(lo, hi)) out.push_back(s);
        return intern_state(m, acc, need, len);
    }

    // Consumes a whole code point from every stack whose class matches it.
    StateId advance(GrammarMatcher& m, uint32_t cp, uint8_t len) {
        out.clear();
        if (cp < kMinForLen[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kDead;
        ++epoch;
        for (uint32_t s : src) {
            if (s == 0) continue;
            const Node n = nodes[s];
            if (g.char_class(g.elems()[n.pos].arg).contains(cp)) expand(cont(n.pos + 1, n.parent));
        }
        return intern_state(m, 0, 0, 0);
    }

    StateId initial(GrammarMatcher& m) {
        out.clear();
        ++epoch;
        for (uint32_t a : g.alts(g.root())) expand(cont(a, 0));
        return intern_state(m, 0, 0, 0);
    }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
    if (!g_) throw std::invalid_argument("GrammarMatcher: null grammar");
    impl_ = std::make_unique<Impl>(*g_);
    row_.assign(1, 0);
    trans_.assign(256, kDead);  // the dead state's row: dead forever
    flags_.assign(1, 0);
    initial_ = cur_ = impl_->initial(*this);
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

GrammarMatcher::StateId GrammarMatcher::step_slow(StateId s, uint8_t b) {
    Impl& m = *impl_;
    const Impl::State st = m.states[s];
    m.src.assign(m.pool.begin() + st.begin, m.pool.begin() + st.end);
    StateId t = kDead;
    if (st.need > 0) {
        if ((b & 0xC0) == 0x80) {
            const uint32_t acc = (st.acc << 6) | (b & 0x3F);
            const auto need = static_cast<uint8_t>(st.need - 1);
            t = need > 0 ? m.filter(*this, acc, need, st.len) : m.advance(*this, acc, st.len);
        }
    } else if (b < 0x80) {
        t = m.advance(*this, b, 1);
    } else if (b >= 0xC0 && b < 0xF8) {
        const uint8_t len = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        const uint32_t acc = b & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
        t = m.filter(*this, acc, static_cast<uint8_t>(len - 1), len);
    }
    if (row_[s] == kNone) {
        row_[s] = static_cast<uint32_t>(trans_.size() / 256);
        trans_.resize(trans_.size() + 256, kNone);
    }
    trans_[static_cast<size_t>(row_[s]) * 256 + b] = t;
    return t;
}

bool GrammarMatcher::accept(std::string_view bytes) {
    maybe_compact();
    const StateId t = walk(cur_, bytes);
    if (t == kDead) return false;
    cur_ = t;
    return true;
}

bool GrammarMatcher::allows(std::string_view bytes) {
    maybe_compact();
    return walk(cur_, bytes) != kDead;
}

std::bitset<256> GrammarMatcher::next_bytes() {
    maybe_compact();
    std::bitset<256> r;
    for (int b = 0; b < 256; ++b)
        if (step(cur_, static_cast<uint8_t>(b)) != kDead) r.set(static_cast<size_t>(b));
    return r;
}

std::vector<std::pair<uint32_t, uint32_t>> GrammarMatcher::next_code_points() const {
    const Impl& m = *impl_;
    const Impl::State st = m.states[cur_];
    uint32_t lo = 0, hi = 0x10FFFF;
    if (st.need > 0 && !Impl::partial_range(st.acc, st.need, st.len, lo, hi)) return {};
    std::vector<std::pair<uint32_t, uint32_t>> r;
    for (uint32_t i = st.begin; i < st.end; ++i) {
        if (m.pool[i] == 0) continue;
        for (auto [a, b] : m.top_class(m.pool[i]).ranges)
            if (b >= lo && a <= hi) r.emplace_back(std::max(a, lo), std::min(b, hi));
    }
    std::sort(r.begin(), r.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& [a, b] : r) {
        if (!merged.empty() && a <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, b);
        else merged.emplace_back(a, b);
    }
    return merged;
}

void GrammarMatcher::reset() { cur_ = initial_; }

void GrammarMatcher::maybe_compact() {
    Impl& m = *impl_;
    if (flags_.size() <= kMaxStates && m.nodes.size() <= kMaxNodes) return;
    // Save the current state's stacks as element positions (top first), then rebuild.
    const Impl::State st = m.states[cur_];
    std::vector<std::vector<uint32_t>> stacks;
    for (uint32_t i = st.begin; i < st.end; ++i) {
        std::vector<uint32_t> chain;
        for (uint32_t n = m.pool[i]; n != 0; n = m.nodes[n].parent) chain.push_back(m.nodes[n].pos);
        stacks.push_back(std::move(chain));
    }
    m.clear();
    row_.assign(1, 0);
    trans_.assign(256, kDead);
    flags_.assign(1, 0);
    initial_ = m.initial(*this);
    m.out.clear();
    for (const auto& chain : stacks) {
        uint32_t n = 0;
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) n = m.intern_node(*it, n);
        m.out.push_back(n);
    }
    cur_ = cur_ == kDead ? kDead : m.intern_state(*this, st.acc, st.need, st.len);
}

}  // namespace hearth
