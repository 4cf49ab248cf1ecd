// The OpenAI-compatible routes (/v1/*) over real loopback HTTP: an in-process Server on a
// free port with a models folder of symlinks (stories260K, a bert), driven with
// http::Client.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/client.h"
#include "sampling/json_schema.h"
#include "server/server.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::vector<unsigned char> base64_decode(const std::string& s) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::vector<unsigned char> out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : s) {
        const int v = val(c);
        if (v < 0) continue;  // '=' padding
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

class OpenAi : public ::testing::Test {
protected:
    void TearDown() override { loop_.stop(); }

    // Starts the server; `templates` gives models (by name) a chat template override.
    void start(std::map<std::string, std::string> templates = {}) {
        ModelResolver resolver = directory_resolver(loop_.models_dir());
        if (!templates.empty()) {
            resolver.resolve = [base = resolver.resolve, templates](const std::string& name) {
                auto m = base(name);
                if (auto it = templates.find(name); m && it != templates.end()) m->template_override = it->second;
                return m;
            };
        }
        loop_.start(test::LoopbackServer::test_config(), resolver);
    }
    http::Client client() { return loop_.client(); }
    http::Result post(const std::string& path, const std::string& body) {
        return client().Post(path, body, "application/json");
    }
    http::Result post(const std::string& path, const json& body) { return post(path, body.dump()); }
    json post_ok(const std::string& path, const json& body) {
        auto r = post(path, body);
        if (!r) {
            ADD_FAILURE() << "no reply";
            return json();
        }
        EXPECT_EQ(r->status, 200) << r->body;
        return json::parse(r->body);
    }

    // POSTs and returns the SSE events' data fields in order ("[DONE]" kept as a string).
    std::vector<std::string> post_sse(const std::string& path, const json& body, std::string* content_type = nullptr) {
        http::Client c = client();
        auto r = c.Post(path, body.dump(), "application/json");
        std::vector<std::string> out;
        if (!r) {
            ADD_FAILURE() << "no reply";
            return out;
        }
        EXPECT_EQ(r->status, 200) << r->body;
        if (content_type) *content_type = r->get_header_value("Content-Type");
        const std::string& b = r->body;
        size_t pos = 0;
        while (pos < b.size()) {
            const size_t end = b.find("\n\n", pos);
            EXPECT_NE(end, std::string::npos) << "unterminated event";
            if (end == std::string::npos) break;
            const std::string ev = b.substr(pos, end - pos);
            EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
            out.push_back(ev.substr(6));
            pos = end + 2;
        }
        return out;
    }

    static json reference() {
        std::ifstream f(test::shared_path("models/stories260K.reference.json"));
        return json::parse(f)[0];
    }
    static json chat_body() {
        return {{"model", "stories"},
                {"messages", json::array({{{"role", "user"}, {"content", "Tell me a story"}}})},
                {"temperature", 0},
                {"seed", 7},
                {"max_tokens", 12}};
    }
    static void expect_error(const http::Result& r, int status, const std::string& type, const std::string& param,
                             const std::string& code = "") {
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << r->body;
        const json j = json::parse(r->body);
        ASSERT_TRUE(j["error"].is_object()) << r->body;
        EXPECT_TRUE(j["error"]["message"].is_string());
        EXPECT_EQ(j["error"]["type"], type) << r->body;
        if (param.empty()) EXPECT_TRUE(j["error"]["param"].is_null()) << r->body;
        else EXPECT_EQ(j["error"]["param"], param) << r->body;
        if (code.empty()) EXPECT_TRUE(j["error"]["code"].is_null()) << r->body;
        else EXPECT_EQ(j["error"]["code"], code) << r->body;
    }

    test::LoopbackServer loop_{{{"stories.gguf", "models/stories260K.gguf"},
                                {"bert.gguf", "models/synthetic/bert-mean-f32.gguf"}}};
};

