#include "tokenizer/pretokenize.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace hearth::tok {

namespace {

// The patterns are those of each model's Hugging Face tokenizer.json (the ones llama.cpp's
// llama-vocab.cpp reproduces, in their original form: PCRE2 handles (?i:...), \p{..}{1,3},
// possessive quantifiers and the (?!\S) lookahead itself).

// GPT-2's pattern.
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3 (tiktoken cl100k style): digits in groups of up to three.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3 but single digits.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek LLM: a Latin/Greek/Cyrillic... cased-letter class, written out as in its
// tokenizer.json, then ASCII/fullwidth punctuation, trailing space, CJK, digits.
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseekPunct = R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr const char* kDeepseekV3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBloom = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kSeedCoder =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBailing =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";

struct Entry {
    std::vector<std::string> names;
    PreTokenizerSpec spec;
};

const std::vector<Entry>& table() {
    static const std::vector<Entry> t = {
        {{"default"}, {{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, false}},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"}, {{kLlama3}, true}},
        {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {{kLlama3}, false}},
        {{"deepseek-llm"}, {{"[\\r\\n]", kDeepseekLetters, kDeepseekPunct, R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"}, false}},
        {{"deepseek-coder"}, {{"[\\r\\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}, false}},
        {{"deepseek-v3"}, {{R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepseekV3}, false}},
        {{"falcon"}, {{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, false}},
        {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}, {{R"(\p{N})", kGpt2}, false}},
        {{"gpt-2", "gpt2", "mpt", "olmo", "jais", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat"},
         {{kGpt2}, false}},
        {{"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez"}, {{kQwen2}, false}},
        {{"poro-chat", "bloom", "gpt3-finnish"}, {{kBloom}, false}},
        {{"viking"}, {{kBloom, R"(\p{N})"}, false}},
        {{"tekken"}, {{kTekken}, true}},
        {{"chameleon"},
         {{"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"(\p{N})",
           R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
          false}},
        {{"gpt-4o", "llama4"}, {{kGpt4o}, false}},
        {{"seed-coder"}, {{kSeedCoder}, false}},
        {{"bailingmoe"}, {{kBailing}, false}},
    };
    return t;
}

}  // namespace

const std::vector<std::string>& supported_pre_tokenizers() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        for (const Entry& e : table())
            for (const std::string& n : e.names) out.push_back(n);
        return out;
    }();
    return names;
}

PreTokenizerSpec pre_tokenizer_spec(const std::string& pre) {
    const std::string name = pre.empty() ? "default" : pre;
    for (const Entry& e : table())
        for (const std::string& n : e.names)
            if (n == name) return e.spec;
    std::string list;
    for (const std::string& n : supported_pre_tokenizers()) list += (list.empty() ? "" : ", ") + n;
    throw std::runtime_error("tokenizer: unsupported tokenizer.ggml.pre '" + pre + "' (supported: " + list + ")");
}

PreTokenizer::PreTokenizer(const PreTokenizerSpec& spec) {
    regexes_.reserve(spec.patterns.size());
    for (const char* p : spec.patterns) regexes_.emplace_back(p);
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
    std::vector<std::string_view> pieces;
    if (text.empty()) return pieces;
    pieces.push_back(text);
    std::vector<std::string_view> next;
    for (const Regex& re : regexes_) {
        Regex::Matcher m(re);
        next.clear();
        next.reserve(pieces.size() * 2);
        for (std::string_view piece : pieces) {
            size_t pos = 0;   // where the next search starts
            size_t done = 0;  // everything before this is emitted
            Regex::Match mt;
            while (pos < piece.size() && m.find(piece, pos, mt)) {
                if (mt.end == mt.begin) {  // an empty match splits nothing: step over one character
                    if (mt.begin >= piece.size()) break;
                    pos = std::min(piece.size(), mt.begin + utf8_len_from_lead(static_cast<uint8_t>(piece[mt.begin])));
                    continue;
                }
                if (mt.begin > done) next.push_back(piece.substr(done, mt.begin - done));
                next.push_back(piece.substr(mt.begin, mt.end - mt.begin));
                done = pos = mt.end;
            }
            if (done < piece.size()) next.push_back(piece.substr(done));
        }
        pieces.swap(next);
    }
    return pieces;
}

}  // namespace hearth::tok
