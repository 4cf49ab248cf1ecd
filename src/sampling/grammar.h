// Grammar-constrained sampling: a GBNF grammar (llama.cpp's syntax), a byte-level matcher
// over it, and a token mask built from the matcher and a trie of the vocabulary's bytes.
//
// GBNF in brief:
//     root  ::= "{" ws pair ("," ws pair)* "}"    # rules: name ::= alternatives
//     pair  ::= [a-z]+ ws ":" ws ( num | "null" ) ws
//     num   ::= "-"? [0-9]{1,8}
//     ws    ::= [ \t\n]{0,4}
// Literals "..." and classes [...] / [^...] (ranges a-z, escapes \n \r \t \\ \" \[ \] \- \^
// \xHH \uHHHH \UHHHHHHHH), "." (any code point), groups ( ... ), alternation |, repetition
// ? * + {m} {m,} {,n} {m,n}, rule references, # comments. A rule ends at a newline unless the
// newline is inside parentheses, follows '::=' or '|', or the next line starts with '|'.
// Rule names are [A-Za-z0-9_-]+. Rejected at parse time: left recursion that would grow
// the parse stack (a ::= a "x" | ...; a nullable repetition such as ("x"*)* is fine),
// and rules reachable from the root that can never complete (x ::= "a" x).
//
// The matcher works on bytes but classes match code points: a class is checked against
// the code points a partial UTF-8 sequence can still become, so only well-formed UTF-8
// (no overlongs, no surrogates) that the grammar allows gets through.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth {

class Tokenizer;

namespace utf8 {
// Decodes the code point at s[i]: its length in bytes (1-4), or 0 for ill-formed UTF-8
// (overlong forms, surrogates, > U+10FFFF, truncated sequences).
size_t decode(std::string_view s, size_t i, uint32_t& cp);
void append(std::string& out, uint32_t cp);
}  // namespace utf8

// A GBNF syntax or semantic error; line and column (1-based; 0 when not about a place in
// the text) are also part of what().
class GrammarError : public std::runtime_error {
public:
    explicit GrammarError(const std::string& msg, int line = 0, int column = 0);
    int line() const { return line_; }
    int column() const { return column_; }

private:
    int line_, column_;
};

// A compiled grammar: immutable after parse(), safe to share between threads and requests.
class Grammar {
public:
    // Throws GrammarError (undefined rule, missing root, left recursion, bad syntax, ...).
    static std::shared_ptr<const Grammar> parse(std::string_view gbnf, std::string_view root = "root");

    // The compiled grammar re-printed as GBNF (repetitions and groups appear as the rules
    // they were lowered to). For debugging.
    std::string to_gbnf() const;
    size_t n_rules() const { return names_.size(); }
    size_t n_elements() const { return elems_.size(); }

    // ---- The compiled form (what the matcher walks).
    enum class Op : uint8_t { Char, Ref, End };
    struct Elem {
        Op op;
        uint32_t arg;  // Char: class index; Ref: rule index
    };
    // A set of code points: sorted, disjoint, non-adjacent ranges; never contains surrogates.
    struct CharClass {
        std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
        std::bitset<128> ascii;
        bool contains(uint32_t cp) const;
        bool intersects(uint32_t lo, uint32_t hi) const;
    };
    const std::vector<Elem>& elems() const { return elems_; }
    // Start positions (into elems()) of the rule's alternatives; each runs up to an End.
    const std::vector<uint32_t>& alts(uint32_t rule) const { return alts_[rule]; }
    const CharClass& char_class(uint32_t i) const { return classes_[i]; }
    const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
    uint32_t root() const { return root_; }

private:
    friend class GrammarBuilder;
    std::vector<std::string> names_;
    std::vector<std::vector<uint32_t>> alts_;
    std::vector<Elem> elems_;
    std::vector<CharClass> classes_;
    uint32_t root_ = 0;
};

// The set of parse positions (llama.cpp-style stacks) a grammar can be in after some bytes.
// Stacks are hash-consed and sets of stacks interned as small integer states, with a lazily
// built byte transition table: stepping a known (state, byte) pair is one table lookup,
// which is what makes masking a large vocabulary cheap. Not thread-safe.
class GrammarMatcher {
public:
    using StateId = uint32_t;
    static constexpr StateId kDead = 0;

    explicit GrammarMatcher(std::shared_ptr<const Grammar> g);
    ~GrammarMatcher();
    GrammarMatcher(GrammarMatcher&&) noexcept;
    GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

    // Consumes `bytes` if the grammar allows all of them (true); else leaves the state as it
    // was and returns false.
    bool accept(std::string_view bytes);
    bool allows(std::string_view bytes);  // would accept() succeed (no change)
    bool is_complete() const { return state_complete(cur_); }  // the input is a full sentence
    bool can_continue() const { return state_live(cur_); }    // some byte may follow
    std::bitset<256> next_bytes();  // the bytes that may come next
    // The code points that may come next (sorted, disjoint ranges). Inside a partial UTF-8
    // sequence: the code points that sequence can still complete to.
    std::vector<std::pair<uint32_t, uint32_t>> next_code_points() const;
    void reset();
    const Grammar& grammar() const { return *g_; }

