// Byte-level BPE (tokenizer.ggml.model = "gpt2"), as llama.cpp's llm_tokenizer_bpe: the
// pre-tokenizer named by tokenizer.ggml.pre splits the text into pieces; each piece's bytes are
// mapped to GPT-2's printable code points and merged pairwise by merge rank (lowest first,
// ties leftmost) from tokenizer.ggml.merges.
//
// Merges are resolved to symbol ids once, at load: a symbol is a vocabulary id or, for merge
// parts and results the vocabulary lacks, an id past n_vocab. Encoding then never builds or
// hashes strings: a pair lookup is one integer-keyed probe.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace hearth::tok {

namespace {

class BpeTokenizer final : public VocabTokenizer {
public:
    BpeTokenizer(Vocab v, const gguf::File& f) : VocabTokenizer(std::move(v)), pre_(pre_tokenizer_spec(v_.pre)) {
        ignore_merges_ = pre_tokenizer_spec(v_.pre).ignore_merges;
        const gguf::Value* mv = f.find("tokenizer.ggml.merges");
        if (!mv) bad_key("tokenizer.ggml.merges", "missing (a gpt2 tokenizer needs its merges)");
        if (mv->type() != gguf::ValueType::ARRAY || mv->as_array().elem_type != gguf::ValueType::STRING)
            bad_key("tokenizer.ggml.merges", "expected an array of strings");
        const auto& items = mv->as_array().items;
        if (items.size() > 0x7FFFFFFF) bad_key("tokenizer.ggml.merges", "too many merges");

        merges_.reserve(items.size() + items.size() / 2);
        std::string joined;
        for (size_t rank = 0; rank < items.size(); ++rank) {
            const std::string& m = items[rank].as_string();
            const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
            if (sp == std::string::npos) continue;  // not "left right": unusable, as in llama.cpp
            const std::string_view left = std::string_view(m).substr(0, sp);
            const std::string_view right = std::string_view(m).substr(sp + 1);
            const int32_t a = symbol(left), b = symbol(right);
            joined.assign(left);
            joined.append(right);
            const int32_t r = symbol(joined);
            merges_.emplace(key(a, b), Merge{static_cast<int32_t>(rank), r});  // the first rank wins
        }
        for (int b = 0; b < 256; ++b) byte_sym_[b] = symbol(byte_to_utf8(static_cast<uint8_t>(b)));
    }

    std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const override {
        std::vector<TokenId> out;
        if (add_special && v_.add_bos) out.push_back(v_.bos);
        Work w;
        for (const Fragment& fr : v_.partition(text, parse_special)) {
            if (fr.token >= 0) {
                out.push_back(fr.token);
                continue;
            }
            for (std::string_view piece : pre_.split(text.substr(fr.begin, fr.end - fr.begin))) encode_piece(piece, out, w);
        }
        if (add_special && v_.add_eos) out.push_back(v_.eos);
        return out;
    }

    std::string token_to_piece(TokenId id, bool render_special) const override {
        std::string out;
        if (!v_.valid(id) || special_piece(id, render_special, out)) return out;
        const std::string& t = v_.text[static_cast<size_t>(id)];
        unsigned hex = 0;
        if (v_.type[static_cast<size_t>(id)] == TokenType::Byte && t.size() == 6 && std::sscanf(t.c_str(), "<0x%2X>", &hex) == 1)
            return std::string(1, static_cast<char>(hex));
        out.reserve(t.size());
        for (size_t i = 0; i < t.size();) {
            uint32_t cpt = 0;
            const size_t len = utf8_decode(t, i, cpt);
            if (len == 0) {  // not UTF-8: keep the byte
                out.push_back(t[i++]);
                continue;
            }
            const int b = cpt_to_byte(cpt);
            if (b >= 0)
                out.push_back(static_cast<char>(b));
            else
                out.append(t, i, len);  // outside the byte map: the character itself
            i += len;
        }
        return out;
    }

private:
    struct Merge {
        int32_t rank;
        int32_t result;  // symbol id of the merged text
    };
    struct Symbol {
        int prev, next;
        int32_t id;  // symbol id, -1 when the byte's character is unknown
        uint32_t begin, end;  // raw bytes of the piece it covers
    };
    struct Pair {
        int32_t rank;
        int left, right;
        int32_t left_id, right_id;
        bool operator>(const Pair& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
    };
    struct Work {  // reused across pieces of one encode() call
        std::vector<Symbol> syms;
        std::vector<Pair> heap;
        std::string encoded;
    };

