// Token masking: a preorder trie over the vocabulary's token bytes, walked alongside the
// matcher's transition table so that a rejected prefix discards its whole subtree.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "sampling/grammar.h"
#include "tokenizer/tokenizer.h"

namespace hearth {

namespace {

// Cheap identity of a vocabulary: guards the trie cache against a different tokenizer
// allocated at the address of a destroyed one.
std::string fingerprint(const Tokenizer& tok) {
    const int32_t n = tok.n_vocab();
    std::string fp = std::to_string(n) + '/' + std::to_string(tok.eos()) + '/' + std::to_string(tok.bos()) + '/' +
                     tok.model_name() + '/';
    constexpr int32_t kSamples = 48;
    for (int32_t k = 0; k < kSamples && n > 0; ++k) {
        const int32_t id = static_cast<int32_t>((static_cast<int64_t>(n - 1) * k) / (kSamples - 1));
        fp += tok.token_text(id);
        fp += '\x1f';
    }
    return fp;
}

struct TrieCache {
    std::mutex mu;
    std::unordered_map<const Tokenizer*, std::pair<std::string, std::shared_ptr<const TokenTrie>>> map;
};

TrieCache& trie_cache() {
    static TrieCache c;
    return c;
}

}  // namespace

TokenTrie::TokenTrie(const Tokenizer& tok) {
    n_vocab_ = tok.n_vocab();
    const auto n = static_cast<size_t>(n_vocab_);
    pieces_.resize(n);
    usable_.assign(n, 0);
    std::vector<int32_t> order;
    order.reserve(n);
    for (int32_t id = 0; id < n_vocab_; ++id) {
        if (tok.is_eog(id) || id == tok.eos() || id == tok.eot()) {
            eog_.push_back(id);
            continue;
        }
        const TokenType t = tok.token_type(id);
        if (t == TokenType::Control || t == TokenType::Unknown || t == TokenType::Unused || t == TokenType::Undefined)
            continue;
        std::string piece = tok.token_to_piece(id, true);
        if (piece.empty()) continue;
        pieces_[static_cast<size_t>(id)] = std::move(piece);
        usable_[static_cast<size_t>(id)] = 1;
        order.push_back(id);
    }
    // std::string orders bytes as unsigned char, which is the trie's child order.
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)]; });
    nodes_.push_back({0, 0, 0, 0});
    std::vector<uint32_t> path{0};  // path[d]: the node at depth d on the current branch
    const std::string* prev = nullptr;
    for (int32_t id : order) {
        const std::string& p = pieces_[static_cast<size_t>(id)];
        size_t common = 0;
        if (prev)
            while (common < p.size() && common < prev->size() && p[common] == (*prev)[common]) ++common;
        while (path.size() > common + 1) {
            nodes_[path.back()].skip = static_cast<uint32_t>(nodes_.size());
            path.pop_back();
        }
        for (size_t d = common; d < p.size(); ++d) {
            path.push_back(static_cast<uint32_t>(nodes_.size()));
            nodes_.push_back({0, static_cast<uint32_t>(toks_.size()), static_cast<uint16_t>(std::min<size_t>(d + 1, 65535)),
                              static_cast<uint8_t>(p[d])});
        }
        toks_.push_back(id);
        max_depth_ = std::max(max_depth_, p.size());
        prev = &p;
    }
    for (uint32_t node : path) nodes_[node].skip = static_cast<uint32_t>(nodes_.size());
    nodes_.push_back({static_cast<uint32_t>(nodes_.size() + 1), static_cast<uint32_t>(toks_.size()), 0, 0});  // sentinel
    if (max_depth_ >= 65535) throw std::runtime_error("TokenTrie: token piece longer than 65534 bytes");
}

std::shared_ptr<const TokenTrie> TokenTrie::get(const Tokenizer& tok) {
    std::string fp = fingerprint(tok);
    TrieCache& c = trie_cache();
    {
        std::lock_guard<std::mutex> lock(c.mu);
        auto it = c.map.find(&tok);
        if (it != c.map.end() && it->second.first == fp) return it->second.second;
    }
    auto trie = std::make_shared<const TokenTrie>(tok);  // built outside the lock
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.map.size() >= 16 && !c.map.count(&tok)) c.map.erase(c.map.begin());
    c.map[&tok] = {std::move(fp), trie};
    return trie;
}

void TokenTrie::forget(const Tokenizer& tok) {
    TrieCache& c = trie_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    c.map.erase(&tok);
}

bool TokenTrie::is_end(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> g, const Tokenizer& tok)
    : GrammarConstraint(std::move(g), TokenTrie::get(tok)) {}

GrammarConstraint::GrammarConstraint(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie)
    : trie_(std::move(trie)), m_(std::move(g)) {
    if (!trie_) throw std::invalid_argument("GrammarConstraint: null token trie");
    allowed_.assign(static_cast<size_t>(trie_->n_vocab()), 0);
    depth_state_.assign(trie_->max_depth() + 1, GrammarMatcher::kDead);
}

void GrammarConstraint::apply(float* logits, int32_t n_vocab) {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    std::fill(allowed_.begin(), allowed_.end(), 0);
    if (!ended_) {
        m_.maybe_compact();
        if (m_.can_continue()) {
            const std::vector<TokenTrie::Node>& nodes = trie_->nodes();
            const std::vector<int32_t>& toks = trie_->toks();
            GrammarMatcher::StateId* st = depth_state_.data();
            st[0] = m_.state();
            const size_t n = nodes.size() - 1;  // the last node is a sentinel
            for (size_t i = 1; i < n;) {
                const TokenTrie::Node& nd = nodes[i];
                const GrammarMatcher::StateId s = m_.step(st[nd.depth - 1], nd.byte);
                if (s == GrammarMatcher::kDead) {
                    i = nd.skip;
                    continue;
                }
                st[nd.depth] = s;
                for (uint32_t k = nd.tok_begin, e = nodes[i + 1].tok_begin; k < e; ++k)
                    allowed_[static_cast<size_t>(toks[k])] = 1;
                ++i;
            }
        }
        if (m_.is_complete())
            for (int32_t id : trie_->end_tokens()) allowed_[static_cast<size_t>(id)] = 1;
    }
    const int32_t nv = std::min(n_vocab, trie_->n_vocab());
    for (int32_t i = 0; i < nv; ++i)
        if (!allowed_[static_cast<size_t>(i)]) logits[i] = kNegInf;
    for (int32_t i = std::max(nv, 0); i < n_vocab; ++i) logits[i] = kNegInf;
}

bool GrammarConstraint::allows(int32_t token) {
    if (ended_) return false;
    if (trie_->is_end(token)) return m_.is_complete();
    if (!trie_->usable(token)) return false;
    m_.maybe_compact();
    return m_.walk(m_.state(), trie_->piece(token)) != GrammarMatcher::kDead;
}

void GrammarConstraint::accept(int32_t token) {
    if (ended_) throw std::runtime_error("grammar: token " + std::to_string(token) + " after the end token");
    if (trie_->is_end(token)) {
        if (!m_.is_complete()) throw std::runtime_error("grammar: end token " + std::to_string(token) + " before the output is complete");
        ended_ = true;
        return;
    }
    if (!trie_->usable(token) || !m_.accept(trie_->piece(token)))
        throw std::runtime_error("grammar: token " + std::to_string(token) + " is not allowed here");
}

void GrammarConstraint::reset() {
    m_.reset();
    ended_ = false;
}

}  // namespace hearth
