// Tokenizers against llama.cpp's test vectors (shared/vocab), the model references
// (stories260K prompts, BERT inputs), special-token handling, streaming detokenization and
// malformed metadata.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "support/paths.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace hearth {
namespace {

using test::shared_path;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Case {
    std::string text;
    std::vector<TokenId> ids;
};

// shared/README.md: .inp holds the strings, each followed by "\n__ggml_vocab_test__\n";
// .out one line per string with " id" per token.
std::vector<Case> load_cases(const std::string& vocab) {
    const std::string inp = read_file(shared_path("vocab/" + vocab + ".inp"));
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<Case> cases;
    size_t pos = 0;
    while (pos < inp.size()) {
        const size_t end = inp.find(sep, pos);
        if (end == std::string::npos) break;
        cases.push_back({inp.substr(pos, end - pos), {}});
        pos = end + sep.size();
    }
    std::istringstream out(read_file(shared_path("vocab/" + vocab + ".out")));
    std::string line;
    for (Case& c : cases) {
        if (!std::getline(out, line)) throw std::runtime_error("short .out for " + vocab);
        std::istringstream ls(line);
        TokenId id;
        while (ls >> id) c.ids.push_back(id);
    }
    return cases;
}

std::string ids_str(const std::vector<TokenId>& ids) {
    std::string s;
    for (TokenId id : ids) s += " " + std::to_string(id);
    return s;
}

struct Loaded {
    gguf::File file;
    std::unique_ptr<Tokenizer> tok;
};

Loaded load(const std::string& rel) {
    gguf::File f = gguf::File::open(shared_path(rel));
    auto t = Tokenizer::from_gguf(f);
    return {std::move(f), std::move(t)};
}

// Loaded once per test binary: the big vocabularies take a while under the sanitizers.
const Tokenizer& cached(const std::string& rel) {
    static std::map<std::string, Loaded> cache;
    auto it = cache.find(rel);
    if (it == cache.end()) it = cache.emplace(rel, load(rel)).first;
    return *it->second.tok;
}

// ---- llama.cpp's test-tokenizer-0 vectors, all 11 vocabularies

struct VocabParam {
    const char* name;
    bool round_trips;  // decode(encode(text)) == text for every case
};

class VocabVectors : public ::testing::TestWithParam<VocabParam> {};

TEST_P(VocabVectors, MatchesReferenceIds) {
    const std::string vocab = std::string("ggml-vocab-") + GetParam().name + ".gguf";
    const Tokenizer& tok = cached("vocab/" + vocab);
    const std::vector<Case> cases = load_cases(vocab);
    ASSERT_EQ(cases.size(), 46u);
    int pass = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::vector<TokenId> got = tok.encode(cases[i].text, false, false);
        if (got == cases[i].ids) {
            ++pass;
        } else {
            ADD_FAILURE() << vocab << " case " << i << " '" << cases[i].text << "'\n  want" << ids_str(cases[i].ids)
                          << "\n  got " << ids_str(got);
        }
        if (GetParam().round_trips) {
            EXPECT_EQ(tok.decode(got), cases[i].text) << vocab << " case " << i;
        }
    }
    std::printf("[ vectors  ] %-32s %2d/%zu\n", vocab.c_str(), pass, cases.size());
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabVectors,
                         ::testing::Values(VocabParam{"llama-spm", true}, VocabParam{"llama-bpe", true},
                                           VocabParam{"qwen2", true}, VocabParam{"gpt-2", true},
                                           VocabParam{"phi-3", true}, VocabParam{"deepseek-coder", true},
                                           VocabParam{"deepseek-llm", true}, VocabParam{"falcon", true},
                                           VocabParam{"mpt", true}, VocabParam{"starcoder", true},
                                           VocabParam{"bert-bge", false}),
                         [](const auto& info) {
                             std::string n = info.param.name;
                             for (char& c : n)
                                 if (c == '-') c = '_';
                             return n;
                         });

TEST(Tokenizer, LoadsTheQwen2VocabQuickly) {
    // 151,936 tokens and 151,387 merges. Release: well under 300 ms; the bound here is loose
    // so that sanitizer builds pass too.
    const auto t0 = std::chrono::steady_clock::now();
    const gguf::File f = gguf::File::open(shared_path("vocab/ggml-vocab-qwen2.gguf"));
    const auto t1 = std::chrono::steady_clock::now();
    const auto tok = Tokenizer::from_gguf(f);
    const auto t2 = std::chrono::steady_clock::now();
    const double open_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    const double build_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
    std::printf("[ load     ] qwen2: GGUF open %.0f ms, tokenizer build %.0f ms\n", open_ms, build_ms);
    EXPECT_EQ(tok->n_vocab(), 151936);
    EXPECT_LT(build_ms, 10000.0);
}

