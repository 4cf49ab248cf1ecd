// Structured output: GBNF parsing, the byte matcher, token masks on real vocabularies,
// JSON schema -> grammar, the validator, and a random-logits fuzz proving that whatever a
// model samples under the constraint parses as JSON and validates.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "sampling/grammar.h"
#include "sampling/json_schema.h"
#include "support/paths.h"
#include "tokenizer/tokenizer.h"

namespace hearth {
namespace {

using nlohmann::json;
using test::shared_path;

// ---------------------------------------------------------------- helpers

struct Vocab {
    gguf::File file;
    std::unique_ptr<Tokenizer> tok;
    explicit Vocab(const std::string& rel) : file(gguf::File::open(shared_path(rel))), tok(Tokenizer::from_gguf(file)) {}
};

const Tokenizer& llama_bpe() { static Vocab v("vocab/ggml-vocab-llama-bpe.gguf"); return *v.tok; }
const Tokenizer& stories() { static Vocab v("models/stories260K.gguf"); return *v.tok; }

// The message of the exception `f` throws ("" when none).
template <class E, class F>
std::string error_of(F f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}
std::string parse_error(const std::string& gbnf) { return error_of<GrammarError>([&] { Grammar::parse(gbnf); }); }
std::string schema_error(const std::string& s) { return error_of<SchemaError>([&] { grammar_from_json_schema(json::parse(s)); }); }

// Whole-string match: all bytes accepted and the grammar complete.
bool matches(const std::shared_ptr<const Grammar>& g, const std::string& s) {
    GrammarMatcher m(g);
    return m.accept(s) && m.is_complete();
}

// Every `yes` is a whole sentence of the grammar, no `no` is.
void expect_language(const std::shared_ptr<const Grammar>& g, std::initializer_list<std::string> yes,
                     std::initializer_list<std::string> no) {
    for (const std::string& s : yes) EXPECT_TRUE(matches(g, s)) << "should match: " << s;
    for (const std::string& s : no) EXPECT_FALSE(matches(g, s)) << "should not match: " << s;
}

struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>(next() >> 40) / static_cast<float>(1 << 24); }
};

int32_t argmax(const std::vector<float>& v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Samples with random logits under the constraint until it is done. After `soft_cap`
// steps, single-character closers and end tokens mostly get a large bonus so runs finish.
// Returns the text; sets `finished`.
std::string random_generate(const std::shared_ptr<const Grammar>& g, const Tokenizer& tok, uint64_t seed, int soft_cap,
                            bool& finished, int max_steps = 3000) {
    GrammarConstraint c(g, tok);
    const TokenTrie& trie = c.trie();
    const int32_t n = tok.n_vocab();
    std::vector<uint8_t> closer(static_cast<size_t>(n), 0);
    for (int32_t id = 0; id < n; ++id) {
        const std::string& p = trie.piece(id);
        if (trie.is_end(id) || p == "\"" || p == "}" || p == "]" || p == "0" || p == ":") closer[static_cast<size_t>(id)] = 1;
    }
    Rng rng{seed * 7919 + 17};
    std::vector<float> logits(static_cast<size_t>(n));
    std::string out;
    finished = false;
    for (int step = 0; step < max_steps; ++step) {
        if ((finished = c.done())) break;
        // Past the soft cap most steps favour closers; the rest stay random, so that text
        // a pattern still needs (closers can't write it) gets written too.
        const bool boost = step >= soft_cap && rng.next() % 4 != 0;
        for (int32_t i = 0; i < n; ++i) {
            float l = rng.uniform() * 8.0f;
            if (boost && closer[static_cast<size_t>(i)]) l += 100.0f;
            logits[static_cast<size_t>(i)] = l;
        }
        int32_t id = argmax(logits);
        if (!c.allows(id)) {  // sample first, mask only when the pick is not allowed
            c.apply(logits.data(), n);
            id = argmax(logits);
            EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(id)])) << "no token allowed after: " << out;
            if (!std::isfinite(logits[static_cast<size_t>(id)])) return out;
            EXPECT_TRUE(c.allows(id));
        }
        c.accept(id);
        if ((finished = trie.is_end(id))) break;
        out += trie.piece(id);
    }
    return out;
}

// Runs the fuzz for one schema (or format "json" when schema is the string "json").
void fuzz_schema(const json& schema, const Tokenizer& tok, int seeds, int soft_cap) {
    const auto g = schema.is_string() ? grammar_for_format(schema) : grammar_from_json_schema(schema);
    ASSERT_TRUE(g);
    const json check_schema = schema.is_string() ? json{{"type", "object"}} : schema;
    for (int seed = 0; seed < seeds; ++seed) {
        bool finished = false;
        const std::string out = random_generate(g, tok, static_cast<uint64_t>(seed), soft_cap, finished);
        ASSERT_TRUE(finished) << "seed " << seed << " did not finish: " << out;
        json value;
        try {
            value = json::parse(out);
        } catch (const json::exception& e) {
            FAIL() << "seed " << seed << ": not JSON (" << e.what() << "): " << out;
        }
        if (std::getenv("HEARTH_FUZZ_VERBOSE")) std::printf("[fuzz] seed %d: %s\n", seed, out.c_str());
        const std::string why = validate_json(check_schema, value);
        ASSERT_EQ(why, "") << "seed " << seed << ": " << out << "\nschema: " << schema.dump();
    }
}

// ---------------------------------------------------------------- GBNF parsing

