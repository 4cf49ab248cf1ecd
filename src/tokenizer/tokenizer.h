// tokenizer/ owns text <-> token ids, built from a GGUF's tokenizer.* metadata: SPM
// (tokenizer.ggml.model = llama), byte-level BPE (gpt2) with the pre-tokenizer chosen by
// tokenizer.ggml.pre, and WordPiece (bert). Special tokens, BOS/EOS/EOT, and a streaming
// detokenizer that never emits a partial UTF-8 sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::gguf {
class File;
}

namespace hearth {

using TokenId = int32_t;

enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Builds the tokenizer a GGUF describes. Throws std::runtime_error naming the missing or
    // malformed key, or listing the supported tokenizer.ggml.model / pre values.
    static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& f);

    // add_special: add BOS/EOS (or CLS/SEP) as the vocabulary's metadata says.
    // parse_special: match control/user-defined token text in `text` as those tokens.
    virtual std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const = 0;

    // The bytes a token stands for (byte tokens give their byte, SPM's U+2581 becomes a
    // space). Control tokens give "" unless render_special.
    virtual std::string token_to_piece(TokenId id, bool render_special = false) const = 0;
    // The pieces joined (raw bytes, not validated). With add_space_prefix() the first piece
    // loses one leading space, so decode(encode(t, false, false)) == t where no normalization
    // is lossy (BPE, SPM; not BERT, which lowercases).
    std::string decode(const std::vector<TokenId>& ids, bool render_special = false) const;

    virtual int32_t n_vocab() const = 0;
    virtual const std::string& token_text(TokenId id) const = 0;  // as stored in the vocabulary
    virtual TokenType token_type(TokenId id) const = 0;
    virtual TokenId bos() const = 0;  // -1 when none
    virtual TokenId eos() const = 0;
    virtual TokenId eot() const = 0;
    virtual bool add_bos() const = 0;
    virtual bool add_eos() const = 0;
    // End of generation: EOS, EOT, or another end token the vocabulary declares.
    virtual bool is_eog(TokenId id) const = 0;
    virtual std::string model_name() const = 0;  // "llama", "gpt2", "bert"

    // ---- Additions (with defaults, so test doubles need not implement them).
    virtual TokenId unk() const { return -1; }
    virtual TokenId sep() const { return -1; }  // BERT's [SEP]
    virtual TokenId pad() const { return -1; }
    virtual std::string pre_name() const { return ""; }  // tokenizer.ggml.pre ("" when absent)
    // The id whose stored text is exactly `text`; -1 when there is none.
    virtual TokenId find_token(std::string_view /*text*/) const { return -1; }
    // True when encode() puts a space before the text (SPM's add_space_prefix); decode() then
    // drops one leading space from the first token's piece, as llama.cpp's detokenizer does.
    virtual bool add_space_prefix() const { return false; }
};

// Turns a stream of token ids into text, holding back an incomplete UTF-8 sequence until
// the tokens that complete it arrive.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tok, bool render_special = false) : tok_(tok), special_(render_special) {}
    // The text that is now complete (possibly ""). Output is always valid UTF-8: an incomplete
    // sequence at the end is held back, ill-formed bytes before it become U+FFFD.
    std::string push(TokenId id);
    std::string flush();  // whatever is left (invalid bytes replaced by U+FFFD)

private:
    const Tokenizer& tok_;
    bool special_;
    std::string pending_;
};

}  // namespace hearth
