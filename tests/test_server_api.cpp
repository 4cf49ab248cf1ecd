// The daemon over real loopback HTTP: an in-process Server on a free port with a models
// folder of symlinks (stories260K, a synthetic llama, a bert), driven with http::Client.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/embedding.h"
#include "sampling/json_schema.h"
#include "server/server.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// "2024-05-01T12:34:56.123456789Z": RFC 3339 in UTC with nanoseconds, as Ollama writes it.
bool is_rfc3339_nanos(const std::string& s) {
    const std::string shape = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
    if (s.size() != shape.size()) return false;
    for (size_t i = 0; i < s.size(); ++i)
        if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i]) return false;
    return true;
}

class ServerApi : public ::testing::Test {
protected:
    void TearDown() override { stop(); }

    // Starts the server; `tweak` adjusts the test configuration first.
    void start(const std::function<void(ServerConfig&)>& tweak = {}) {
        ServerConfig cfg = test::LoopbackServer::test_config();
        if (tweak) tweak(cfg);
        loop_.start(cfg, directory_resolver(loop_.models_dir()));
        port_ = loop_.port();
    }
    void stop() { loop_.stop(); }
    http::Client client() { return loop_.client(); }
    http::Result post(const std::string& path, const std::string& body, const http::Headers& h = {}) {
        return client().Post(path, h, body, "application/json");
    }
    http::Result post(const std::string& path, const json& body) { return post(path, body.dump()); }
    http::Result options(const std::string& path, const http::Headers& h) {
        http::Client::Call call;
        call.method = "OPTIONS";
        call.path = path;
        call.headers = h;
        return client().send(call);
    }

    // POSTs and parses the NDJSON reply line by line; `on_line` returning false hangs up.
    int post_stream(const std::string& path, const json& body, const std::function<bool(const json&)>& on_line) {
        http::Client c = client();
        std::string buf;
        const http::Receiver receiver = [&](const char* data, size_t n) {
            buf.append(data, n);
            size_t nl;
            while ((nl = buf.find('\n')) != std::string::npos) {
                const json line = json::parse(buf.substr(0, nl));
                buf.erase(0, nl + 1);
                if (!on_line(line)) return false;
            }
            return true;
        };
        auto res = c.Post(path, http::Headers{}, body.dump(), "application/json", receiver);
        return res ? res->status : -1;
    }

    void expect_alive() {
        auto r = client().Get("/api/version");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }

    static json reference() {
        std::ifstream f(test::shared_path("models/stories260K.reference.json"));
        return json::parse(f)[0];
    }
    static json greedy_raw(const std::string& prompt, int n) {
        return {{"model", "stories"}, {"prompt", prompt}, {"raw", true},
                {"options", {{"temperature", 0}, {"repeat_penalty", 1.0}, {"num_predict", n}}}};
    }

    test::LoopbackServer loop_{{{"stories.gguf", "models/stories260K.gguf"},
                                {"llama.gguf", "models/synthetic/llama-q8_0.gguf"},
                                {"bert.gguf", "models/synthetic/bert-mean-f32.gguf"}}};
    int port_ = 0;
};

