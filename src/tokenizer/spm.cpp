// SentencePiece-style BPE (tokenizer.ggml.model = "llama"), as llama.cpp's llm_tokenizer_spm:
// start from UTF-8 characters, repeatedly merge the adjacent pair whose concatenation is the
// vocabulary token with the highest score (ties: leftmost), then emit each symbol's token or,
// when it is not in the vocabulary, its bytes as <0xXX> tokens.
#include <cstdio>
#include <queue>
#include <string>
#include <vector>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace hearth::tok {

namespace {

constexpr std::string_view kSpace = kSpaceMarker;

class SpmTokenizer final : public VocabTokenizer {
public:
    explicit SpmTokenizer(Vocab v) : VocabTokenizer(std::move(v)) {
        for (int b = 0; b < 256; ++b) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "<0x%02X>", b);
            TokenId id = v_.find(hex);
            if (id < 0) id = v_.find(std::string(1, static_cast<char>(b)));
            byte_token_[b] = id >= 0 ? id : v_.unk;
        }
    }

    std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const override {
        std::vector<TokenId> out;
        if (add_special && v_.add_bos) out.push_back(v_.bos);
        bool prev_special = true;  // the text's start counts as after a special token: space prefix
        std::string buf;
        for (const Fragment& fr : v_.partition(text, parse_special)) {
            if (fr.token >= 0) {
                out.push_back(fr.token);
                prev_special = true;
                continue;
            }
            buf.clear();
            if (v_.add_space_prefix && prev_special) buf += kSpace;
            for (size_t i = fr.begin; i < fr.end; ++i) {
                if (text[i] == ' ')
                    buf += kSpace;
                else
                    buf.push_back(text[i]);
            }
            tokenize(buf, out);
            prev_special = false;
        }
        if (add_special && v_.add_eos) out.push_back(v_.eos);
        return out;
    }

    std::string token_to_piece(TokenId id, bool render_special) const override {
        std::string out;
        if (!v_.valid(id) || special_piece(id, render_special, out)) return out;
        const std::string& t = v_.text[static_cast<size_t>(id)];
        if (v_.type[static_cast<size_t>(id)] == TokenType::Byte) {
            unsigned b = 0;
            if (t.size() == 6 && std::sscanf(t.c_str(), "<0x%2X>", &b) == 1) return std::string(1, static_cast<char>(b));
            return t;
        }
        append_marker_as_space(t, out);
        return out;
    }

private:
    struct Symbol {
        int prev, next;
        size_t off, n;  // bytes of the text; n == 0 once merged into its left neighbour
    };
    struct Bigram {
        int left, right;
        float score;
        size_t size;
    };
    struct Lower {  // priority: higher score first, then the leftmost pair
        bool operator()(const Bigram& a, const Bigram& b) const {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };
    using Queue = std::priority_queue<Bigram, std::vector<Bigram>, Lower>;

    void try_add(const std::string& s, const std::vector<Symbol>& syms, int left, int right, Queue& q) const {
        if (left < 0 || right < 0) return;
        const size_t len = syms[left].n + syms[right].n;
        const TokenId id = v_.find(std::string_view(s).substr(syms[left].off, len));
        if (id < 0) return;
        q.push({left, right, v_.score[static_cast<size_t>(id)], len});
    }

    void tokenize(const std::string& s, std::vector<TokenId>& out) const {
        if (s.empty()) return;
        std::vector<Symbol> syms;
        syms.reserve(s.size());
        for (size_t off = 0; off < s.size();) {
            const size_t n = std::min(utf8_len_from_lead(static_cast<uint8_t>(s[off])), s.size() - off);
            const int idx = static_cast<int>(syms.size());
            syms.push_back({idx - 1, off + n == s.size() ? -1 : idx + 1, off, n});
            off += n;
        }
        Queue q;
        for (int i = 1; i < static_cast<int>(syms.size()); ++i) try_add(s, syms, i - 1, i, q);
        while (!q.empty()) {
            const Bigram b = q.top();
            q.pop();
            Symbol& l = syms[b.left];
            Symbol& r = syms[b.right];
            if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) syms[r.next].prev = b.left;
            try_add(s, syms, l.prev, b.left, q);
            try_add(s, syms, b.left, l.next, q);
        }
        for (int i = 0; i != -1; i = syms[i].next) {
            const Symbol& sym = syms[i];
            const std::string_view piece = std::string_view(s).substr(sym.off, sym.n);
            const TokenId id = v_.find(piece);
            if (id >= 0) {
                out.push_back(id);
                continue;
            }
            for (char c : piece) {  // byte fallback
                const TokenId bt = byte_token_[static_cast<uint8_t>(c)];
                if (bt >= 0) out.push_back(bt);
            }
        }
    }

    TokenId byte_token_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm(Vocab v) { return std::make_unique<SpmTokenizer>(std::move(v)); }

}  // namespace hearth::tok