TEST(GrammarParse, ErrorsNameTheProblem) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"root ::= foo", "undefined rule 'foo'"},
        {"a ::= \"x\"", "no rule named 'root'"},
        {"root ::= \"abc", "unterminated string literal"},
        {"root ::= [a-", "unterminated character class"},
        {"root ::= []", "empty character class"},
        {"root ::= [z-a]", "invalid range"},
        {"root ::= \"a\"{3,2}", "repetition minimum 3 above maximum 2"},
        {"root ::= * \"a\"", "nothing to repeat"},
        {"root ::= \"a\"* +", "follows another repetition operator"},
        {"root ::= root \"a\" | \"b\"", "left recursion: root -> root"},
        {"root ::= a\na ::= b? root \"x\"\nb ::= \"y\"", "left recursion: a -> root -> a"},
        {"root ::= \"b\" | \"a\" x\nx ::= \"c\" x", "rule 'x' can never complete"},
        {"root = \"a\"", "expected '::='"},
        {"root ::= ( \"a\"", "expected ')'"},
        {"root ::= \"\\q\"", "unknown escape '\\q'"},
        {"root ::= \"\\x4\"", "needs 2 hex digits"},
        {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
        {"root ::= \"a\" b ::= \"c\"", "expected a newline before the definition of 'b'"},
        {"root ::= \"\\uD800\"", "invalid code point"},
        {"root ::= <[1000]>", "token references"},
        {"root ::= \"a\" )", "unexpected ')'"},
        {"root ::= \"a\"{100001}", "repetition count above"},
        {"::= \"a\"", "expected a rule name"},
    };
    for (const auto& [text, want] : cases) {
        const std::string err = parse_error(text);
        EXPECT_NE(err.find(want), std::string::npos) << "grammar: " << text << "\nerror: " << err;
    }
}

TEST(GrammarParse, ErrorsCarryLineAndColumn) {
    try {
        Grammar::parse("root ::= \"a\" x\n# comment\nx ::= [z-a]\n");
        FAIL() << "no error";
    } catch (const GrammarError& e) {
        EXPECT_EQ(e.line(), 3);
        EXPECT_EQ(e.column(), 8);
        EXPECT_NE(std::string(e.what()).find("line 3, column 8"), std::string::npos) << e.what();
    }
}

TEST(GrammarParse, SyntaxFeatures) {
    const auto g = Grammar::parse(R"(
# a comment line
root ::= greeting ws ( name
                     | "anon" ) "!"?  # comment after a rule
       | "\x41\u00e9\U0001F600" [^\n]{2}
greeting ::= ("hi" | "hello"){1,2}
name ::= [A-Z] [a-z]{,4}
ws ::= [ \t]+
)");
    const std::initializer_list<std::string> yes = {"hi Bob", "hellohi\tAnna!", "hi anon", "A\xC3\xA9\xF0\x9F\x98\x80xy"};
    const std::initializer_list<std::string> no = {"hi Bobbyyy", "hihihi Bob", "A\xC3\xA9\xF0\x9F\x98\x80x\n"};
    expect_language(g, yes, no);
    expect_language(Grammar::parse(g->to_gbnf()), yes, no);  // to_gbnf() parses to the same language
}

// ---------------------------------------------------------------- matcher

TEST(GrammarMatcher, RepetitionBounds) {
    const auto g = Grammar::parse("root ::= \"a\"{2,3} \"b\"{2,} \"c\"{,1}");
    expect_language(g, {"aabb", "aaabbbbbc"}, {"ab", "aab", "aaaabb", "aabbcc"});
    GrammarMatcher m(g);
    ASSERT_TRUE(m.accept("aabbc"));
    EXPECT_TRUE(m.is_complete() && !m.can_continue());
}

TEST(GrammarMatcher, Utf8CodePointClasses) {
    const auto g = Grammar::parse("root ::= [^a]+");
    EXPECT_TRUE(matches(g, "\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80"));  // é 日 😀
    EXPECT_FALSE(matches(g, "a"));
    GrammarMatcher m(g);
    EXPECT_FALSE(m.allows("\xC0\x80"));          // overlong NUL
    EXPECT_FALSE(m.allows("\xED\xA0\x80"));      // a surrogate
    EXPECT_FALSE(m.allows("\xF4\x90\x80\x80"));  // above U+10FFFF
    EXPECT_FALSE(m.allows("\x80"));              // a lone continuation byte
    ASSERT_TRUE(m.accept("\xE6\x97"));           // a partial sequence is fine ...
    EXPECT_FALSE(m.is_complete());               // ... but not complete
    EXPECT_FALSE(m.allows("x"));
    ASSERT_TRUE(m.accept("\xA5"));
    EXPECT_TRUE(m.is_complete());

    const auto greek = Grammar::parse("root ::= [α-ω]+");
    expect_language(greek, {"αβγω"}, {"αa"});
    GrammarMatcher gm(greek);
    // The lead byte of α (CE) is allowed, that of 日 (E6) is not.
    const auto bytes = gm.next_bytes();
    EXPECT_TRUE(bytes[0xCE] && !bytes[0xE6] && !bytes['a']);
    ASSERT_TRUE(gm.accept("\xCE"));
    const auto cps = gm.next_code_points();
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(cps[0], std::make_pair(0x3B1u, 0x3BFu));  // the rest of α-ω start with CF

    GrammarMatcher any(Grammar::parse("root ::= .+"));  // partial sequences must be completable
    EXPECT_TRUE(any.allows("\xED\x9F"));               // U+D7xx
    EXPECT_FALSE(any.allows("\xED\xA0"));              // only surrogates start this way
    EXPECT_TRUE(any.allows("\xF4\x8F"));
    EXPECT_FALSE(any.allows("\xF4\x90"));
    EXPECT_FALSE(any.allows("\xE0\x80"));  // overlong
}

