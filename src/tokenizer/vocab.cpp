#include "tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "gguf/gguf.h"

namespace hearth::tok {

using gguf::ValueType;

void bad_key(const std::string& key, const std::string& why) {
    throw std::runtime_error("tokenizer: metadata key '" + key + "': " + why);
}

namespace {

const gguf::Array* read_array(const gguf::File& f, const char* key, std::initializer_list<ValueType> elems,
                              bool required) {
    const gguf::Value* v = f.find(key);
    if (!v) {
        if (required) bad_key(key, "missing");
        return nullptr;
    }
    if (v->type() != ValueType::ARRAY)
        bad_key(key, std::string("expected an array, found ") + gguf::value_type_name(v->type()));
    const gguf::Array& a = v->as_array();
    if (std::find(elems.begin(), elems.end(), a.elem_type) == elems.end())
        bad_key(key, std::string("unexpected array element type ") + gguf::value_type_name(a.elem_type));
    return &a;
}

TokenType to_type(int64_t t) {
    return t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::Undefined;
}

}  // namespace

bool read_bool(const gguf::File& f, const char* key, bool fallback) {
    const gguf::Value* v = f.find(key);
    if (!v) return fallback;
    if (v->type() != ValueType::BOOL) bad_key(key, std::string("expected bool, found ") + gguf::value_type_name(v->type()));
    return v->as_bool();
}

TokenId read_token_id(const gguf::File& f, const char* key, int32_t n_vocab, TokenId fallback) {
    const gguf::Value* v = f.find(key);
    if (!v) return fallback < n_vocab ? fallback : -1;
    if (!v->is_integer()) bad_key(key, std::string("expected an integer token id, found ") + gguf::value_type_name(v->type()));
    int64_t id = 0;
    if (v->type() == ValueType::UINT64 || v->type() == ValueType::UINT32) {
        const uint64_t u = v->as_u64();
        if (u == 0xFFFFFFFFull || u == ~0ull) return -1;  // "none"
        if (u >= static_cast<uint64_t>(n_vocab)) bad_key(key, "token id " + std::to_string(u) + " out of range (n_vocab " + std::to_string(n_vocab) + ")");
        return static_cast<TokenId>(u);
    }
    id = v->as_i64();
    if (id == -1) return -1;
    if (id < 0 || id >= n_vocab) bad_key(key, "token id " + std::to_string(id) + " out of range (n_vocab " + std::to_string(n_vocab) + ")");
    return static_cast<TokenId>(id);
}

Vocab Vocab::load(const gguf::File& f, const std::string& model) {
    Vocab v;
    v.model = model;
    if (const gguf::Value* p = f.find("tokenizer.ggml.pre")) {
        if (p->type() != ValueType::STRING) bad_key("tokenizer.ggml.pre", "expected a string");
        v.pre = p->as_string();
    }

    const gguf::Array* tokens = read_array(f, "tokenizer.ggml.tokens", {ValueType::STRING}, true);
    const size_t n = tokens->items.size();
    if (n == 0) bad_key("tokenizer.ggml.tokens", "empty vocabulary");
    if (n > 0x7FFFFFFF) bad_key("tokenizer.ggml.tokens", "too many tokens");
    const gguf::Array* types = read_array(
        f, "tokenizer.ggml.token_type",
        {ValueType::INT32, ValueType::UINT32, ValueType::INT8, ValueType::UINT8, ValueType::INT16, ValueType::UINT16,
         ValueType::INT64, ValueType::UINT64},
        false);
    if (types && types->items.size() != n)
        bad_key("tokenizer.ggml.token_type", std::to_string(types->items.size()) + " entries for " + std::to_string(n) + " tokens");
    const gguf::Array* scores = read_array(f, "tokenizer.ggml.scores", {ValueType::FLOAT32, ValueType::FLOAT64, ValueType::INT32}, false);
    if (scores && scores->items.size() != n)
        bad_key("tokenizer.ggml.scores", std::to_string(scores->items.size()) + " entries for " + std::to_string(n) + " tokens");

    v.text.resize(n);
    v.type.assign(n, TokenType::Normal);
    v.score.assign(n, 0.0f);
    v.strip.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
        v.text[i] = tokens->items[i].as_string();
        v.max_token_len = std::max(v.max_token_len, v.text[i].size());
        if (types) {
            const gguf::Value& t = types->items[i];
            v.type[i] = to_type(t.type() == ValueType::UINT64 ? static_cast<int64_t>(std::min<uint64_t>(t.as_u64(), 1000)) : t.as_i64());
        }
        if (scores) v.score[i] = static_cast<float>(scores->items[i].as_f64());
    }
    v.index.reserve(n + n / 4);
    for (size_t i = 0; i < n; ++i) {
        if (v.text[i].empty()) continue;
        v.index[v.text[i]] = static_cast<TokenId>(i);  // a duplicate text: the later id wins
    }