// Random mixes of ASCII, multi-byte characters, special-token texts, whitespace runs and
// invalid UTF-8: nothing crashes, and byte-level BPE gives the exact bytes back.
TEST(Tokenizer, RandomTextRoundTrips) {
    const std::vector<std::string> parts = {
        "a", "Hello", " world", "  ", "\t", "\n", "\r\n", "   \n ", "123456", "3.14", "'s", "'LL", "!?", "...",
        "caf\xC3\xA9", "\xE6\x88\x91\xE6\x83\xB3", "\xF0\x9F\xA6\x99", "\xD0\xBD\xD0\xB5", "\xE1\x9E\x80\xE1\x9E\xB6",
        "\xE2\x96\x81", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "<s>", "</s>", "<|begin_of_text|>",
        "\xFF", "\xC3", "\xE6\x88", "\x80\x80", "\xED\xA0\x80", std::string(1, '\0'), "\xC0\xAF"};
    std::mt19937 rng(1234);
    std::vector<std::string> texts;
    for (int i = 0; i < 60; ++i) {
        std::string t;
        const int n = 1 + static_cast<int>(rng() % 12);
        for (int k = 0; k < n; ++k) t += parts[rng() % parts.size()];
        texts.push_back(t);
    }
    std::vector<std::string> lossless;
    for (const char* name : {"qwen2", "llama-bpe", "gpt-2", "mpt", "deepseek-coder", "llama-spm", "phi-3", "bert-bge"}) {
        const Tokenizer& t = cached(std::string("vocab/ggml-vocab-") + name + ".gguf");
        // Byte-level BPE is lossless when every byte has a normal token. Not so for MPT's vocab,
        // which lacks the bytes valid UTF-8 never uses (0xC0, 0xFF, ...), nor for DeepSeek's,
        // where some of those bytes' characters are user-defined tokens (rendered as text).
        bool bpe = t.model_name() == "gpt2";
        for (int b = 0; b < 256 && bpe; ++b) {
            const TokenId id = t.find_token(tok::byte_to_utf8(static_cast<uint8_t>(b)));
            if (id < 0 || t.token_type(id) != TokenType::Normal) bpe = false;
        }
        if (bpe) lossless.push_back(name);
        for (const std::string& text : texts) {
            for (bool parse : {false, true}) {
                const auto ids = t.encode(text, true, parse);
                for (TokenId id : ids) ASSERT_TRUE(id >= 0 && id < t.n_vocab()) << name;
                StreamDecoder sd(t, true);
                std::string streamed;
                for (TokenId id : ids) streamed += sd.push(id);
                streamed += sd.flush();
                EXPECT_EQ(tok::utf8_sanitize(streamed), streamed) << name;  // always valid UTF-8
                if (tok::utf8_sanitize(text) == text && !t.add_space_prefix()) {
                    EXPECT_EQ(streamed, t.decode(ids, true)) << name;
                }
                if (!bpe) continue;
                const auto plain = t.encode(text, false, parse);
                EXPECT_EQ(t.decode(plain, /*render_special=*/true), text) << name << " parse_special " << parse;
            }
        }
    }
    EXPECT_EQ(lossless, (std::vector<std::string>{"qwen2", "llama-bpe", "gpt-2"}));
}

// ---- Model references

TEST(Tokenizer, Stories260KPrompts) {
    Loaded l = load("models/stories260K.gguf");
    EXPECT_EQ(l.tok->model_name(), "llama");
    EXPECT_EQ(l.tok->bos(), 1);
    EXPECT_EQ(l.tok->eos(), 2);
    EXPECT_TRUE(l.tok->add_bos());
    EXPECT_TRUE(l.tok->is_eog(2));
    const auto refs = nlohmann::json::parse(read_file(shared_path("models/stories260K.reference.json")));
    ASSERT_FALSE(refs.empty());
    for (const auto& r : refs) {
        const std::string prompt = r["prompt"];
        const std::vector<TokenId> want = r["prompt_ids"];
        EXPECT_EQ(l.tok->encode(prompt, true, false), want) << prompt;
        // The generated text is the pieces joined (a leading space kept).
        const std::vector<TokenId> gen = r["generated_ids"];
        std::string text;
        for (TokenId id : gen) text += l.tok->token_to_piece(id);
        EXPECT_EQ(text, r["generated_text"].get<std::string>()) << prompt;
    }
}