TEST(GrammarMatcher, CompactionKeepsTheState) {
    // Every length is a distinct state: past the cache budget the matcher drops old ones.
    const auto g = Grammar::parse("root ::= [a-z]{0,60000} \"!\"");
    GrammarMatcher m(g);
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(m.accept(std::string(100, 'q')));
    EXPECT_LT(m.n_states(), 20000u);
    EXPECT_FALSE(m.is_complete());
    ASSERT_TRUE(m.accept("!"));
    EXPECT_TRUE(m.is_complete() && !m.can_continue());
    m.reset();
    EXPECT_TRUE(m.accept("abc!"));
}

TEST(GrammarMatcher, NextBytesAndCodePoints) {
    const auto g = Grammar::parse("root ::= [a-c] \"!\" | [x-z]+ | \"é\"");
    GrammarMatcher m(g);
    const auto cps = m.next_code_points();
    ASSERT_EQ(cps.size(), 3u);
    EXPECT_EQ(cps[0], std::make_pair(uint32_t{'a'}, uint32_t{'c'}));
    EXPECT_EQ(cps[1], std::make_pair(uint32_t{'x'}, uint32_t{'z'}));
    EXPECT_EQ(cps[2], std::make_pair(uint32_t{0xE9}, uint32_t{0xE9}));
    const auto b = m.next_bytes();
    EXPECT_EQ(b.count(), 7u);  // a b c x y z and C3
    EXPECT_TRUE(b[0xC3]);
    ASSERT_TRUE(m.accept("b"));
    EXPECT_EQ(m.next_bytes().count(), 1u);
    EXPECT_FALSE(m.accept("c"));  // rejected input leaves the state alone
    EXPECT_TRUE(m.accept("!") && m.is_complete());
    m.reset();
    EXPECT_FALSE(m.is_complete());
    EXPECT_TRUE(m.accept("é"));
}

TEST(GrammarMatcher, DeepNestingAndRecursion) {
    const std::string deep = std::string(500, '(') + "x" + std::string(500, ')');
    expect_language(Grammar::parse("root ::= \"(\" root \")\" | \"x\""), {deep}, {deep + ")", "(((x))"});
}

TEST(GrammarMatcher, LongRepetitionReusesStates) {
    // Right recursion with tail calls: a 20k-character string revisits the same states.
    const auto g = Grammar::parse(json_gbnf(false));
    GrammarMatcher m(g);
    std::string doc = "[\"" + std::string(20000, 'x') + "\", 1, {\"a\": [true, null]}]";
    ASSERT_TRUE(m.accept(doc));
    EXPECT_TRUE(m.is_complete());
    EXPECT_LT(m.n_states(), 200u);
}

TEST(GrammarMatcher, NullableRepetitionAndTailCycles) {
    // (x*)* and a ::= b a | "" with a nullable b: cycles of tail calls are fine.
    expect_language(Grammar::parse("root ::= ( \"x\"* | \"y\"? )* \"!\""), {"!", "xxyxy!"}, {"xz!"});
    expect_language(Grammar::parse("root ::= c \"!\"\nb ::= \"z\"?\nc ::= b c | \"\""), {"zzz!", "!"}, {"zy!"});
}

TEST(GrammarMatcher, AmbiguousGrammar) {
    expect_language(Grammar::parse("root ::= ( \"a\" | \"aa\" | [a-b] )* \"b\""), {std::string(300, 'a') + "b", "abab"}, {"aac"});
}

// ---------------------------------------------------------------- token masks

// For every token, apply() and allows() agree; returns the number of allowed tokens.
size_t check_mask_consistency(GrammarConstraint& c, const Tokenizer& tok) {
    const int32_t n = tok.n_vocab();
    std::vector<float> logits(static_cast<size_t>(n), 0.0f);
    c.apply(logits.data(), n);
    size_t allowed = 0, wrong = 0;
    for (int32_t id = 0; id < n && wrong < 5; ++id) {
        const bool in_mask = std::isfinite(logits[static_cast<size_t>(id)]);
        allowed += in_mask;
        wrong += in_mask != c.allows(id);
        EXPECT_EQ(in_mask, c.allows(id)) << "token " << id << " '" << c.trie().piece(id) << "'";
    }
    return allowed;
}

// Token ids for `text` as a continuation. SPM's encode() adds a leading space, which a
// continuation of a prompt doesn't have, so there the text is split by longest piece.
std::vector<int32_t> tokenize(const Tokenizer& tok, const std::string& text) {
    if (!tok.add_space_prefix()) return tok.encode(text, false, false);
    const auto trie = TokenTrie::get(tok);
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size();) {
        int32_t best = -1;
        size_t len = 0;
        for (int32_t id = 0; id < tok.n_vocab(); ++id) {
            const std::string& p = trie->piece(id);
            if (trie->usable(id) && p.size() > len && text.compare(i, p.size(), p) == 0) best = id, len = p.size();
        }
        if (best < 0) throw std::runtime_error("no token for the text at byte " + std::to_string(i));
        ids.push_back(best);
        i += len;
    }
    return ids;
}

void feed_text(GrammarConstraint& c, const Tokenizer& tok, const std::string& text) {
    for (int32_t id : tokenize(tok, text)) {
        ASSERT_TRUE(c.allows(id)) << "token " << id << " '" << tok.token_to_piece(id, true) << "' in " << text;
        c.accept(id);
    }
}