    const int32_t nv = static_cast<int32_t>(n);
    // Model defaults as in llama.cpp (kept only when in range).
    TokenId d_bos = -1, d_eos = -1, d_unk = -1, d_sep = -1, d_pad = -1, d_mask = -1;
    if (model == "llama") {
        d_bos = 1, d_eos = 2, d_unk = 0;
    } else if (model == "bert") {
        d_bos = 101, d_unk = 100, d_sep = 102, d_pad = 0, d_mask = 103;
    }
    if (model == "bert") d_bos = read_token_id(f, "tokenizer.ggml.cls_token_id", nv, d_bos);  // [CLS] is BERT's BOS
    v.bos = read_token_id(f, "tokenizer.ggml.bos_token_id", nv, d_bos);
    v.eos = read_token_id(f, "tokenizer.ggml.eos_token_id", nv, d_eos);
    v.eot = read_token_id(f, "tokenizer.ggml.eot_token_id", nv, -1);
    v.eom = read_token_id(f, "tokenizer.ggml.eom_token_id", nv, -1);
    v.unk = read_token_id(f, "tokenizer.ggml.unknown_token_id", nv, d_unk);
    v.sep = read_token_id(f, "tokenizer.ggml.seperator_token_id", nv, d_sep);
    v.pad = read_token_id(f, "tokenizer.ggml.padding_token_id", nv, d_pad);
    v.mask = read_token_id(f, "tokenizer.ggml.mask_token_id", nv, d_mask);

    // add_bos / add_eos defaults: SPM and BERT add BOS ([CLS]); BPE only for Llama 3 style pre.
    bool d_add_bos = model == "llama" || model == "bert";
    if (model == "gpt2" && (v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe" || v.pre == "falcon3" ||
                            v.pre == "pixtral" || v.pre == "tekken" || v.pre == "chameleon"))
        d_add_bos = true;
    v.add_bos = read_bool(f, "tokenizer.ggml.add_bos_token", d_add_bos);
    if (model == "bert") {
        // BERT appends [SEP]; that is its "EOS" here.
        v.add_eos = read_bool(f, "tokenizer.ggml.add_sep_token", read_bool(f, "tokenizer.ggml.add_eos_token", true));
        if (v.eos < 0) v.eos = v.sep;
    } else {
        v.add_eos = read_bool(f, "tokenizer.ggml.add_eos_token", false);
    }
    // Adding a token the vocabulary does not name is impossible: turn the flag off instead.
    if (v.bos < 0) v.add_bos = false;
    if (v.eos < 0) v.add_eos = false;
    v.add_space_prefix = model == "llama" ? read_bool(f, "tokenizer.ggml.add_space_prefix", true) : false;

    std::string name;
    if (const gguf::Value* g = f.find("general.name"); g && g->type() == ValueType::STRING) name = g->as_string();
    v.finish(name);
    return v;
}

void Vocab::finish(const std::string& general_name) {
    auto promote = [&](TokenId id) {
        if (type[id] != TokenType::Control) type[id] = TokenType::Control;
    };
    // EOT by its text when the metadata does not name it (llama.cpp's list, in priority order).
    static const char* const kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|end_of_text|>", "<EOT>", "_<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
    if (eot < 0) {
        for (const char* t : kEotTexts) {
            if (const TokenId id = find(t); id >= 0) {
                eot = id;
                promote(id);
                break;
            }
        }
    }
    if (eom < 0) {
        if (const TokenId id = find("<|eom_id|>"); id >= 0) {
            eom = id;
            promote(id);
        }
    }
    // End of generation: EOS, EOT, EOM, and the tokens that look like an end of turn.
    static const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                            "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>"};
    eog.clear();
    for (const char* t : kEogTexts) {
        if (const TokenId id = find(t); id >= 0) {
            eog.push_back(id);
            promote(id);
        }
    }
    for (TokenId id : {eos, eot, eom})
        if (id >= 0) eog.push_back(id);
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());

    specials.clear();
    for (TokenId id = 0; id < size(); ++id) {
        const TokenType t = type[id];
        if ((t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown) && !text[id].empty())
            specials.push_back(id);
    }
    std::stable_sort(specials.begin(), specials.end(),
                     [&](TokenId a, TokenId b) { return text[a].size() > text[b].size(); });

    // Phi-3 (llama.cpp keys this on general.name): special tokens eat the whitespace after them.
    std::string lname = general_name;
    for (char& c : lname) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lname.find("phi-3") != std::string::npos || lname.find("phi3") != std::string::npos) {
        for (TokenId id : specials) strip[id] |= kRstrip;
        if (const TokenId id = find("</s>"); id >= 0) strip[id] |= kRstrip;
        for (const char* t : {"<unk>", "<s>", "<|endoftext|>"})
            if (const TokenId id = find(t); id >= 0) strip[id] &= static_cast<uint8_t>(~kRstrip);
    }

    auto trie = std::make_shared<Trie>();
    trie->node_of.reserve(specials.size());
    for (TokenId id : specials) {
        int32_t node = 0;
        for (char c : text[id]) {
            const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
            auto [it, added] = trie->edges.emplace(key, trie->n_nodes);
            if (added) ++trie->n_nodes;
            node = it->second;
        }
        trie->node_of.push_back(node);
    }
    trie_ = std::move(trie);
}