TEST(Tokenizer, BertReferences) {
    const auto refs = nlohmann::json::parse(read_file(shared_path("models/synthetic/bert-embeddings.json")));
    std::map<std::string, Loaded> files;
    for (const auto& r : refs) {
        const std::string file = r["file"];
        auto it = files.find(file);
        if (it == files.end()) it = files.emplace(file, load(file)).first;
        const Tokenizer& tok = *it->second.tok;
        EXPECT_EQ(tok.model_name(), "bert");
        const std::vector<TokenId> want = r["token_ids"];
        EXPECT_EQ(tok.encode(r["text"].get<std::string>(), true, false), want) << r["text"];
    }
}

// ---- Special tokens

TEST(Tokenizer, Qwen2ParseSpecial) {
    const Tokenizer& t = cached("vocab/ggml-vocab-qwen2.gguf");
    const TokenId im_start = t.find_token("<|im_start|>");
    ASSERT_GE(im_start, 0);
    EXPECT_EQ(t.token_type(im_start), TokenType::Control);
    const std::string text = "<|im_start|>user\nHi<|im_end|>";
    const auto on = t.encode(text, false, true);
    ASSERT_GE(on.size(), 3u);
    EXPECT_EQ(on.front(), im_start);
    EXPECT_EQ(on.back(), 151645);
    const auto off = t.encode(text, false, false);
    for (TokenId id : off) {
        EXPECT_NE(id, im_start);
        EXPECT_NE(id, 151645);
    }
    EXPECT_EQ(t.decode(off), text);
    EXPECT_EQ(t.decode(on), "user\nHi");  // control tokens render as nothing...
    EXPECT_EQ(t.decode(on, true), text);  // ...unless asked
    // User-defined tokens are matched even without parse_special.
    const TokenId think = t.find_token("<think>");
    ASSERT_GE(think, 0);
    EXPECT_EQ(t.token_type(think), TokenType::UserDefined);
    EXPECT_EQ(t.encode("a<think>b", false, false)[1], think);
    EXPECT_EQ(t.token_to_piece(think), "<think>");
    // No BOS for Qwen; EOS and EOT are <|im_end|>, <|endoftext|> ends generation too.
    EXPECT_FALSE(t.add_bos());
    EXPECT_EQ(t.encode("hi", true, false), t.encode("hi", false, false));
    EXPECT_EQ(t.eot(), 151645);
    EXPECT_TRUE(t.is_eog(151645));
    EXPECT_TRUE(t.is_eog(151643));
    EXPECT_FALSE(t.is_eog(im_start));
    EXPECT_EQ(t.pre_name(), "qwen2");
}

TEST(Tokenizer, LlamaBpeBeginOfText) {
    const Tokenizer& t = cached("vocab/ggml-vocab-llama-bpe.gguf");
    EXPECT_TRUE(t.add_bos());
    EXPECT_EQ(t.bos(), 128000);
    EXPECT_EQ(t.eot(), 128009);
    EXPECT_TRUE(t.is_eog(128001));
    EXPECT_TRUE(t.is_eog(128009));
    const auto on = t.encode("<|begin_of_text|>Hello", false, true);
    ASSERT_EQ(on.size(), 2u);
    EXPECT_EQ(on[0], 128000);
    const auto off = t.encode("<|begin_of_text|>Hello", false, false);
    EXPECT_GT(off.size(), 2u);
    EXPECT_NE(off[0], 128000);
    // add_special puts BOS first.
    const auto with_bos = t.encode("Hello", true, false);
    ASSERT_EQ(with_bos.size(), 2u);
    EXPECT_EQ(with_bos[0], 128000);
    EXPECT_EQ(with_bos[1], on[1]);
}