TEST(GrammarConstraint, MaskOnLlamaBpe) {
    const Tokenizer& tok = llama_bpe();
    GrammarConstraint c(grammar_for_format("json"), tok);
    const int32_t n = tok.n_vocab();
    const size_t at_start = check_mask_consistency(c, tok);
    EXPECT_TRUE(at_start > 0 && at_start < 2000) << at_start;
    std::vector<float> logits(static_cast<size_t>(n), 0.0f);
    c.apply(logits.data(), n);
    EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(tok.encode("{", false, false)[0])]));
    EXPECT_FALSE(std::isfinite(logits[static_cast<size_t>(tok.encode("hello", false, false)[0])]));
    EXPECT_FALSE(std::isfinite(logits[static_cast<size_t>(tok.eos())]) || c.allows(tok.eos()));
    EXPECT_THROW(c.accept(tok.eos()), std::runtime_error);
    EXPECT_THROW(c.accept(tok.encode("hello", false, false)[0]), std::runtime_error);

    feed_text(c, tok, "{\"name\": \"caf\xC3\xA9 \xE6\x97\xA5");
    const size_t in_string = check_mask_consistency(c, tok);
    EXPECT_GT(in_string, 100000u);  // almost everything may go into a string
    feed_text(c, tok, "\", \"n\": [1, 2.5e3, -0.25, true, null, {}]");
    check_mask_consistency(c, tok);
    EXPECT_FALSE(c.can_end());
    feed_text(c, tok, "}");
    EXPECT_TRUE(c.done() && c.can_end());
    std::fill(logits.begin(), logits.end(), 0.0f);
    c.apply(logits.data(), n);  // only end tokens remain
    EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(tok.eos())]));
    EXPECT_EQ(std::count_if(logits.begin(), logits.end(), [](float l) { return std::isfinite(l); }),
              static_cast<std::ptrdiff_t>(c.trie().end_tokens().size()));
    c.accept(tok.eos());
    EXPECT_TRUE(c.done());

    // Control tokens other than end tokens are never allowed, even inside a string.
    c.reset();
    feed_text(c, tok, "{\"a\": \"");
    for (int32_t id = 0; id < n; ++id)
        EXPECT_FALSE(tok.token_type(id) == TokenType::Control && !c.trie().is_end(id) && c.allows(id)) << id;
    // Ids past the vocabulary are masked.
    std::vector<float> wide(static_cast<size_t>(n) + 8, 0.0f);
    c.apply(wide.data(), n + 8);
    for (int32_t i = n; i < n + 8; ++i) EXPECT_FALSE(std::isfinite(wide[static_cast<size_t>(i)]));
}

TEST(GrammarConstraint, ValidDocumentsTokenizeThrough) {
    // Completeness: the tokenizer's own encoding of valid outputs is never masked.
    const json schema = json::parse(R"({"type": "object", "required": ["id", "email"], "properties": {
        "id": {"type": "integer", "minimum": 1, "maximum": 99999}, "email": {"type": "string", "format": "email"},
        "when": {"type": "string", "format": "date-time"}, "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4}}})");
    const auto g = grammar_from_json_schema(schema);
    const std::vector<std::string> docs = {
        R"({"id": 42, "email": "a.b@example.com", "note": null, "tags": ["x", "y z"], "when": "2024-02-29T13:45:00Z"})",
        "{\n  \"id\": 7,\n  \"email\": \"q@x.io\",\n  \"note\": \"line\\nbreak \\u00e9 \xF0\x9F\x98\x80\"\n}",
        R"({"id":99999,"email":"z@y.co","tags":[]})",
    };
    for (const Tokenizer* tok : {&llama_bpe(), &stories()}) {
        for (const std::string& doc : docs) {
            ASSERT_EQ(validate_json(schema, json::parse(doc)), "") << doc;
            GrammarConstraint c(g, *tok);
            feed_text(c, *tok, doc);
            EXPECT_TRUE(c.can_end() && c.allows(tok->eos())) << doc;
        }
    }
}

TEST(GrammarConstraint, MaskOnStories260K) {
    const Tokenizer& tok = stories();
    const auto g = Grammar::parse("root ::= \"Once upon a time\" ( \" there was a \" [a-z]+ \".\" )+");
    GrammarConstraint c(g, tok);
    check_mask_consistency(c, tok);
    feed_text(c, tok, "Once upon a time there was a cat.");
    EXPECT_TRUE(c.can_end() && !c.done());
    check_mask_consistency(c, tok);
    bool finished = false;
    const std::string out = random_generate(g, tok, 3, 40, finished);
    EXPECT_TRUE(finished && matches(g, out)) << out;
}

TEST(GrammarConstraint, TrieCacheIsShared) {
    const auto a = TokenTrie::get(stories());
    EXPECT_EQ(a.get(), TokenTrie::get(stories()).get());
    EXPECT_EQ(a->n_vocab(), stories().n_vocab());
    TokenTrie::forget(stories());
    EXPECT_NE(TokenTrie::get(stories()).get(), a.get());
}

