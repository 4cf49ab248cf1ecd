// WordPiece (tokenizer.ggml.model = "bert") in llama.cpp's form: the GGUF stores word-initial
// pieces with a U+2581 prefix and continuation pieces bare (no "##"). The text is normalized
// like BERT's basic tokenizer (accents stripped via NFD, lowercased, control characters
// dropped), split on whitespace, with punctuation, ASCII symbols and CJK characters each a word
// of their own; then each word is cut greedily into its longest vocabulary pieces, or becomes
// [UNK] as a whole when that fails.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace hearth::tok {

namespace {

constexpr std::string_view kSpace = kSpaceMarker;

// One match per run of same-class characters; the group number is the class.
//   1 whitespace: ends a word          2 control characters, U+FFFD: dropped
//   3 combining marks: dropped (only when stripping accents; otherwise part of words)
//   4 punctuation, ASCII symbols, CJK ideographs: a word each     5 anything else: word text
constexpr const char* kCjk =
    R"(\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F})"
    R"(\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F})";  // BERT's _is_chinese_char ranges
constexpr const char* kPunct = R"(\p{P}!-/:-@\[-`{-~)";

std::string classifier(bool strip_marks) {
    std::string p;
    p += R"((\s+)|((?:[^\s\P{C}]|\x{FFFD})+)|)";
    p += strip_marks ? "(\\p{M}+)|" : "((?!))|";  // group 3 never matches when marks are kept
    p += std::string("([") + kPunct + kCjk + "])|";
    p += std::string(R"(([^\s\p{C}\x{FFFD})") + (strip_marks ? R"(\p{M})" : "") + kPunct + kCjk + "]+)";
    return p;
}

class WpmTokenizer final : public VocabTokenizer {
public:
    WpmTokenizer(Vocab v, const gguf::File& f) : VocabTokenizer(std::move(v)) {
        lowercase_ = read_bool(f, "tokenizer.ggml.normalizer.lowercase", true);
        strip_accents_ = read_bool(f, "tokenizer.ggml.normalizer.strip_accents", lowercase_);
        classes_ = std::make_unique<Regex>(classifier(strip_accents_));
    }

    std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const override {
        std::vector<TokenId> out;
        if (add_special && v_.add_bos) out.push_back(v_.bos);
        for (const Fragment& fr : v_.partition(text, parse_special)) {
            if (fr.token >= 0)
                out.push_back(fr.token);
            else
                for (const std::string& w : words(text.substr(fr.begin, fr.end - fr.begin))) word_pieces(w, out);
        }
        if (add_special && v_.add_eos) out.push_back(v_.eos);  // [SEP]
        return out;
    }

    std::string token_to_piece(TokenId id, bool render_special) const override {
        std::string out;
        if (!v_.valid(id) || special_piece(id, render_special, out)) return out;
        const std::string& t = v_.text[static_cast<size_t>(id)];
        append_marker_as_space(t, out);
        return out;
    }

private:
    std::vector<std::string> words(std::string_view raw) const {
        const std::string clean = utf8_sanitize(raw);
        std::string norm;
        if (strip_accents_) {
            norm.reserve(clean.size());
            for (size_t i = 0; i < clean.size();) {
                uint32_t cpt = 0;
                const size_t len = utf8_decode(clean, i, cpt);  // always > 0: sanitized
                strip_accents_append(norm, cpt);
                i += len;
            }
        } else {
            norm = clean;
        }
        if (lowercase_) norm = utf8_lowercase(norm);

        std::vector<std::string> out(1);
        Regex::Matcher m(*classes_);
        Regex::Match mt;
        size_t pos = 0;
        while (pos < norm.size() && m.find(norm, pos, mt)) {
            if (mt.end == mt.begin) break;  // cannot happen: every alternative consumes
            const std::string_view s = std::string_view(norm).substr(mt.begin, mt.end - mt.begin);
            switch (mt.group) {
                case 1:
                    if (!out.back().empty()) out.emplace_back();
                    break;
                case 4:
                    if (!out.back().empty()) out.emplace_back();
                    out.back() = s;
                    out.emplace_back();
                    break;
                case 5:
                    out.back() += s;
                    break;
                default:  // 2, 3: dropped
                    break;
            }
            pos = mt.end;
        }
        if (out.back().empty()) out.pop_back();
        return out;
    }

    void word_pieces(const std::string& word, std::vector<TokenId>& out) const {
        const std::string w = std::string(kSpace) + word;
        const size_t n = w.size();
        const size_t start = out.size();
        for (size_t i = 0; i < n; ++i) {
            bool found = false;
            for (size_t j = std::min(n, i + v_.max_token_len + 1); j > i; --j) {
                const TokenId id = v_.find(std::string_view(w).substr(i, j - i));
                if (id >= 0) {
                    out.push_back(id);
                    found = true;
                    i = j - 1;
                    break;
                }
            }
            if (!found) {  // the word cannot be covered: [UNK] for all of it
                out.resize(start);
                break;
            }
        }
        if (out.size() == start && v_.unk >= 0) out.push_back(v_.unk);
    }

    bool lowercase_ = true, strip_accents_ = true;
    std::unique_ptr<Regex> classes_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_wpm(Vocab v, const gguf::File& f) { return std::make_unique<WpmTokenizer>(std::move(v), f); }

}  // namespace hearth::tok