TEST(Tokenizer, SpmSpecialTokensAndSpacePrefix) {
    const Tokenizer& t = cached("vocab/ggml-vocab-llama-spm.gguf");
    EXPECT_TRUE(t.add_space_prefix());
    const auto a = t.encode("Hello", false, false);
    const auto b = t.encode("<s>Hello", false, true);
    ASSERT_EQ(b.size(), a.size() + 1);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(std::vector<TokenId>(b.begin() + 1, b.end()), a);  // space prefix after a special token
    EXPECT_NE(t.encode("<s>Hello", false, false)[0], 1);
    EXPECT_EQ(t.token_to_piece(1), "");
    EXPECT_EQ(t.token_to_piece(1, true), "<s>");
    EXPECT_EQ(t.token_to_piece(0x0A + 3), "\n");  // <0x0A>
    EXPECT_EQ(t.encode("", true, false), std::vector<TokenId>{1});
}

// ---- Streaming detokenization

TEST(Tokenizer, StreamDecoderHoldsBackSplitCharacters) {
    const Tokenizer& t = cached("vocab/ggml-vocab-llama-spm.gguf");
    // U+1F999 (llama) is not in the SPM vocabulary: it becomes 4 byte tokens.
    const std::string llama = "\xF0\x9F\xA6\x99";
    const auto ids = t.encode(llama + "!", false, false);
    std::vector<TokenId> bytes;
    for (TokenId id : ids)
        if (t.token_type(id) == TokenType::Byte) bytes.push_back(id);
    ASSERT_EQ(bytes.size(), 4u);
    StreamDecoder sd(t);
    std::string out;
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(sd.push(bytes[i]), "") << i;
    out += sd.push(bytes[3]);
    EXPECT_EQ(out, llama);
    // A sequence that is cut off for good comes out as U+FFFD at flush.
    EXPECT_EQ(sd.push(bytes[0]), "");
    EXPECT_EQ(sd.push(bytes[1]), "");
    EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD");
    // ...or when the next piece shows it can never complete.
    StreamDecoder sd2(t);
    EXPECT_EQ(sd2.push(bytes[0]), "");
    const TokenId a = t.encode("a", false, false).back();
    EXPECT_EQ(sd2.push(a), "\xEF\xBF\xBD" + t.token_to_piece(a));
    EXPECT_EQ(sd2.flush(), "");
}

TEST(Tokenizer, StreamDecoderByteLevelBpe) {
    const Tokenizer& t = cached("vocab/ggml-vocab-gpt-2.gguf");
    const std::string text = "Hello \xF0\x9F\xA6\x99 and \xE6\x88\x91\xE6\x83\xB3 caf\xC3\xA9!";
    const auto ids = t.encode(text, false, false);
    StreamDecoder sd(t);
    std::string out;
    for (TokenId id : ids) {
        const std::string piece = sd.push(id);
        // Every chunk is complete UTF-8 on its own.
        size_t i = 0;
        while (i < piece.size()) {
            const unsigned char c = static_cast<unsigned char>(piece[i]);
            const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            ASSERT_LE(i + n, piece.size());
            i += n;
        }
        out += piece;
    }
    out += sd.flush();
    EXPECT_EQ(out, text);
    EXPECT_EQ(t.decode(ids), text);
}

// ---- Long inputs

TEST(Tokenizer, LongInputsAreNotQuadratic) {
    const Tokenizer& q = cached("vocab/ggml-vocab-qwen2.gguf");
    const Tokenizer& s = cached("vocab/ggml-vocab-llama-spm.gguf");
    const Tokenizer& b = cached("vocab/ggml-vocab-bert-bge.gguf");
    std::string text;
    const std::string para = "The quick brown fox jumps over the lazy dog; caf\xC3\xA9 \xE6\x88\x91 1234567. ";
    while (text.size() < 100000) text += para;
    std::string word(20000, 'a');  // one very long pre-tokenizer piece / SPM run / WordPiece word
    for (const Tokenizer* l : {&q, &s, &b}) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto ids = l->encode(text, false, false);
        const auto ids2 = l->encode(word, false, false);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_GT(ids.size(), 10000u);
        EXPECT_FALSE(ids2.empty());
        if (l != &b) {
            EXPECT_EQ(l->decode(ids), text);
            EXPECT_EQ(l->decode(ids2), word);
        }
        std::printf("[ long     ] %-5s 100 KB text + 20 KB word: %.0f ms\n", l->model_name().c_str(), ms);
        EXPECT_LT(ms, 20000.0);  // quadratic behaviour would take minutes
    }
}

// ---- Malformed metadata