// ---------------------------------------------------------------- JSON schema -> grammar

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"not": {"type": "string"}})", "unsupported keyword 'not'"},
        {R"({"type": "object", "patternProperties": {"^a": {}}})", "unsupported keyword 'patternProperties'"},
        {R"({"type": "array", "uniqueItems": true})", "unsupported keyword 'uniqueItems'"},
        {R"({"type": "number", "multipleOf": 3})", "unsupported keyword 'multipleOf'"},
        {R"({"properties": {"a": {"if": {}}}})", "at /properties/a: unsupported keyword 'if'"},
        {R"({"type": "string", "pattern": "(?=a)b"})", "unsupported pattern"},
        {R"({"type": "string", "pattern": "(a)\\1"})", "backreferences"},
        {R"({"type": "string", "pattern": "a^b"})", "unsupported pattern"},
        {R"({"$ref": "#/$defs/missing"})", "does not point into the schema"},
        {R"({"$ref": "http://x/y.json"})", "only local references"},
        {R"({"$ref": "#/$defs/a", "type": "string", "$defs": {"a": {}}})", "'type' next to '$ref'"},
        {R"({"allOf": [{"type": "string"}, {"maxLength": 3}]})", "allOf' with more than one"},
        {R"({"type": "strin"})", "unknown type 'strin'"},
        {R"({"type": "integer", "minimum": 5, "maximum": 4})", "no integer"},
        {R"({"type": "string", "minLength": 5, "maxLength": 4})", "'minLength' above 'maxLength'"},
        {R"({"enum": [1, 2], "type": "string"})", "no enum/const value"},
        {R"({"$ref": "#"})", "can never complete"},
        {R"({"type": "object", "properties": {"me": {"$ref": "#"}}, "required": ["me"]})", "can never complete"},
        {R"(false)", "matches nothing"},
    };
    for (const auto& [schema, want] : cases) {
        const std::string err = schema_error(schema);
        EXPECT_NE(err.find(want), std::string::npos) << "schema: " << schema << "\nerror: " << err;
    }
}

TEST(JsonSchema, IntegerRangesAreExact) {
    const std::vector<std::pair<std::string, std::pair<int, int>>> cases = {
        {R"({"type": "integer", "minimum": -37, "maximum": 1234})", {-37, 1234}},
        {R"({"type": "integer", "minimum": -200.5, "maximum": -9.5})", {-200, -10}},
        {R"({"type": "integer", "minimum": 7})", {7, 1 << 30}},
        {R"({"type": "integer", "maximum": -3})", {-(1 << 30), -3}},
    };
    for (const auto& [schema, range] : cases) {
        const auto g = grammar_from_json_schema(json::parse(schema));
        for (int v = -1500; v <= 1500; ++v)
            ASSERT_EQ(matches(g, std::to_string(v)), v >= range.first && v <= range.second) << schema << " value " << v;
        EXPECT_FALSE(matches(g, "007"));
        EXPECT_FALSE(matches(g, "1.5"));
    }
}

TEST(JsonSchema, RandomNumericBounds) {
    Rng rng{99};
    const auto rand_int = [&](int lo, int hi) { return lo + static_cast<int>(rng.next() % static_cast<uint64_t>(hi - lo + 1)); };
    for (int round = 0; round < 40; ++round) {
        // Integers: exact for every value in a window around the bounds.
        int a = rand_int(-2000, 2000), b = rand_int(-2000, 2000);
        if (a > b) std::swap(a, b);
        json schema = {{"type", "integer"}};
        schema[rng.next() % 2 ? "minimum" : "exclusiveMinimum"] = a;
        schema[rng.next() % 2 ? "maximum" : "exclusiveMaximum"] = b;
        std::shared_ptr<const Grammar> g;
        try {
            g = grammar_from_json_schema(schema);
        } catch (const SchemaError&) {
            continue;  // an empty range (a == b with an exclusive bound)
        }
        for (int v = -2100; v <= 2100; ++v)
            ASSERT_EQ(matches(g, std::to_string(v)), validate_json(schema, v).empty()) << schema.dump() << " " << v;
        // Numbers: accepted values validate; with integral bounds, in-range decimals are accepted.
        json ns = schema;
        ns["type"] = "number";
        const bool fractional = rng.next() % 3 == 0;
        if (fractional) ns[ns.contains("minimum") ? "minimum" : "exclusiveMinimum"] = a - 0.25;
        try {
            g = grammar_from_json_schema(ns);
        } catch (const SchemaError&) {
            continue;
        }
        for (int k = 0; k < 300; ++k) {
            const int whole = rand_int(-2100, 2100);
            const int frac = rand_int(0, 999);
            const std::string text = (whole < 0 ? "-" : "") + std::to_string(std::abs(whole)) + (k % 3 ? "." + std::to_string(frac) : "");
            const double x = std::stod(text);
            const bool ok = validate_json(ns, json::parse(text)).empty();
            if (matches(g, text)) {
                ASSERT_TRUE(ok) << ns.dump() << " accepted " << text;
            }
            // Integral bounds are exact for texts without trailing zeros in the fraction.
            const bool canonical = k % 3 == 0 || frac % 10 != 0;
            if (!fractional && ok && canonical && x != 0) {
                ASSERT_TRUE(matches(g, text)) << ns.dump() << " rejected " << text;
            }
        }
    }
}

TEST(JsonSchema, NumberBoundsAtTheEdges) {
    const auto closed = grammar_from_json_schema(json::parse(R"({"type": "number", "minimum": 0, "maximum": 1})"));
    for (const char* v : {"0", "1", "0.5", "1.0", "0.999"}) EXPECT_TRUE(matches(closed, v)) << v;
    for (const char* v : {"1.01", "-0.5", "2", "1e-2"}) EXPECT_FALSE(matches(closed, v)) << v;
    const auto open = grammar_from_json_schema(json::parse(R"({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})"));
    for (const char* v : {"0.001", "0.5"}) EXPECT_TRUE(matches(open, v)) << v;
    for (const char* v : {"0", "0.0", "1", "1.0"}) EXPECT_FALSE(matches(open, v)) << v;
    // Fractional bounds are rounded inward: a valid subset.
    const auto rounded = grammar_from_json_schema(json::parse(R"({"type": "number", "minimum": -2.5, "maximum": 3.75})"));
    for (const char* v : {"-2", "-1.75", "3.0"}) EXPECT_TRUE(matches(rounded, v)) << v;
    for (const char* v : {"-2.5", "3.5"}) EXPECT_FALSE(matches(rounded, v)) << v;
}

TEST(JsonSchema, StringsPatternsAndFormats) {
    const auto check = [](const std::string& schema, const std::vector<std::string>& yes, const std::vector<std::string>& no) {
        const json s = json::parse(schema);
        const auto g = grammar_from_json_schema(s);
        for (const std::string& v : yes) {
            EXPECT_TRUE(matches(g, v)) << schema << " should accept " << v;
            EXPECT_EQ(validate_json(s, json::parse(v)), "") << v;
        }
        for (const std::string& v : no) EXPECT_FALSE(matches(g, v)) << schema << " should reject " << v;
    };
    check(R"({"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"})", {R"("AB-123")"}, {R"("AB-12")", R"("ab-123")", R"("AB-1234")"});
    check(R"({"type": "string", "pattern": "abc"})", {R"("abc")", R"("xxabcyy")"}, {R"("ab")", R"("xaxbc")"});
    check(R"({"type": "string", "pattern": "^(cat|dog)s?$"})", {R"("cat")", R"("dogs")"}, {R"("cats!")", R"("cow")"});
    check(R"({"type": "string", "pattern": "^a\"b\\\\c\\.$"})", {R"("a\"b\\c.")"}, {R"("a"b\c.")", R"("a\"b\\cx")"});
    check(R"({"type": "string", "pattern": "^[^a-z]+$"})", {R"("ABC\"\\\n")", "\"\xC3\xA9\""}, {R"("aB")", R"("")"});
    check(R"({"type": "string", "pattern": "^(?:x|y){2,3}z?$"})", {R"("xy")", R"("yyxz")"}, {R"("x")", R"("xyxy")"});
    check(R"({"type": "string", "minLength": 2, "maxLength": 3})", {R"("ab")", "\"\xC3\xA9\xC3\xA9\xC3\xA9\"", R"("\n\t")"},
          {R"("a")", R"("abcd")"});
    check(R"({"type": "string", "format": "date"})", {R"("2024-02-29")"}, {R"("2024-13-01")", R"("24-01-01")"});
    check(R"({"type": "string", "format": "time"})", {R"("23:59:59Z")", R"("01:02:03.5+05:30")"}, {R"("24:00:00Z")", R"("12:00:00")"});
    check(R"({"type": "string", "format": "date-time"})", {R"("2024-01-31T08:00:00-03:00")"}, {R"("2024-01-31 08:00:00Z")"});
    check(R"({"type": "string", "format": "uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"}, {R"("123e4567e89b12d3a456426614174000")"});
    check(R"({"type": "string", "format": "email"})", {R"("a.b+c@mail.example.org")"}, {R"("a@b")", R"("@b.com")"});
    check(R"({"type": "string"})", {R"("x\u00e9\ud7ff")"}, {R"("\ud83d\ude00")", "\"a\x01\"", R"("\x")"});
}

TEST(JsonSchema, ObjectsAndArrays) {
    const json schema = json::parse(R"({
        "type": "object",
        "properties": {"b": {"type": "integer"}, "a": {"type": "string"}, "c": {"type": "boolean"}},
        "required": ["b"]
    })");
    // Required first; optional ones may be left out but keep their order; others are refused.
    expect_language(grammar_from_json_schema(schema), {R"({"b": 1})", R"({"b": 1, "a": "x", "c": true})", R"({"b":1,"c":false})"},
                    {R"({"a": "x"})", R"({"b": 1, "d": 2})", R"({"b": 1, "c": true, "a": "x"})"});
    // Additional keys are anything but the listed ones.
    expect_language(grammar_from_json_schema(json::parse(
                        R"({"type": "object", "properties": {"k": {"type": "null"}}, "additionalProperties": {"type": "integer"}})")),
                    {R"({"k": null, "x": 1, "kk": 2, "": 3})", R"({"x": 1})", "{}"}, {R"({"k": null, "k": 1})", R"({"x": "s"})"});
    expect_language(grammar_from_json_schema(json::parse(R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})")),
                    {"[1, 2]", "[1,2,3]"}, {"[1]", "[1,2,3,4]", "[]"});
    expect_language(grammar_from_json_schema(json::parse(
                        R"({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false, "minItems": 1})")),
                    {R"(["a"])", R"(["a", 1])"}, {R"(["a", 1, 2])", "[]", "[1]"});
    // Whitespace is bounded; format "json" is an object.
    expect_language(grammar_for_format("json"), {"{\n    \"a\": 1\n}"},
                    {"{" + std::string(30, ' ') + "}", "{\n" + std::string(21, ' ') + "}", "[1]"});
}

TEST(JsonSchema, FormatAndResponseFormat) {
    EXPECT_EQ(grammar_for_format(nullptr), nullptr);
    EXPECT_EQ(grammar_for_format(""), nullptr);
    EXPECT_NE(grammar_for_format("json"), nullptr);
    EXPECT_THROW(grammar_for_format("yaml"), SchemaError);
    EXPECT_THROW(grammar_for_format(5), SchemaError);
    EXPECT_EQ(grammar_for_response_format(json{{"type", "text"}}), nullptr);
    EXPECT_NE(grammar_for_response_format(json{{"type", "json_object"}}), nullptr);
    const auto g = grammar_for_response_format(json::parse(
        R"({"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}})"));
    ASSERT_NE(g, nullptr);
    EXPECT_TRUE(matches(g, R"({"n": 3})"));
    EXPECT_FALSE(matches(g, R"({})"));
    EXPECT_THROW(grammar_for_response_format(json{{"type", "xml"}}), SchemaError);
}

