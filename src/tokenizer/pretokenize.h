// Internal: byte-level BPE pre-tokenizers. tokenizer.ggml.pre names a list of PCRE2 patterns
// applied one after the other: each splits every piece the previous one produced into its
// matches and the text between them (both kept), as llama.cpp's unicode_regex_split does.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace hearth::tok {

struct PreTokenizerSpec {
    std::vector<const char*> patterns;
    bool ignore_merges = false;  // a piece that is a whole token is emitted as is (Llama 3)
};

// The spec for a tokenizer.ggml.pre value; throws std::runtime_error listing the supported
// names when it is unknown. "" means "default", as in llama.cpp.
PreTokenizerSpec pre_tokenizer_spec(const std::string& pre);
// Every accepted tokenizer.ggml.pre value, for messages and tests.
const std::vector<std::string>& supported_pre_tokenizers();

class PreTokenizer {
public:
    explicit PreTokenizer(const PreTokenizerSpec& spec);
    // The pieces of `text`, in order, covering it exactly.
    std::vector<std::string_view> split(std::string_view text) const;

private:
    std::vector<Regex> regexes_;
};

}  // namespace hearth::tok