TEST_F(OpenAi, ChatStreamingMatchesNonStreaming) {
    start();
    const json one = post_ok("/v1/chat/completions", chat_body());
    EXPECT_EQ(one["object"], "chat.completion");
    EXPECT_EQ(one["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
    EXPECT_EQ(one["model"], "stories");
    EXPECT_GT(one["created"].get<int64_t>(), 1'600'000'000);
    EXPECT_TRUE(one["system_fingerprint"].is_string());
    ASSERT_EQ(one["choices"].size(), 1u);
    const json& choice = one["choices"][0];
    EXPECT_EQ(choice["index"], 0);
    EXPECT_EQ(choice["message"]["role"], "assistant");
    const std::string content = choice["message"]["content"];
    EXPECT_FALSE(content.empty());
    EXPECT_EQ(choice["finish_reason"], "length");
    EXPECT_EQ(one["usage"]["completion_tokens"], 12);
    EXPECT_GT(one["usage"]["prompt_tokens"].get<int>(), 0);
    EXPECT_EQ(one["usage"]["total_tokens"].get<int>(),
              one["usage"]["prompt_tokens"].get<int>() + one["usage"]["completion_tokens"].get<int>());

    // Streaming, with the content given as text parts, and a usage chunk at the end.
    json body = chat_body();
    body["messages"][0]["content"] = json::array({{{"type", "text"}, {"text", "Tell me "}}, {{"type", "text"}, {"text", "a story"}}});
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    std::string type;
    const std::vector<std::string> events = post_sse("/v1/chat/completions", body, &type);
    EXPECT_EQ(type.rfind("text/event-stream", 0), 0u) << type;
    ASSERT_GE(events.size(), 4u);
    EXPECT_EQ(events.back(), "[DONE]");
    const json first = json::parse(events[0]);
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    std::string streamed;
    std::string finish;
    for (size_t i = 0; i + 2 < events.size(); ++i) {
        const json chunk = json::parse(events[i]);
        EXPECT_EQ(chunk["id"], first["id"]);
        ASSERT_EQ(chunk["choices"].size(), 1u);
        const json& c = chunk["choices"][0];
        if (c["delta"].contains("content")) streamed += c["delta"]["content"].get<std::string>();
        if (!c["finish_reason"].is_null()) {
            EXPECT_EQ(i + 3, events.size()) << "finish_reason before the last chunk";
            finish = c["finish_reason"];
        }
    }
    EXPECT_EQ(streamed, content);
    EXPECT_EQ(finish, "length");
    const json usage = json::parse(events[events.size() - 2]);
    EXPECT_TRUE(usage["choices"].empty());
    // The same usage, except that the second request found the prompt in the prefix cache.
    EXPECT_EQ(one["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    const int n_prompt = one["usage"]["prompt_tokens"];
    EXPECT_EQ(usage["usage"]["prompt_tokens_details"]["cached_tokens"], (n_prompt - 1) / 16 * 16);
    json same = usage["usage"];
    same["prompt_tokens_details"] = one["usage"]["prompt_tokens_details"];
    EXPECT_EQ(same, one["usage"]);
}

TEST_F(OpenAi, ChatLogprobs) {
    start();
    json body = chat_body();
    body["logprobs"] = true;
    body["top_logprobs"] = 2;
    body["max_tokens"] = 4;
    const json one = post_ok("/v1/chat/completions", body);
    const json& lp = one["choices"][0]["logprobs"]["content"];
    ASSERT_EQ(lp.size(), 4u);
    for (const json& e : lp) {
        EXPECT_TRUE(e["token"].is_string());
        EXPECT_LE(e["logprob"].get<double>(), 0.0);
        EXPECT_EQ(e["bytes"].size(), e["token"].get<std::string>().size());
        EXPECT_EQ(e["top_logprobs"].size(), 2u);
    }
}

TEST_F(OpenAi, CompletionsMaxTokensStopAndStreaming) {
    start();
    const json ref = reference();
    const std::string want = ref["generated_text"];
    json body = {{"model", "stories"}, {"prompt", ref["prompt"]}, {"temperature", 0}, {"max_tokens", 20}};
    const json one = post_ok("/v1/completions", body);
    EXPECT_EQ(one["object"], "text_completion");
    const std::string text = one["choices"][0]["text"];
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(want.substr(0, text.size()), text);
    EXPECT_EQ(one["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(one["usage"]["completion_tokens"], 20);

    body["stream"] = true;
    const std::vector<std::string> events = post_sse("/v1/completions", body);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string streamed;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
        const json c = json::parse(events[i]);
        EXPECT_EQ(c["object"], "text_completion");
        streamed += c["choices"][0]["text"].get<std::string>();
    }
    EXPECT_EQ(streamed, text);
    EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");

    // A stop string cut from the middle of the text ends it there, unwritten.
    const size_t cut = text.size() / 2;
    const std::string stop = text.substr(cut, 3);
    body["stream"] = false;
    body["stop"] = json::array({stop, "never-appears"});
    const json stopped = post_ok("/v1/completions", body);
    EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(stopped["choices"][0]["text"], text.substr(0, text.find(stop)));
}

TEST_F(OpenAi, ResponseFormatJsonSchema) {
    start();
    const json schema = {{"type", "object"},
                         {"properties", {{"ok", {{"type", "boolean"}}}, {"n", {{"type", "integer"}, {"minimum", 0}, {"maximum", 99}}}}},
                         {"required", {"ok", "n"}}};
    json body = chat_body();
    body["temperature"] = 1.0;
    body["max_tokens"] = 120;
    body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}}}};
    const json one = post_ok("/v1/chat/completions", body);
    EXPECT_EQ(one["choices"][0]["finish_reason"], "stop");
    const json value = json::parse(one["choices"][0]["message"]["content"].get<std::string>());
    EXPECT_EQ(validate_json(schema, value), "") << value.dump();
}

// Tools and assistant tool calls (arguments as a JSON string) reach the chat template; with
// tools offered the output goes through the tool-call parser and plain text passes.
TEST_F(OpenAi, ToolsReachTheTemplate) {
    start({{"stories", "{{ tools[0].function.name }}{{ messages[1].tool_calls[0].function.arguments.city }}"}});
    const json raw = post_ok("/v1/completions", json{{"model", "stories"}, {"prompt", "Tell me a storyParis"}, {"max_tokens", 1}});
    json body = chat_body();
    body["messages"].push_back({{"role", "assistant"},
                                {"content", nullptr},
                                {"tool_calls", json::array({{{"id", "call_1"},
                                                             {"type", "function"},
                                                             {"function", {{"name", "weather"}, {"arguments", R"({"city":"Paris"})"}}}}})}});
    body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}});
    body["tools"] = json::array({{{"type", "function"}, {"function", {{"name", "Tell me a story"}, {"parameters", json::object()}}}}});
    body["tool_choice"] = "auto";
    const json one = post_ok("/v1/chat/completions", body);
    EXPECT_EQ(one["usage"]["prompt_tokens"], raw["usage"]["prompt_tokens"]);
    EXPECT_TRUE(one["choices"][0]["message"]["content"].is_string());
    EXPECT_EQ(one["choices"][0]["finish_reason"], "length");
    body["tool_choice"] = 5;
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "tool_choice");
}