TEST(JsonSchema, Validator) {
    const json s = json::parse(R"({
        "$defs": {"pos": {"type": "integer", "exclusiveMinimum": 0}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/pos"}, "l": {"type": "array", "items": {"enum": ["a", 1]}, "uniqueItems": true}},
        "required": ["n"]
    })");
    EXPECT_EQ(validate_json(s, json::parse(R"({"n": 1, "l": ["a", 1]})")), "");
    EXPECT_EQ(validate_json(s, json::parse(R"({"n": 2.0})")), "");
    EXPECT_NE(validate_json(s, json::parse(R"({"n": 0})")).find("at /n"), std::string::npos);
    EXPECT_NE(validate_json(s, json::parse(R"({"l": []})")).find("missing required property \"n\""), std::string::npos);
    EXPECT_NE(validate_json(s, json::parse(R"({"n": 1, "x": 1})")).find("\"x\" is not allowed"), std::string::npos);
    EXPECT_NE(validate_json(s, json::parse(R"({"n": 1, "l": ["b"]})")).find("at /l/0"), std::string::npos);
    EXPECT_NE(validate_json(s, json::parse(R"({"n": 1, "l": [1, 1]})")).find("equal"), std::string::npos);
    EXPECT_NE(validate_json(s, json::parse("[]")).find("expected type"), std::string::npos);
    EXPECT_EQ(validate_json(json::parse(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})"), 1.5), "");
    EXPECT_NE(validate_json(json::parse(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})"), 1), "");
    EXPECT_NE(validate_json(json::parse(R"({"type": "string", "pattern": "^a+$"})"), "ab"), "");
    EXPECT_NE(validate_json(json::parse(R"({"type": "string", "maxLength": 2})"), "\xC3\xA9\xC3\xA9\xC3\xA9"), "");
    EXPECT_EQ(validate_json(json::parse(R"({"type": "string", "maxLength": 3})"), "\xC3\xA9\xC3\xA9\xC3\xA9"), "");
}

// Random patterns from the supported subset: the grammar accepts a string's JSON encoding
// exactly when std::wregex (ECMAScript) finds the pattern in the string.
struct PatternGen {
    Rng rng;
    size_t pick(size_t n) { return static_cast<size_t>(rng.next() % n); }
    std::string atom(int depth) {
        static const std::vector<std::string> simple = {"a", "b", "x", "1", "\xC3\xA9", "-", "\\.", "\\\\", "\"", "\\n", " ",
                                                        ".", "\\d", "\\w", "\\s", "[ab]", "[^a]", "[a-x]", "[\\d.]",
                                                        "[^\\s\"]", "[-\\\\]", "\\x61", "\\u00e9"};
        if (depth < 2 && pick(5) == 0) return std::string(pick(2) ? "(" : "(?:") + alternation(depth + 1) + ")";
        return simple[pick(simple.size())];
    }
    std::string quantified(int depth) {
        static const std::vector<std::string> q = {"", "", "", "", "*", "+", "?", "{2}", "{1,2}", "{0,}", "*?"};
        return atom(depth) + q[pick(q.size())];
    }
    std::string sequence(int depth) {
        std::string out;
        for (size_t k = 1 + pick(3); k > 0; --k) out += quantified(depth);
        return out;
    }
    std::string alternation(int depth) { return pick(4) ? sequence(depth) : sequence(depth) + "|" + sequence(depth); }
    std::string pattern() { return std::string(pick(2) ? "^" : "") + alternation(0) + (pick(2) ? "$" : ""); }
    std::string text() {
        static const std::vector<std::string> alphabet = {"a", "b", "x", "1", "\xC3\xA9", "-", ".", "\"", "\\", "\n", " ", "\t"};
        std::string out;
        for (size_t k = pick(7); k > 0; --k) out += alphabet[pick(alphabet.size())];
        return out;
    }
};

TEST(JsonSchema, RandomPatternsAgreeWithStdRegex) {
    PatternGen gen{Rng{42}};
    int matched = 0;
    for (int i = 0; i < 300; ++i) {
        const std::string pattern = gen.pattern();
        const json schema = {{"type", "string"}, {"pattern", pattern}};
        std::shared_ptr<const Grammar> g;
        try {
            g = grammar_from_json_schema(schema);
        } catch (const SchemaError& e) {
            FAIL() << pattern << ": " << e.what();
        }
        for (int k = 0; k < 60; ++k) {
            const std::string text = k < 5 ? gen.pattern() : gen.text();  // patterns are good near-miss texts
            const bool by_grammar = matches(g, json(text).dump());
            const bool by_regex = validate_json(schema, text).empty();
            matched += by_grammar;
            ASSERT_EQ(by_grammar, by_regex) << "pattern " << pattern << " text " << json(text).dump();
        }
    }
    EXPECT_GT(matched, 500);
}

TEST(GrammarParse, MutatedGrammarsFailCleanly) {
    const std::string base = json_gbnf(false) + "extra ::= [^a-z\\]]{2,5} ( \"x\" | . )* # c\n";
    Rng rng{7};
    const std::string junk = "[]()\"\\{},|*+?#:=-^.\n ax0";
    int ok = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string text = base;
        for (int k = 1 + static_cast<int>(rng.next() % 3); k > 0; --k) {
            const size_t at = rng.next() % text.size();
            switch (rng.next() % 3) {
                case 0: text.erase(at, 1 + rng.next() % 3); break;
                case 1: text.insert(at, 1, junk[rng.next() % junk.size()]); break;
                default: text[at] = junk[rng.next() % junk.size()];
            }
        }
        try {
            GrammarMatcher m(Grammar::parse(text));
            m.accept("{\"a\": [1, \"b\"]}");
            ++ok;
        } catch (const GrammarError&) {
        }
    }
    EXPECT_GT(ok, 100);
}

// ---------------------------------------------------------------- random-logits fuzz

std::vector<json> fuzz_schemas() {
    return {
        json::parse(R"({"type": "object", "required": ["name", "age"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "score": {"type": "number", "minimum": -1, "maximum": 1}, "admin": {"type": "boolean"}, "nick": {"type": ["string", "null"]}}})"),
        json::parse(R"({"type": "array", "items": {"type": "integer", "exclusiveMinimum": -10, "maximum": 10}, "minItems": 2, "maxItems": 5})"),
        json::parse(R"({"type": "object", "properties": {"color": {"enum": ["red", "green", "blue", 7, null]}, "c": {"const": {"k": [1, "two"]}}}, "required": ["color", "c"]})"),
        json::parse(R"({"$defs": {"leaf": {"type": "string", "maxLength": 5}, "node": {"type": "object", "required": ["v"],
            "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}}},
            "type": "object", "required": ["tree"], "definitions": {"leaf": {"$ref": "#/$defs/leaf"}},
            "properties": {"tree": {"$ref": "#/$defs/node"}, "leaves": {"type": "array", "items": {"$ref": "#/definitions/leaf"}}}})"),
        json::parse(R"({"anyOf": [
            {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "exclusiveMinimum": 0}}, "required": ["kind", "r"]},
            {"type": "object", "properties": {"kind": {"const": "rect"}, "w": {"type": "integer"}, "h": {"type": "integer"}}, "required": ["kind", "w", "h"]},
            {"type": "null"}
        ]})"),
        json::parse(R"({"type": "object", "required": ["code", "free", "day", "at", "id", "mail", "t"], "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{2,3}-\\d{2,4}(\\.[a-z]+)?$"}, "free": {"type": "string", "pattern": "é|y[xyz]?"},
            "day": {"type": "string", "format": "date"}, "at": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"}, "mail": {"type": "string", "format": "email"}, "t": {"type": "string", "format": "time"}}})"),
        json::parse(R"({"type": "object", "properties": {"fixed": {"type": "integer"}}, "additionalProperties": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}})"),
        json::parse(R"({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "null"}, "c": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false}}})"),
        json::parse(R"({"oneOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}, {"type": "boolean"}]})"),
        json("json"),
    };
}