TEST_F(ServerApi, RootVersionTagsShow) {
    start();
    auto r = client().Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "Hearth is running");
    r = client().Get("/api/version");
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["version"], "9.9.9-test");

    r = client().Get("/api/tags");
    ASSERT_TRUE(r);
    const json tags = json::parse(r->body)["models"];
    ASSERT_EQ(tags.size(), 3u);
    EXPECT_EQ(tags[2]["name"], "stories:latest");
    EXPECT_EQ(tags[2]["details"]["family"], "llama");
    EXPECT_EQ(tags[2]["details"]["format"], "gguf");
    EXPECT_FALSE(tags[2]["details"]["parameter_size"].get<std::string>().empty());
    EXPECT_FALSE(tags[2]["digest"].get<std::string>().empty());
    EXPECT_GT(tags[2]["size"].get<uint64_t>(), 0u);
    EXPECT_EQ(tags[1]["details"]["quantization_level"], "Q8_0");
    EXPECT_TRUE(is_rfc3339_nanos(tags[0]["modified_at"]));

    r = post("/api/show", json{{"model", "stories"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    json show = json::parse(r->body);
    EXPECT_EQ(show["capabilities"], json::array({"completion"}));
    EXPECT_EQ(show["model_info"]["general.architecture"], "llama");
    EXPECT_EQ(show["model_info"]["llama.context_length"], 512);
    EXPECT_TRUE(show["model_info"]["tokenizer.ggml.tokens"].is_null());
    r = post("/api/show", json{{"model", "stories:latest"}, {"verbose", true}});
    EXPECT_TRUE(json::parse(r->body)["model_info"]["tokenizer.ggml.tokens"].is_array());
    r = post("/api/show", json{{"model", "bert"}});
    EXPECT_EQ(json::parse(r->body)["capabilities"], json::array({"embedding"}));
    r = post("/api/show", json{{"model", "nope"}});
    EXPECT_EQ(r->status, 404);
}

TEST_F(ServerApi, GenerateStreamsTheReferenceContinuation) {
    start();
    const json ref = reference();
    std::string text;
    json last;
    int chunks = 0;
    const int status = post_stream("/api/generate", greedy_raw(ref["prompt"], 20), [&](const json& line) {
        if (!line["done"].get<bool>()) {
            EXPECT_EQ(line["model"], "stories");
            EXPECT_TRUE(is_rfc3339_nanos(line["created_at"]));
            text += line["response"].get<std::string>();
            ++chunks;
        } else {
            last = line;
        }
        return true;
    });
    ASSERT_EQ(status, 200);
    const std::string want = ref["generated_text"];
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(want.substr(0, text.size()), text);
    EXPECT_GT(chunks, 5);
    ASSERT_TRUE(last.is_object());
    EXPECT_EQ(last["done_reason"], "length");
    EXPECT_EQ(last["eval_count"], 20);
    EXPECT_EQ(last["prompt_eval_count"], 5);
    EXPECT_EQ(last["context"].size(), 25u);
    EXPECT_EQ(last["context"][0], 1);
    EXPECT_GT(last["total_duration"].get<int64_t>(), 0);
    EXPECT_GT(last["load_duration"].get<int64_t>(), 0);
    EXPECT_GE(last["eval_duration"].get<int64_t>(), 0);

    // The same without streaming: one object with the whole text (model already loaded).
    json body = greedy_raw(ref["prompt"], 20);
    body["stream"] = false;
    auto r = post("/api/generate", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json one = json::parse(r->body);
    EXPECT_EQ(one["response"], text);
    EXPECT_EQ(one["done"], true);
    EXPECT_EQ(one["load_duration"], 0);

    // Log-probabilities in Ollama's shape.
    body["top_logprobs"] = 2;
    body["options"]["num_predict"] = 3;
    r = post("/api/generate", body);
    const json lp = json::parse(r->body)["logprobs"];
    ASSERT_EQ(lp.size(), 3u);
    EXPECT_LE(lp[0]["logprob"].get<double>(), 0.0);
    EXPECT_EQ(lp[0]["top_logprobs"].size(), 2u);
    EXPECT_EQ(lp[0]["top_logprobs"][0]["token"], lp[0]["token"]);

    // A stop string ends the reply before it.
    body.erase("top_logprobs");
    body["options"]["num_predict"] = 40;
    body["options"]["stop"] = json::array({"Lily"});
    r = post("/api/generate", body);
    const json stopped = json::parse(r->body);
    EXPECT_EQ(stopped["done_reason"], "stop");
    EXPECT_EQ(stopped["response"], want.substr(0, want.find("Lily")));
}

TEST_F(ServerApi, ChatWithoutATemplateSendsThePromptAsItIs) {
    start();
    json body = {{"model", "stories"},
                 {"messages", json::array({{{"role", "user"}, {"content", "Tell me a story"}}})},
                 {"options", {{"temperature", 0}, {"num_predict", 8}}},
                 {"stream", false}};
    auto r = post("/api/chat", body);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json out = json::parse(r->body);
    EXPECT_EQ(out["message"]["role"], "assistant");
    EXPECT_TRUE(out["message"]["content"].is_string());
    EXPECT_TRUE(out["done_reason"] == "stop" || out["done_reason"] == "length");
    EXPECT_FALSE(out.contains("context"));
    // No template: Ollama's `{{ .Prompt }}`, the message's text alone (BOS + its tokens).
    json plain = greedy_raw("Tell me a story", 1);
    plain["stream"] = false;
    EXPECT_EQ(out["prompt_eval_count"], json::parse(post("/api/generate", plain)->body)["prompt_eval_count"]);

    body["stream"] = true;
    int lines = 0;
    bool done = false;
    EXPECT_EQ(post_stream("/api/chat", body, [&](const json& line) {
                  ++lines;
                  done = line["done"].get<bool>();
                  if (!done) {
                      EXPECT_EQ(line["message"]["role"], "assistant");
                  }
                  return true;
              }),
              200);
    EXPECT_TRUE(done);
    EXPECT_GE(lines, 2);

    // A request template (Jinja) replaces the model's; images are refused.
    body["stream"] = false;
    body["template"] = "{% for m in messages %}{{ m.content }}{% endfor %}";
    r = post("/api/chat", body);
    json raw = greedy_raw("Tell me a story", 1);
    raw["stream"] = false;
    const json raw_out = json::parse(post("/api/generate", raw)->body);
    EXPECT_EQ(json::parse(r->body)["prompt_eval_count"], raw_out["prompt_eval_count"]);  // BOS + the text
    // Tools reach the template.
    body["tools"] = json::array({{{"type", "function"}, {"function", {{"name", "Tell me a story"}, {"parameters", json::object()}}}}});
    body["template"] = "{{ tools[0].function.name }}";
    r = post("/api/chat", body);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body)["prompt_eval_count"], raw_out["prompt_eval_count"]);
    EXPECT_TRUE(json::parse(r->body)["message"]["content"].is_string());
    // With tools offered the output goes through the tool-call parser (Hermes syntax here):
    // plain text passes, streamed and whole alike.
    body["template"] = "{# <tool_call> #}{{ messages[0].content }}";
    body["options"]["temperature"] = 0;
    r = post("/api/chat", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string whole = json::parse(r->body)["message"]["content"];
    std::string streamed;
    body["stream"] = true;
    EXPECT_EQ(post_stream("/api/chat", body, [&](const json& line) {
                  streamed += line["message"]["content"].get<std::string>();
                  return true;
              }),
              200);
    EXPECT_EQ(streamed, whole);
    body["stream"] = false;
    body.erase("tools");
    body["template"] = "{{ raise_exception('no chat here') }}";
    r = post("/api/chat", body);
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("no chat here"), std::string::npos);
    body.erase("template");
    body["messages"][0]["images"] = json::array({"aGVsbG8="});
    r = post("/api/chat", body);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"], "this model does not support images");
}

// format: "json" and a JSON schema are enforced while sampling, so even this tiny story
// model at temperature 1 answers with JSON that parses and validates.
TEST_F(ServerApi, FormatJsonAndSchemaAlwaysYieldValidJson) {
    start();
    const json schema = {{"type", "object"},
                         {"properties", {{"ok", {{"type", "boolean"}}}, {"n", {{"type", "integer"}, {"minimum", 0}, {"maximum", 99}}}}},
                         {"required", {"ok", "n"}}};
    for (int seed = 1; seed <= 2; ++seed) {
        json body = {{"model", "stories"}, {"prompt", "Once upon a time"}, {"raw", true}, {"stream", false},
                     {"format", schema}, {"options", {{"temperature", 1.0}, {"seed", seed}, {"num_predict", 120}}}};
        auto r = post("/api/generate", body);
        ASSERT_TRUE(r) << r.error_message();
        ASSERT_EQ(r->status, 200) << r->body;
        const json out = json::parse(r->body);
        EXPECT_EQ(out["done_reason"], "stop") << out["response"];
        const json value = json::parse(out["response"].get<std::string>());
        EXPECT_EQ(validate_json(schema, value), "") << value.dump();
        // JSON mode: the output is a JSON object, or (cut by num_predict) the start of one.
        body["format"] = "json";
        body["options"]["num_predict"] = 40;
        r = post("/api/generate", body);
        ASSERT_TRUE(r) << r.error_message();
        ASSERT_EQ(r->status, 200) << r->body;
        const json any = json::parse(r->body);
        const std::string text = any["response"];
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text[0], '{') << text;
        if (any["done_reason"] == "stop") {
            EXPECT_TRUE(json::parse(text).is_object()) << text;
        }
    }
    auto r = post("/api/generate", json{{"model", "stories"}, {"prompt", "x"}, {"format", {{"type", "object"}, {"if", json::object()}}}});
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(r->body.find("if"), std::string::npos) << r->body;
}