gguf::Writer base_vocab(const std::string& model) {
    gguf::Writer w;
    w.set("general.architecture", gguf::Value::string("llama"));
    w.set("tokenizer.ggml.model", gguf::Value::string(model));
    w.set("tokenizer.ggml.tokens", gguf::Value::string_array({"<unk>", "<s>", "</s>", "a", "b", "ab", "\xE2\x96\x81"}));
    w.set("tokenizer.ggml.token_type", gguf::Value::i32_array({2, 3, 3, 1, 1, 1, 1}));
    w.set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 0, 0, -1, -1, -0.5f, -2}));
    return w;
}

std::string load_error(const gguf::Writer& w) {
    const std::vector<uint8_t> bytes = w.to_bytes();
    try {
        gguf::File f = gguf::File::from_memory(bytes);
        Tokenizer::from_gguf(f);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(Tokenizer, TinySyntheticVocabWorks) {
    const std::vector<uint8_t> bytes = base_vocab("llama").to_bytes();
    gguf::File f = gguf::File::from_memory(bytes);
    auto t = Tokenizer::from_gguf(f);
    EXPECT_EQ(t->n_vocab(), 7);
    EXPECT_EQ(t->encode("ab", true, false), (std::vector<TokenId>{1, 6, 5}));
    EXPECT_EQ(t->decode({6, 5}), "ab");     // the space prefix goes away again...
    EXPECT_EQ(t->decode({1, 6, 5}), " ab");  // ...but not after BOS, as in llama.cpp
}

TEST(Tokenizer, MalformedMetadataNamesTheKey) {
    auto expect_key = [](const gguf::Writer& w, const std::string& key) {
        const std::string err = load_error(w);
        EXPECT_NE(err.find(key), std::string::npos) << "error: '" << err << "'";
    };
    {
        gguf::Writer w = base_vocab("llama");
        w.remove("tokenizer.ggml.tokens");
        expect_key(w, "tokenizer.ggml.tokens");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.tokens", gguf::Value::i32_array({1, 2, 3}));
        expect_key(w, "tokenizer.ggml.tokens");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.token_type", gguf::Value::i32_array({1, 1}));
        expect_key(w, "tokenizer.ggml.token_type");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.scores", gguf::Value::string_array({"x"}));
        expect_key(w, "tokenizer.ggml.scores");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.scores", gguf::Value::f32_array({0, 0, 0}));
        expect_key(w, "tokenizer.ggml.scores");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.bos_token_id", gguf::Value::u32(99));
        expect_key(w, "tokenizer.ggml.bos_token_id");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.eos_token_id", gguf::Value::string("2"));
        expect_key(w, "tokenizer.ggml.eos_token_id");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.add_bos_token", gguf::Value::u32(1));
        expect_key(w, "tokenizer.ggml.add_bos_token");
    }
    {
        gguf::Writer w = base_vocab("gpt2");  // no merges
        expect_key(w, "tokenizer.ggml.merges");
    }
    {
        gguf::Writer w = base_vocab("gpt2");
        w.set("tokenizer.ggml.merges", gguf::Value::i32_array({1}));
        expect_key(w, "tokenizer.ggml.merges");
    }
    {
        gguf::Writer w = base_vocab("sentencepiece-unigram");
        expect_key(w, "tokenizer.ggml.model");
    }
    {
        gguf::Writer w = base_vocab("llama");
        w.remove("tokenizer.ggml.model");
        expect_key(w, "tokenizer.ggml.model");
    }
    {
        gguf::Writer w = base_vocab("gpt2");
        w.set("tokenizer.ggml.merges", gguf::Value::string_array({"a b"}));
        w.set("tokenizer.ggml.pre", gguf::Value::string("no-such-pre"));
        const std::string err = load_error(w);
        EXPECT_NE(err.find("no-such-pre"), std::string::npos) << err;
        EXPECT_NE(err.find("qwen2"), std::string::npos) << err;  // lists the supported ones
        EXPECT_NE(err.find("llama-bpe"), std::string::npos) << err;
    }
    {  // -1 (0xFFFFFFFF) means "none", not an error
        gguf::Writer w = base_vocab("llama");
        w.set("tokenizer.ggml.padding_token_id", gguf::Value::u32(0xFFFFFFFFu));
        w.set("tokenizer.ggml.eos_token_id", gguf::Value::u32(0xFFFFFFFFu));
        EXPECT_EQ(load_error(w), "");
    }
}

}  // namespace
}  // namespace hearth