std::vector<Fragment> Vocab::partition(std::string_view s, bool parse_special) const {
    std::vector<Fragment> frags;
    if (s.empty()) return frags;
    frags.push_back({0, s.size(), -1});
    if (specials.empty() || !trie_) return frags;

    // Which special texts occur anywhere? (A fragment is a substring, so no others can match.)
    bool any_allowed = parse_special;
    if (!any_allowed)
        for (TokenId id : specials)
            if (type[id] == TokenType::UserDefined) {
                any_allowed = true;
                break;
            }
    if (!any_allowed) return frags;
    std::vector<char> seen(static_cast<size_t>(trie_->n_nodes), 0);
    for (size_t i = 0; i < s.size(); ++i) {
        int32_t node = 0;
        for (size_t j = i; j < s.size(); ++j) {
            const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(s[j]);
            const auto it = trie_->edges.find(key);
            if (it == trie_->edges.end()) break;
            node = it->second;
            seen[static_cast<size_t>(node)] = 1;
        }
    }

    // llama.cpp's order: token by token, longest first; each one splits every raw fragment at
    // all of its (non-overlapping, leftmost-first) occurrences.
    std::vector<Fragment> next;
    auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    for (size_t k = 0; k < specials.size(); ++k) {
        const TokenId id = specials[k];
        if (!seen[static_cast<size_t>(trie_->node_of[k])]) continue;
        if (!parse_special && type[id] != TokenType::UserDefined) continue;
        const std::string_view tok = text[id];
        next.clear();
        bool changed = false;
        for (const Fragment& fr : frags) {
            if (fr.token >= 0) {
                next.push_back(fr);
                continue;
            }
            size_t b = fr.begin;
            const size_t e = fr.end;
            while (b < e) {
                const size_t m = s.substr(0, e).find(tok, b);
                if (m == std::string_view::npos) break;
                changed = true;
                size_t left_end = m;
                if (strip[id] & kLstrip)
                    while (left_end > b && is_space(s[left_end - 1])) --left_end;
                if (left_end > b) next.push_back({b, left_end, -1});
                next.push_back({0, 0, id});
                b = m + tok.size();
                if (strip[id] & kRstrip)
                    while (b < e && is_space(s[b])) ++b;
            }
            if (b < e) next.push_back({b, e, -1});
        }
        if (changed) frags.swap(next);
    }
    return frags;
}

// ---- VocabTokenizer

const std::string& VocabTokenizer::token_text(TokenId id) const {
    if (!v_.valid(id)) throw std::out_of_range("tokenizer: token id " + std::to_string(id) + " out of range");
    return v_.text[static_cast<size_t>(id)];
}

TokenType VocabTokenizer::token_type(TokenId id) const {
    if (!v_.valid(id)) throw std::out_of_range("tokenizer: token id " + std::to_string(id) + " out of range");
    return v_.type[static_cast<size_t>(id)];
}

bool VocabTokenizer::is_eog(TokenId id) const { return std::binary_search(v_.eog.begin(), v_.eog.end(), id); }

bool VocabTokenizer::special_piece(TokenId id, bool render_special, std::string& out) const {
    switch (v_.type[static_cast<size_t>(id)]) {
        case TokenType::Control:
        case TokenType::Unknown:
            out = render_special ? v_.text[static_cast<size_t>(id)] : std::string();
            return true;
        case TokenType::UserDefined:
            out = v_.text[static_cast<size_t>(id)];
            return true;
        case TokenType::Unused:
        case TokenType::Undefined:
            out.clear();  // llama.cpp renders these as nothing
            return true;
        default:
            return false;
    }
}

}  // namespace hearth::tok
