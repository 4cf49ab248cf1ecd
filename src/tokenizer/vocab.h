// Internal: the vocabulary shared by the three tokenizer models, read and validated from a
// GGUF's tokenizer.ggml.* keys, plus what all of them do the same way: special ids, EOG,
// the split of a text around special tokens (llama.cpp's tokenizer_st_partition), and the
// accessors of the public Tokenizer interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hearth::gguf {
class File;
}

namespace hearth::tok {

// Per-token flags beyond the type (llama.cpp sets them for a few model families by name).
enum StripFlags : uint8_t { kLstrip = 1, kRstrip = 2 };

struct Fragment {
    size_t begin = 0, end = 0;  // byte range of raw text (when token < 0)
    TokenId token = -1;         // a special token matched in the text
};

struct Vocab {
    Vocab() = default;
    Vocab(Vocab&&) = default;  // `index` views stay valid: the strings' storage does not move
    Vocab& operator=(Vocab&&) = default;
    Vocab(const Vocab&) = delete;
    Vocab& operator=(const Vocab&) = delete;

    std::string model;  // tokenizer.ggml.model
    std::string pre;    // tokenizer.ggml.pre, "" when absent
    std::vector<std::string> text;
    std::vector<TokenType> type;  // effective type (EOG-looking tokens promoted to Control)
    std::vector<float> score;
    std::vector<uint8_t> strip;  // StripFlags
    std::unordered_map<std::string_view, TokenId> index;  // views into `text`
    size_t max_token_len = 0;

    TokenId bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
    bool add_bos = false, add_eos = false, add_space_prefix = false;
    std::vector<TokenId> eog;  // sorted

    // Control, user-defined and unknown tokens, longest text first: matched in the text
    // before the model runs (user-defined ones even without parse_special).
    std::vector<TokenId> specials;

    int32_t size() const { return static_cast<int32_t>(text.size()); }
    bool valid(TokenId id) const { return id >= 0 && id < size(); }
    TokenId find(std::string_view s) const {
        const auto it = index.find(s);
        return it == index.end() ? -1 : it->second;
    }

    // Splits `text` into raw fragments and special tokens.
    std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

    // Reads tokens, types, scores and the special ids. Model-specific defaults come from
    // `model` (llama / gpt2 / bert); throws std::runtime_error naming the offending key.
    static Vocab load(const gguf::File& f, const std::string& model);
    // Run by load(): EOT fallback, EOG set, the special-token list and its matcher.
    void finish(const std::string& general_name);

private:
    // A byte trie over the special tokens' texts, used to find cheaply which of them occur in a
    // text at all before the (per token) partition passes.
    struct Trie {
        std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child
        std::vector<int32_t> node_of;                 // per entry of `specials`: its end node
        int32_t n_nodes = 1;
    };
    std::shared_ptr<const Trie> trie_;
};

// The Tokenizer accessors every model shares.
class VocabTokenizer : public Tokenizer {
public:
    explicit VocabTokenizer(Vocab v) : v_(std::move(v)) {}

    int32_t n_vocab() const override { return v_.size(); }
    const std::string& token_text(TokenId id) const override;
    TokenType token_type(TokenId id) const override;
    TokenId bos() const override { return v_.bos; }
    TokenId eos() const override { return v_.eos; }
    TokenId eot() const override { return v_.eot; }
    bool add_bos() const override { return v_.add_bos; }
    bool add_eos() const override { return v_.add_eos; }
    bool is_eog(TokenId id) const override;
    std::string model_name() const override { return v_.model; }
    TokenId unk() const override { return v_.unk; }
    TokenId sep() const override { return v_.sep; }
    TokenId pad() const override { return v_.pad; }
    std::string pre_name() const override { return v_.pre; }
    TokenId find_token(std::string_view text) const override { return v_.find(text); }
    bool add_space_prefix() const override { return v_.add_space_prefix; }

    const Vocab& vocab() const { return v_; }

protected:
    // Control and unknown tokens render as "" unless render_special; user-defined ones as
    // their text. Returns true (and sets `out`) when the type decided the piece.
    bool special_piece(TokenId id, bool render_special, std::string& out) const;

    Vocab v_;
};

std::unique_ptr<Tokenizer> make_spm(Vocab v);
std::unique_ptr<Tokenizer> make_bpe(Vocab v, const gguf::File& f);
std::unique_ptr<Tokenizer> make_wpm(Vocab v, const gguf::File& f);

// Typed metadata readers that fail with a message naming the key.
bool read_bool(const gguf::File& f, const char* key, bool fallback);
// A token id key: -1 when absent or 0xFFFFFFFF / -1 ("none"); throws when out of range.
TokenId read_token_id(const gguf::File& f, const char* key, int32_t n_vocab, TokenId fallback);
[[noreturn]] void bad_key(const std::string& key, const std::string& why);

}  // namespace hearth::tok
