// libFuzzer target for request decoding: the input is a request body as a client POSTs it to
// /api/generate, /api/chat, /v1/chat/completions or /v1/completions. It goes through what the
// routes share (server/http_util.h, server/request_parse.h, server/tool_choice.h,
// sampling/json_schema.h): the body parser with its nesting cap, the typed field readers, the
// options, keep_alive, the `format` / `response_format` grammars and the forced tool-call
// grammar, the way the Ollama and OpenAI routes read them. (The routes' own message and
// field decoding lives inside their handlers and is not reachable from here.)
//
// Checks: a request the client got wrong is an ApiError 400 (SchemaError / GrammarError for a
// schema, which the routes turn into 400s), never another exception; a body parsed under the
// cap nests no deeper than it. Each grammar compiled from a schema is walked by a
// pseudo-random sentence generator (seeded from the body); a sentence the grammar completes
// must parse as JSON and validate against its schema (json_schema.h: "every sentence parses as
// JSON and validates against the schema"), and a forced tool call must parse back as one call
// to an offered tool.
#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sampling/grammar.h"
#include "sampling/json_schema.h"
#include "server/config.h"
#include "server/http_util.h"
#include "server/request_parse.h"
#include "server/tool_choice.h"
#include "template/tool_calls.h"

using namespace hearth;
using namespace hearth::server;
using json = nlohmann::json;

namespace {

const int kMaxDepth = ServerConfig{}.max_json_depth;  // the daemon's default
constexpr size_t kMaxSentence = 384;

[[noreturn]] void finding(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "fuzz_api_json: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::abort();
}

std::string show(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 2000); }

int depth_of(const json& j) {
    if (!j.is_structured()) return 0;
    int d = 0;
    for (const json& item : j) d = std::max(d, depth_of(item));
    return d + 1;
}

// Runs one decoding step: a 400 ApiError is the client's mistake and ends the request.
bool step(const std::function<void()>& f) {
    try {
        f();
        return true;
    } catch (const ApiError& e) {
        if (e.status() != 400) finding("an ApiError that is not a 400", std::to_string(e.status()) + " " + e.what());
        return false;
    }
}