    // ---- Low level (the token trie walk).
    StateId state() const { return cur_; }
    void set_state(StateId s) { cur_ = s; }
    StateId step(StateId s, uint8_t b) {
        const uint32_t row = row_[s];
        if (row != kNone) {
            const StateId t = trans_[static_cast<size_t>(row) * 256 + b];
            if (t != kNone) return t;
        }
        return step_slow(s, b);
    }
    StateId walk(StateId s, std::string_view bytes) {
        for (char c : bytes) {
            s = step(s, static_cast<uint8_t>(c));
            if (s == kDead) break;
        }
        return s;
    }
    bool state_complete(StateId s) const { return flags_[s] & kComplete; }
    bool state_live(StateId s) const { return flags_[s] & kLive; }
    size_t n_states() const { return flags_.size(); }
    // Drops every cached state but the current one once the cache has grown past its budget
    // (state ids other than state() become invalid). Call between walks, never during one.
    void maybe_compact();

private:
    static constexpr uint32_t kNone = 0xFFFFFFFFu;
    static constexpr uint8_t kComplete = 1, kLive = 2;
    struct Impl;
    std::shared_ptr<const Grammar> g_;
    std::unique_ptr<Impl> impl_;
    std::vector<uint32_t> row_;    // per state: its row in trans_, or kNone
    std::vector<StateId> trans_;   // 256 entries a row; kNone = not computed yet
    std::vector<uint8_t> flags_;   // per state
    StateId cur_ = kDead;
    StateId initial_ = kDead;
    StateId step_slow(StateId s, uint8_t b);
    friend struct Impl;
};

// A vocabulary's token bytes as a trie, built once per tokenizer. Control tokens, unused,
// unknown and empty pieces are left out; end-of-generation tokens are listed apart.
class TokenTrie {
public:
    explicit TokenTrie(const Tokenizer& tok);
    // The trie for `tok`, from a process-wide cache keyed by the tokenizer's address (and
    // checked against a fingerprint of its vocabulary, so a new tokenizer at a reused address
    // is not served a stale trie).
    static std::shared_ptr<const TokenTrie> get(const Tokenizer& tok);
    static void forget(const Tokenizer& tok);  // drop `tok`'s cache entry

    struct Node {
        uint32_t skip;       // index just past this node's subtree
        uint32_t tok_begin;  // tokens ending here: toks[tok_begin, next node's tok_begin)
        uint16_t depth;      // bytes from the root
        uint8_t byte;
    };
    int32_t n_vocab() const { return n_vocab_; }
    const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
    bool usable(int32_t id) const { return id >= 0 && id < n_vocab_ && usable_[static_cast<size_t>(id)]; }
    bool is_end(int32_t id) const;  // an end-of-generation token
    const std::vector<int32_t>& end_tokens() const { return eog_; }
    const std::vector<Node>& nodes() const { return nodes_; }  // preorder; [0] root; last is a sentinel
    const std::vector<int32_t>& toks() const { return toks_; }
    size_t max_depth() const { return max_depth_; }

private:
    int32_t n_vocab_ = 0;
    std::vector<std::string> pieces_;
    std::vector<uint8_t> usable_;
    std::vector<int32_t> eog_;
    std::vector<Node> nodes_;
    std::vector<int32_t> toks_;
    size_t max_depth_ = 0;
};

// Constrains sampling to a grammar. Typical use per step:
//     id = sample(logits); if (!c.allows(id)) { c.apply(logits); id = sample(logits); }
//     c.accept(id);  ... stop when c.done() or id is an end token.
class GrammarConstraint {
public:
    GrammarConstraint(std::shared_ptr<const Grammar> g, const Tokenizer& tok);
    GrammarConstraint(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie);

    // Sets -inf for every token whose bytes cannot continue the grammar; end-of-generation
    // tokens stay only when the grammar is complete. Ids past the vocabulary get -inf.
    void apply(float* logits, int32_t n_vocab);
    bool allows(int32_t token);
    // Advances over the token's bytes; throws std::runtime_error if it is not allowed.
    void accept(int32_t token);
    // Nothing more can be generated: an end token was accepted, or the grammar is complete
    // and admits no further byte.
    bool done() const { return ended_ || !m_.can_continue(); }
    bool can_end() const { return !ended_ && m_.is_complete(); }  // an end token is allowed now
    void reset();
    const GrammarMatcher& matcher() const { return m_; }
    const TokenTrie& trie() const { return *trie_; }

private:
    std::shared_ptr<const TokenTrie> trie_;
    GrammarMatcher m_;
    bool ended_ = false;
    std::vector<uint8_t> allowed_;
    std::vector<GrammarMatcher::StateId> depth_state_;
};

}  // namespace hearth