TEST_F(ServerApi, EmbeddingsMatchTheReferences) {
    start();
    std::ifstream f(test::shared_path("models/synthetic/bert-embeddings.json"));
    const json refs = json::parse(f);
    std::vector<std::string> texts;
    std::vector<json> want_norm, want_raw;
    for (const auto& r : refs) {
        if (r["file"].get<std::string>().find("bert-mean") == std::string::npos) continue;
        texts.push_back(r["text"]);
        want_norm.push_back(r["embedding_normalized"]);
        want_raw.push_back(r["embedding_raw"]);
    }
    ASSERT_FALSE(texts.empty());
    auto r = post("/api/embed", json{{"model", "bert"}, {"input", texts}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json out = json::parse(r->body);
    ASSERT_EQ(out["embeddings"].size(), texts.size());
    EXPECT_GT(out["prompt_eval_count"].get<int>(), 0);
    for (size_t i = 0; i < texts.size(); ++i) {
        const auto v = out["embeddings"][i].get<std::vector<double>>();
        const auto w = want_norm[i].get<std::vector<double>>();
        ASSERT_EQ(v.size(), w.size());
        double n2 = 0, maxdiff = 0;
        for (size_t k = 0; k < v.size(); ++k) {
            n2 += v[k] * v[k];
            maxdiff = std::max(maxdiff, std::fabs(v[k] - w[k]));
        }
        EXPECT_NEAR(n2, 1.0, 1e-4);
        EXPECT_LT(maxdiff, 1e-3) << texts[i];
    }
    r = post("/api/embeddings", json{{"model", "bert"}, {"prompt", texts[0]}});
    const auto raw = json::parse(r->body)["embedding"].get<std::vector<double>>();
    const auto wraw = want_raw[0].get<std::vector<double>>();
    ASSERT_EQ(raw.size(), wraw.size());
    for (size_t k = 0; k < raw.size(); ++k) EXPECT_NEAR(raw[k], wraw[k], 1e-3 * (1 + std::fabs(wraw[k])));

    // Decoder models: the pooled final hidden state (last token), as the engine computes it.
    r = post("/api/embed", json{{"model", "stories"}, {"input", json::array({"Once upon a time", "hi"})}});
    ASSERT_EQ(r->status, 200) << r->body;
    const json dec = json::parse(r->body)["embeddings"];
    ASSERT_EQ(dec.size(), 2u);
    {
        auto model = Model::load(test::shared_path("models/stories260K.gguf"));
        ContextParams cp;
        cp.n_ctx = 64;
        cp.n_threads = 1;
        Context ctx(*model, cp);
        const auto want = embed_sequence(ctx, 0, model->tokenizer().encode("Once upon a time", true, false), Pooling::Last, true);
        const auto got = dec[0].get<std::vector<double>>();
        ASSERT_EQ(got.size(), want.size());
        for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-5);
        EXPECT_NE(dec[0], dec[1]);
    }
    r = post("/api/generate", json{{"model", "bert"}, {"prompt", "hi"}});
    EXPECT_EQ(r->status, 400);
}

TEST_F(ServerApi, LoadPsAndKeepAliveZeroUnload) {
    start();
    auto r = post("/api/generate", json{{"model", "stories"}});
    ASSERT_TRUE(r);
    json out = json::parse(r->body);
    EXPECT_EQ(out["done"], true);
    EXPECT_EQ(out["done_reason"], "load");
    r = client().Get("/api/ps");
    json ps = json::parse(r->body)["models"];
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_EQ(ps[0]["name"], "stories:latest");  // as /api/tags names it
    EXPECT_EQ(ps[0]["context_length"], 512);
    EXPECT_EQ(ps[0]["size_vram"], 0);
    EXPECT_GT(ps[0]["size"].get<uint64_t>(), 0u);
    EXPECT_EQ(ps[0]["details"]["family"], "llama");

    r = post("/api/generate", json{{"model", "stories"}, {"keep_alive", 0}});
    out = json::parse(r->body);
    EXPECT_EQ(out["done_reason"], "unload");
    for (int i = 0; i < 200 && !json::parse(client().Get("/api/ps")->body)["models"].empty(); ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(json::parse(client().Get("/api/ps")->body)["models"].empty());
    EXPECT_EQ(loop_.server().models().stats().unloads, 1u);

    // keep_alive 0 on a real request unloads right after it.
    json body = greedy_raw("Once", 2);
    body["keep_alive"] = "0s";
    body["stream"] = false;
    EXPECT_EQ(post("/api/generate", body)->status, 200);
    for (int i = 0; i < 200 && loop_.server().models().stats().unloads < 2; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(loop_.server().models().stats().unloads, 2u);

    // A short keep_alive (seconds as a number) expires on its own; a negative one never does.
    EXPECT_EQ(post("/api/generate", json{{"model", "stories"}, {"keep_alive", 0.2}})->status, 200);
    EXPECT_EQ(post("/api/generate", json{{"model", "llama"}, {"keep_alive", -1}})->status, 200);
    EXPECT_EQ(json::parse(client().Get("/api/ps")->body)["models"].size(), 2u);
    for (int i = 0; i < 300 && loop_.server().models().stats().unloads < 3; ++i) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(50ms);
    ps = json::parse(client().Get("/api/ps")->body)["models"];
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_EQ(ps[0]["name"], "llama:latest");
}

TEST_F(ServerApi, ErrorsAreJsonAndTheServerKeepsServing) {
    start();
    auto check = [&](const std::string& path, const std::string& body, int status, const std::string& needle) {
        auto r = post(path, body);
        ASSERT_TRUE(r) << body;
        EXPECT_EQ(r->status, status) << body << " -> " << r->body;
        json err;
        ASSERT_NO_THROW(err = json::parse(r->body)) << r->body;
        ASSERT_TRUE(err["error"].is_string()) << r->body;
        EXPECT_NE(err["error"].get<std::string>().find(needle), std::string::npos) << err["error"];
        expect_alive();
    };
    check("/api/generate", R"({"model": "ghost", "prompt": "x"})", 404, "model \"ghost\" not found, try pulling it first");
    check("/api/chat", R"({"model": "ghost"})", 404, "not found");
    check("/api/generate", R"({"model": "stories", "prompt": )", 400, "invalid JSON");
    check("/api/generate", R"([1, 2])", 400, "JSON object");
    check("/api/generate", R"({"prompt": "x"})", 400, "model is required");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"temperature": -1}})", 400, "temperature");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"temperature": NaN}})", 400, "invalid JSON");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"top_k": 1e300}})", 400, "options.top_k");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"top_k": 1e999}})", 400, "invalid JSON");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"repeat_penalty": 1e30}})", 400,
          "repeat_penalty");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "options": {"num_predict": -7}})", 400, "num_predict");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "keep_alive": "soon"})", 400, "keep_alive");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "suffix": "y"})", 400, "suffix");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "stream": "yes"})", 400, "stream");
    check("/api/generate", R"({"model": "stories", "prompt": "x", "format": 5})", 400, "format");
    check("/api/chat", R"({"model": "stories", "messages": "hi"})", 400, "messages");
    check("/api/chat", R"({"model": "stories", "messages": [{"content": "hi"}]})", 400, "messages[0].role");
    check("/api/embed", R"({"model": "bert", "input": [1]})", 400, "input");
    std::string deep = R"({"model": "stories", "x": )" + std::string(100, '[') + std::string(100, ']') + "}";
    check("/api/generate", deep, 400, "nested deeper");
    std::string long_prompt;
    for (int i = 0; i < 60; ++i) long_prompt += "Once upon a time ";
    check("/api/generate", json{{"model", "stories"}, {"prompt", long_prompt}, {"raw", true}, {"options", {{"num_ctx", 32}}}}.dump(),
          400, "more than the context length of 32");
    auto r = client().Get("/api/nothing-here");
    EXPECT_EQ(r->status, 404);
    EXPECT_TRUE(json::parse(r->body)["error"].is_string());
    // format is accepted (kept for the grammar engine) and the model still answers.
    json ok = greedy_raw("Once", 3);
    ok["stream"] = false;
    ok["format"] = "json";
    r = post("/api/generate", ok);
    EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ServerApi, BodyOverTheCapIs413) {
    start([](ServerConfig& c) { c.max_body = 1024; });
    json body = greedy_raw(std::string(4096, 'a'), 1);
    auto r = post("/api/generate", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(json::parse(r->body)["error"].is_string());
    expect_alive();
    EXPECT_EQ(post("/api/show", json{{"model", "stories"}})->status, 200);
}

TEST_F(ServerApi, ApiKeysGuardEveryRouteButRootAndVersion) {
    start([](ServerConfig& c) { c.api_keys = {"k-one", "k-two"}; });
    EXPECT_EQ(client().Get("/")->status, 200);
    EXPECT_EQ(client().Get("/api/version")->status, 200);
    auto r = client().Get("/api/tags");
    EXPECT_EQ(r->status, 401);
    EXPECT_TRUE(json::parse(r->body)["error"].is_string());
    EXPECT_EQ(client().Get("/api/tags", {{"Authorization", "Bearer k-three"}})->status, 401);
    EXPECT_EQ(client().Get("/api/tags", {{"Authorization", "Bearer "}})->status, 401);
    EXPECT_EQ(client().Get("/api/tags", {{"Authorization", "k-one"}})->status, 401);
    EXPECT_EQ(client().Get("/api/tags", {{"Authorization", "Bearer k-two"}})->status, 200);
    r = post("/api/show", json{{"model", "stories"}}.dump(), {{"Authorization", "Bearer k-one"}});
    EXPECT_EQ(r->status, 200);
    r = post("/v1/chat/completions", std::string("{}"));  // OpenAI routes get OpenAI's error shape
    EXPECT_EQ(r->status, 401);
    EXPECT_TRUE(json::parse(r->body)["error"]["message"].is_string());
}

TEST_F(ServerApi, RefusesAnOpenBindWithoutAKey) {
    ServerConfig cfg;
    cfg.host = "0.0.0.0";
    cfg.port = 0;
    Server s(cfg, directory_resolver(""));
    EXPECT_THROW(s.bind(), std::runtime_error);
}

TEST_F(ServerApi, HostHeaderAndCors) {
    start();
    EXPECT_EQ(client().Get("/api/tags", {{"Host", "attacker.example"}})->status, 403);
    EXPECT_EQ(client().Get("/api/tags", {{"Host", "attacker.example:11434"}})->status, 403);
    EXPECT_EQ(client().Get("/api/tags", {{"Host", "localhost:11434"}})->status, 200);
    EXPECT_EQ(client().Get("/api/tags", {{"Host", "[::1]:11434"}})->status, 200);
    EXPECT_EQ(client().Get("/api/tags", {{"Host", "127.0.0.1"}})->status, 200);

    auto r = options("/api/chat", {{"Origin", "http://localhost:3000"}, {"Access-Control-Request-Method", "POST"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
    EXPECT_EQ(options("/api/chat", {{"Origin", "http://evil.example"}})->status, 403);
    r = client().Get("/api/version", {{"Origin", "http://127.0.0.1:8080"}});
    EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://127.0.0.1:8080");
    r = client().Get("/api/version", {{"Origin", "http://evil.example"}});
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
}

TEST_F(ServerApi, ClientDisconnectStopsTheGeneration) {
    start([](ServerConfig& c) { c.manager.debug_token_delay = 20ms; });  // ~10 s for 512 tokens
    json body = greedy_raw("Once upon a time", 5000);
    int seen = 0;
    const auto t0 = std::chrono::steady_clock::now();
    post_stream("/api/generate", body, [&](const json&) { return ++seen < 3; });
    EXPECT_EQ(seen, 3);
    for (int i = 0; i < 300 && loop_.server().models().stats().cancelled == 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(loop_.server().models().stats().cancelled, 1u);
    // The next request runs at once, not after the abandoned one.
    body["options"]["num_predict"] = 3;
    body["stream"] = false;
    auto r = post("/api/generate", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(json::parse(r->body)["eval_count"], 3);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

TEST_F(ServerApi, ConcurrentRequestsToOneModelBothComplete) {
    start();
    std::vector<int> status(3, 0);
    std::vector<std::string> text(3);
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&, i] {
            json body = greedy_raw("Once upon a time", 12);
            body["stream"] = false;
            auto r = post("/api/generate", body);
            if (!r) return;
            status[i] = r->status;
            text[i] = json::parse(r->body)["response"];
        });
    for (auto& t : ts) t.join();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(status[i], 200);
    EXPECT_FALSE(text[0].empty());
    EXPECT_EQ(text[0], text[1]);
    EXPECT_EQ(text[1], text[2]);
    EXPECT_EQ(loop_.server().models().stats().loads, 1u);
}

TEST_F(ServerApi, FullQueueAnswers503WithRetryAfter) {
    start([](ServerConfig& c) {
        c.manager.max_queue = 1;
        c.manager.num_parallel = 1;  // one running sequence: later requests queue
        c.manager.debug_token_delay = 20ms;
    });
    std::atomic<bool> started{false}, release{false};
    std::thread running([&] {  // occupies the runner until released
        post_stream("/api/generate", greedy_raw("Once", 400), [&](const json&) {
            started = true;
            return !release.load();
        });
    });
    for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(started);
    // Three more while the runner is busy: one waits in the queue (size 1), two are refused.
    std::vector<int> status(3, 0);
    std::vector<std::string> retry(3);
    std::atomic<int> refused{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&, i] {
            json b = greedy_raw("Once", 2);
            b["stream"] = false;
            auto r = post("/api/generate", b);
            if (!r) return;
            status[i] = r->status;
            retry[i] = r->get_header_value("Retry-After");
            if (r->status == 503) {
                EXPECT_TRUE(json::parse(r->body)["error"].is_string());
                refused++;
            }
        });
    for (int i = 0; i < 500 && refused < 2; ++i) std::this_thread::sleep_for(10ms);
    release = true;  // the first request's client hangs up; the queued one runs
    for (auto& t : ts) t.join();
    running.join();
    std::sort(status.begin(), status.end());
    EXPECT_EQ(status, (std::vector<int>{200, 503, 503}));
    EXPECT_EQ(std::count(retry.begin(), retry.end(), "1"), 2);
}

TEST_F(ServerApi, LeastRecentlyUsedModelIsEvicted) {
    start([](ServerConfig& c) { c.manager.max_loaded = 1; });
    EXPECT_EQ(json::parse(post("/api/generate", json{{"model", "stories"}})->body)["done_reason"], "load");
    EXPECT_EQ(json::parse(post("/api/generate", json{{"model", "llama"}})->body)["done_reason"], "load");
    const json ps = json::parse(client().Get("/api/ps")->body)["models"];
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_EQ(ps[0]["name"], "llama:latest");
}

}  // namespace
}  // namespace hearth::server