TEST(GrammarFuzz, RandomLogitsStories260K) {
    const auto schemas = fuzz_schemas();
    for (size_t i = 0; i < schemas.size(); ++i) {
        SCOPED_TRACE("schema " + std::to_string(i));
        fuzz_schema(schemas[i], stories(), 25, 60);
    }
}

TEST(GrammarFuzz, RandomLogitsLlamaBpe) {
    const auto schemas = fuzz_schemas();
    for (size_t i = 0; i < schemas.size(); ++i) {
        SCOPED_TRACE("schema " + std::to_string(i));
        fuzz_schema(schemas[i], llama_bpe(), 6, 40);
    }
}

TEST(GrammarFuzz, RandomLogitsGbnf) {
    // A raw grammar with nesting and UTF-8: every output is a sentence of the grammar.
    const auto g = Grammar::parse(R"g(
root ::= item ( ", " item ){0,6}
item ::= [a-zα-ω]{1,4} | "(" root ")" | [0-9]+ "€"
)g");
    for (const Tokenizer* tok : {&stories(), &llama_bpe()}) {
        for (uint64_t seed = 0; seed < 10; ++seed) {
            bool finished = false;
            const std::string out = random_generate(g, *tok, seed, 30, finished);
            if (!finished) continue;  // the raw grammar has no closers to boost; skip runs at the cap
            EXPECT_TRUE(matches(g, out)) << out;
        }
    }
}

