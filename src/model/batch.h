#pragma once

#include <cstdint>
#include <vector>

namespace hearth {

// Tokens for one forward pass, each with its position and sequence; `logits` marks the
// rows whose output logits the caller wants. Tokens of several sequences may be mixed.
struct Batch {
    std::vector<int32_t> token;
    std::vector<int32_t> pos;
    std::vector<int32_t> seq;
    std::vector<uint8_t> logits;

    void add(int32_t tok, int32_t p, int32_t s, bool want_logits) {
        token.push_back(tok);
        pos.push_back(p);
        seq.push_back(s);
        logits.push_back(want_logits ? 1 : 0);
    }
    void clear() {
        token.clear();
        pos.clear();
        seq.clear();
        logits.clear();
    }
    size_t size() const { return token.size(); }
};

}  // namespace hearth
