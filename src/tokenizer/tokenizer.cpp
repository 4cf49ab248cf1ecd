// The factory (tokenizer.ggml.model -> SPM / BPE / WordPiece), decode() and StreamDecoder.
#include "tokenizer/tokenizer.h"

#include <stdexcept>

#include "gguf/gguf.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace hearth {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
    const gguf::Value* mv = f.find("tokenizer.ggml.model");
    if (!mv) tok::bad_key("tokenizer.ggml.model", "missing (the file has no tokenizer)");
    if (mv->type() != gguf::ValueType::STRING) tok::bad_key("tokenizer.ggml.model", "expected a string");
    const std::string model = mv->as_string();
    if (model == "llama") return tok::make_spm(tok::Vocab::load(f, model));
    if (model == "gpt2") return tok::make_bpe(tok::Vocab::load(f, model), f);
    if (model == "bert") return tok::make_wpm(tok::Vocab::load(f, model), f);
    tok::bad_key("tokenizer.ggml.model",
                 "unsupported tokenizer model '" + model + "' (supported: llama (SPM), gpt2 (byte-level BPE), bert (WordPiece))");
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
    std::string out;
    bool first = true;
    for (TokenId id : ids) {
        std::string piece = token_to_piece(id, render_special);
        // llama.cpp's detokenizer: the space SPM put before the text goes away again; only the
        // very first token counts (a BOS rendering as "" uses up the chance).
        if (first && add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        first = false;
        out += piece;
    }
    return out;
}

std::string StreamDecoder::push(TokenId id) {
    pending_ += tok_.token_to_piece(id, special_);
    const size_t hold = tok::utf8_incomplete_tail(pending_);
    const size_t ready = pending_.size() - hold;
    if (ready == 0) return {};
    std::string out = tok::utf8_sanitize(std::string_view(pending_).substr(0, ready));
    pending_.erase(0, ready);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out = tok::utf8_sanitize(pending_);
    pending_.clear();
    return out;
}

}  // namespace hearth