// ---------------------------------------------------------------- performance (reported)

TEST(GrammarPerf, ApplyOnLlamaBpeVocab) {
    const Tokenizer& tok = llama_bpe();
    TokenTrie::forget(tok);
    const auto t0 = std::chrono::steady_clock::now();
    const auto trie = TokenTrie::get(tok);
    const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[perf] token trie for %d tokens: %zu nodes, built in %.1f ms\n", tok.n_vocab(), trie->nodes().size(), build_ms);
    const auto schema = grammar_from_json_schema(fuzz_schemas()[0]), any = grammar_for_format("json");
    const int32_t n = tok.n_vocab();
    std::vector<float> logits(static_cast<size_t>(n));
    const auto time_apply = [&](const char* label, const std::string& prefix, const std::shared_ptr<const Grammar>& g) {
        GrammarConstraint c(g, trie);
        feed_text(c, tok, prefix);
        std::vector<double> ms;
        for (int r = 0; r < 21; ++r) {
            std::fill(logits.begin(), logits.end(), 1.0f);
            const auto a = std::chrono::steady_clock::now();
            c.apply(logits.data(), n);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
        }
        std::sort(ms.begin() + 1, ms.end());
        const auto allowed = std::count_if(logits.begin(), logits.end(), [](float l) { return std::isfinite(l); });
        std::printf("[perf] apply() %-22s first %.2f ms, then median %.3f ms (%ld allowed)\n", label, ms[0], ms[10], static_cast<long>(allowed));
    };
    time_apply("schema: at start", "", schema);
    time_apply("schema: in a string", "{\"name\": \"Al", schema);
    time_apply("schema: after a key", "{\"name\": \"Al\", \"age\":", schema);
    time_apply("schema: after a value", "{\"name\": \"Al\", \"age\": 5", schema);
    time_apply("json: in a string", "{\"a\": [{\"b\": \"x", any);
    time_apply("json: after a key", "{\"a\": [{\"b\":", any);
}

}  // namespace
}  // namespace hearth