TEST_F(OpenAi, ModelsListGetAndMissing) {
    start();
    auto r = client().Get("/v1/models");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json list = json::parse(r->body);
    EXPECT_EQ(list["object"], "list");
    ASSERT_EQ(list["data"].size(), 2u);
    bool found = false;
    for (const json& m : list["data"]) {
        EXPECT_EQ(m["object"], "model");
        EXPECT_EQ(m["owned_by"], "library");
        EXPECT_GT(m["created"].get<int64_t>(), 0);
        if (m["id"].get<std::string>().rfind("stories", 0) == 0) found = true;
    }
    EXPECT_TRUE(found);
    r = client().Get("/v1/models/stories");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json m = json::parse(r->body);
    EXPECT_EQ(m["id"], "stories");
    EXPECT_EQ(m["object"], "model");
    expect_error(client().Get("/v1/models/ghost"), 404, "invalid_request_error", "model", "model_not_found");
}

TEST_F(OpenAi, EmbeddingsFloatAndBase64) {
    start();
    const json texts = json::array({"hello world", "a second input"});
    const json f = post_ok("/v1/embeddings", json{{"model", "bert"}, {"input", texts}});
    EXPECT_EQ(f["object"], "list");
    EXPECT_EQ(f["model"], "bert");
    ASSERT_EQ(f["data"].size(), 2u);
    EXPECT_EQ(f["data"][1]["index"], 1);
    EXPECT_EQ(f["data"][0]["object"], "embedding");
    EXPECT_GT(f["usage"]["prompt_tokens"].get<int>(), 0);
    EXPECT_EQ(f["usage"]["total_tokens"], f["usage"]["prompt_tokens"]);
    const std::vector<float> v0 = f["data"][0]["embedding"];
    ASSERT_FALSE(v0.empty());

    const json b = post_ok("/v1/embeddings", json{{"model", "bert"}, {"input", texts}, {"encoding_format", "base64"}});
    ASSERT_EQ(b["data"].size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        const std::vector<float> want = f["data"][i]["embedding"];
        const std::vector<unsigned char> bytes = base64_decode(b["data"][i]["embedding"].get<std::string>());
        ASSERT_EQ(bytes.size(), want.size() * 4);
        for (size_t k = 0; k < want.size(); ++k) {
            const uint32_t u = uint32_t(bytes[4 * k]) | uint32_t(bytes[4 * k + 1]) << 8 | uint32_t(bytes[4 * k + 2]) << 16 |
                               uint32_t(bytes[4 * k + 3]) << 24;
            float x;
            std::memcpy(&x, &u, 4);
            ASSERT_FLOAT_EQ(x, want[k]) << k;
        }
    }
    const json single = post_ok("/v1/embeddings", json{{"model", "bert"}, {"input", "hello world"}});
    EXPECT_EQ(single["data"][0]["embedding"], f["data"][0]["embedding"]);
    expect_error(post("/v1/embeddings", json{{"model", "bert"}, {"input", json::array({json::array({1, 2})})}}), 400,
                 "invalid_request_error", "input");
    expect_error(post("/v1/embeddings", json{{"model", "bert"}, {"input", "x"}, {"encoding_format", "hex"}}), 400,
                 "invalid_request_error", "encoding_format");
}

TEST_F(OpenAi, ErrorsInOpenAiShape) {
    start();
    json body = chat_body();
    body["model"] = "ghost";
    expect_error(post("/v1/chat/completions", body), 404, "invalid_request_error", "model", "model_not_found");
    expect_error(post("/v1/chat/completions", std::string("{not json")), 400, "invalid_request_error", "");
    body = chat_body();
    body["n"] = 2;
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "n");
    body = chat_body();
    body["temperature"] = 3;
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "temperature");
    body = chat_body();
    body["messages"] = json::array();
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "messages");
    body = chat_body();
    body["logit_bias"] = {{"abc", 1}};
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "logit_bias");
    body = chat_body();
    body["response_format"] = {{"type", "xml"}};
    expect_error(post("/v1/chat/completions", body), 400, "invalid_request_error", "response_format.type");
    expect_error(post("/v1/completions", json{{"model", "stories"}, {"prompt", 5}}), 400, "invalid_request_error", "prompt");
    expect_error(post("/v1/completions", json{{"model", "stories"}, {"prompt", "x"}, {"max_tokens", -1}}), 400,
                 "invalid_request_error", "max_tokens");
}

}  // namespace
}  // namespace hearth::server