struct Rng {
    uint64_t s;
    uint64_t next() {  // splitmix64
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
};

// A sentence of the grammar, or nullopt when the walk did not complete one. Mostly it takes
// the bytes that close things ('"', '}', ']') when they are allowed, so walks end; else a
// random printable byte the grammar allows, else (a few tries failing) a random one of all the
// bytes it allows (next_bytes() computes every transition of the state: the slow path).
std::optional<std::string> sentence(const std::shared_ptr<const Grammar>& g, Rng& rng) {
    GrammarMatcher m(g);
    std::string out;
    const auto allowed = [&](int b) { return m.step(m.state(), static_cast<uint8_t>(b)) != GrammarMatcher::kDead; };
    while (out.size() < kMaxSentence) {
        if (m.is_complete() && (!m.can_continue() || rng.next() % 4 == 0)) return out;
        int pick = -1;
        if (out.size() > kMaxSentence / 2 || rng.next() % 4 != 0)
            for (unsigned char c : std::string_view("\"}]0"))
                if (allowed(c)) {
                    pick = c;
                    break;
                }
        for (int i = 0; i < 6 && pick < 0; ++i)
            if (const int b = 0x20 + static_cast<int>(rng.next() % 0x5F); allowed(b)) pick = b;
        if (pick < 0) {
            const std::bitset<256> next = m.next_bytes();
            if (next.none()) {
                if (!m.is_complete()) finding("the grammar can neither go on nor end", out);
                return out;
            }
            size_t k = rng.next() % next.count();
            for (int b = 0; b < 256 && pick < 0; ++b)
                if (next.test(static_cast<size_t>(b)) && k-- == 0) pick = b;
        }
        const std::string byte(1, static_cast<char>(pick));
        if (!m.allows(byte) || !m.accept(byte)) finding("a byte the grammar allows was refused", out);
        out += byte;
    }
    return m.is_complete() ? std::optional<std::string>(out) : std::nullopt;
}

// A sentence the schema's grammar generates must be JSON that validates against the schema.
void check_schema_grammar(const std::shared_ptr<const Grammar>& g, const json& schema, Rng& rng) {
    if (!g) return;
    for (int i = 0; i < 2; ++i) {
        const auto s = sentence(g, rng);
        if (!s) continue;
        const json value = json::parse(*s, nullptr, false);
        if (value.is_discarded()) finding("a sentence of a schema grammar is not JSON", *s + "\nschema: " + show(schema));
        if (schema.is_null()) {
            if (!value.is_object()) finding("format \"json\" generated something else than an object", *s);
            continue;
        }
        const std::string err = validate_json(schema, value);
        // validate_json checks patterns with std::regex, which refuses some that ECMAScript
        // (Annex B) and the grammar converter read literally, such as a lone '{' or ']': it
        // cannot judge those sentences.
        if (err.find(": invalid pattern ") != std::string::npos) continue;
        if (!err.empty()) finding("a sentence of a schema grammar does not validate", *s + "\n" + err + "\nschema: " + show(schema));
    }
}

// Compiles a format; a schema the converter refuses is the client's mistake.
std::shared_ptr<const Grammar> compile(const std::function<std::shared_ptr<const Grammar>()>& f) {
    try {
        return f();
    } catch (const SchemaError&) {
    } catch (const GrammarError&) {
    }
    return nullptr;
}

// tool_choice: a forced call to one of `tools` (or to `only`), written in the Hermes and the
// Llama 3 syntax, must parse back as exactly one call to an offered tool.
void check_forced_calls(const json& tools, const std::string& only, Rng& rng) {
    for (ToolCallFormat f : {ToolCallFormat::Hermes, ToolCallFormat::Llama3Json, ToolCallFormat::MistralNemo}) {
        std::shared_ptr<const Grammar> g;
        try {
            g = forced_tool_grammar(f, tools, only);
        } catch (const SchemaError&) {
            continue;
        } catch (const GrammarError&) {
            continue;
        } catch (const json::exception&) {
            // A tool that is not an object, or a name that is not a string: nlohmann's own
            // errors (the runner answers every exception here with a 400 "tools: ...").
            continue;
        }
        if (!g) continue;
        if (f == ToolCallFormat::MistralNemo) finding("a forced grammar for a syntax forced_tool_grammar does not handle");
        const auto s = sentence(g, rng);
        if (!s) continue;
        const ParsedOutput p = parse_model_output(f, *s, tools);
        if (p.tool_calls.size() != 1 || !p.content.empty())
            finding("a forced tool call does not parse as one call", *s + "\ntools: " + show(tools));
        if (!only.empty() && p.tool_calls[0].name != only) finding("a forced tool call names another tool", *s);
    }
}

// The fields /api/generate and /api/chat read (ollama/generate.cpp).
void ollama(const json& body, Rng& rng) {
    if (!step([&] { (void)get_model_name(body); })) return;
    if (!step([&] { (void)parse_keep_alive(body); })) return;
    if (!step([&] { (void)get_bool(body, "stream", "stream"); })) return;
    GenerateJob job = default_generate_job();
    if (auto it = body.find("options"); it != body.end())
        if (!step([&] { apply_options(*it, job, "options."); })) return;
    if (!step([&] {
            (void)get_bool(body, "logprobs", "logprobs");
            (void)get_int(body, "top_logprobs", "top_logprobs", 0, 20);
            (void)get_string(body, "template", "template");
            (void)get_string(body, "prompt", "prompt");
            (void)get_string(body, "suffix", "suffix");
            (void)get_string(body, "system", "system");
            (void)get_bool(body, "raw", "raw");
        }))
        return;
    if (auto it = body.find("format"); it != body.end() && !it->is_null()) {
        if (it->is_object() || (it->is_string() && (*it == "json" || *it == ""))) {
            const auto g = compile([&] { return grammar_for_format(*it); });
            check_schema_grammar(g, it->is_object() ? *it : json(), rng);
        }
    }
    if (auto it = body.find("messages"); it != body.end() && it->is_array()) {
        for (const json& m : *it)
            if (!step([&] {
                    (void)get_string(m, "role", "messages[].role");
                    (void)get_string(m, "content", "messages[].content");
                }))
                return;
    }
}

// The fields /v1/chat/completions and /v1/completions read (openai/chat.cpp).
void openai(const json& body, Rng& rng) {
    GenerateJob job = default_generate_job();
    json opts = json::object();
    if (!step([&] {
            for (const char* k : {"temperature", "top_p", "frequency_penalty", "presence_penalty"})
                if (auto v = get_number(body, k, k)) opts[k] = *v;
            if (auto v = get_int(body, "seed", "seed", INT64_MIN, INT64_MAX)) opts["seed"] = *v;
            if (auto it = body.find("stop"); it != body.end() && !it->is_null()) opts["stop"] = *it;
            const auto max_tokens = get_int(body, "max_tokens", "max_tokens", 1, 1 << 24);
            const auto max_completion = get_int(body, "max_completion_tokens", "max_completion_tokens", 1, 1 << 24);
            if (auto v = max_completion ? max_completion : max_tokens) opts["num_predict"] = *v;
            apply_options(opts, job, "");
            (void)get_bool(body, "logprobs", "logprobs");
            (void)get_int(body, "top_logprobs", "top_logprobs", 0, 20);
        }))
        return;
    if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
        const auto g = compile([&] { return grammar_for_response_format(*it); });
        if (g) {
            // The schema counts for type "json_schema" only ("json_object": any object).
            const json* schema = nullptr;
            if ((*it)["type"] == "json_schema" && (*it)["json_schema"].contains("schema"))
                schema = &(*it)["json_schema"]["schema"];
            check_schema_grammar(g, schema ? *schema : json(), rng);
        }
    }
    if (auto it = body.find("tools"); it != body.end() && it->is_array() && !it->empty()) {
        std::string only;
        if (auto tc = body.find("tool_choice"); tc != body.end() && tc->is_object() && tc->contains("function") &&
                                                (*tc)["function"].is_object() && (*tc)["function"].contains("name") &&
                                                (*tc)["function"]["name"].is_string())
            only = (*tc)["function"]["name"].get<std::string>();
        check_forced_calls(*it, only, rng);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool shallow = json_depth_ok(text, kMaxDepth);
    json body;
    if (!step([&] { body = parse_json_object(text, kMaxDepth); })) return 0;
    if (!shallow) finding("parse_json_object accepted a body json_depth_ok refuses");
    if (depth_of(body) > kMaxDepth) finding("a parsed body nests deeper than the cap");
    Rng rng{std::hash<std::string_view>{}(text)};
    ollama(body, rng);
    openai(body, rng);
    return 0;
}