    static uint64_t key(int32_t a, int32_t b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }

    // The symbol id of a string: its vocabulary id, else an id past n_vocab (created on demand).
    int32_t symbol(std::string_view s) {
        if (const TokenId id = v_.find(s); id >= 0) return id;
        if (const auto it = extra_index_.find(std::string(s)); it != extra_index_.end()) return it->second;
        const int32_t id = v_.size() + static_cast<int32_t>(extra_index_.size());
        extra_index_.emplace(std::string(s), id);
        return id;
    }

    void push_pair(Work& w, int left, int right) const {
        if (left < 0 || right < 0) return;
        const int32_t a = w.syms[left].id, b = w.syms[right].id;
        if (a < 0 || b < 0) return;
        const auto it = merges_.find(key(a, b));
        if (it == merges_.end()) return;
        w.heap.push_back({it->second.rank, left, right, a, b});
        std::push_heap(w.heap.begin(), w.heap.end(), std::greater<>());
    }

    void encode_piece(std::string_view piece, std::vector<TokenId>& out, Work& w) const {
        if (piece.empty()) return;
        if (ignore_merges_) {
            byte_encode(piece, w.encoded);
            if (const TokenId id = v_.find(w.encoded); id >= 0) {
                out.push_back(id);
                return;
            }
        }
        auto& syms = w.syms;
        syms.clear();
        const int n = static_cast<int>(piece.size());
        for (int i = 0; i < n; ++i)
            syms.push_back({i - 1, i + 1 == n ? -1 : i + 1, byte_sym_[static_cast<uint8_t>(piece[i])],
                            static_cast<uint32_t>(i), static_cast<uint32_t>(i + 1)});
        w.heap.clear();
        for (int i = 1; i < n; ++i) push_pair(w, i - 1, i);
        while (!w.heap.empty()) {
            std::pop_heap(w.heap.begin(), w.heap.end(), std::greater<>());
            const Pair p = w.heap.back();
            w.heap.pop_back();
            Symbol& l = syms[p.left];
            Symbol& r = syms[p.right];
            // Stale when either side has changed since the pair was queued (a symbol only
            // changes by absorbing its right neighbour or being absorbed by its left one).
            if (l.id != p.left_id || r.id != p.right_id || l.end != r.begin || l.end == l.begin || r.end == r.begin)
                continue;
            l.id = merges_.find(key(p.left_id, p.right_id))->second.result;
            l.end = r.end;
            r.end = r.begin;  // emptied
            r.id = -2;
            l.next = r.next;
            if (r.next >= 0) syms[r.next].prev = p.left;
            push_pair(w, l.prev, p.left);
            push_pair(w, p.left, l.next);
        }
        for (int i = 0; i != -1; i = syms[i].next) {
            const Symbol& s = syms[i];
            if (s.id >= 0 && s.id < v_.size()) {
                out.push_back(s.id);
                continue;
            }
            // Not a vocabulary token (a malformed vocabulary): fall back to its bytes' tokens.
            for (uint32_t k = s.begin; k < s.end; ++k) {
                const int32_t b = byte_sym_[static_cast<uint8_t>(piece[k])];
                if (b >= 0 && b < v_.size()) out.push_back(b);
            }
        }
    }

    PreTokenizer pre_;
    bool ignore_merges_ = false;
    std::unordered_map<uint64_t, Merge> merges_;
    std::unordered_map<std::string, int32_t> extra_index_;  // merge strings outside the vocabulary
    int32_t byte_sym_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe(Vocab v, const gguf::File& f) { return std::make_unique<BpeTokenizer>(std::move(v), f); }

}  // namespace hearth::tok
