// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) over real loopback
// HTTP: reply shape, the SSE event sequence, tools forced and round-tripped, stop sequences,
// count_tokens, API keys and errors in Anthropic's shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "sampling/json_schema.h"
#include "support/api_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

class Anthropic : public test::ApiFixture {
protected:
    static json request(const std::string& model, int max_tokens = 12) {
        return {{"model", model},
                {"max_tokens", max_tokens},
                {"temperature", 0},
                {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})}};
    }
    static json weather_tool() {
        return {{"name", "get_weather"},
                {"description", "The weather in a city"},
                {"input_schema",
                 {{"type", "object"},
                  {"properties", {{"city", {{"type", "string"}, {"enum", {"Paris", "Oslo"}}}}}},
                  {"required", {"city"}}}}};
    }
};

TEST_F(Anthropic, CreateGivesAMessageWithTheGreedyText) {
    start();
    const json m = post_ok("/v1/messages", request("stories"));
    EXPECT_EQ(m["type"], "message");
    EXPECT_EQ(m["role"], "assistant");
    EXPECT_EQ(m["model"], "stories");
    EXPECT_EQ(m["id"].get<std::string>().rfind("msg_", 0), 0u);
    ASSERT_EQ(m["content"].size(), 1u);
    EXPECT_EQ(m["content"][0]["type"], "text");
    EXPECT_EQ(m["stop_reason"], "max_tokens");
    EXPECT_TRUE(m["stop_sequence"].is_null());
    EXPECT_EQ(m["usage"]["output_tokens"], 12);
    // No template: the user text goes in as it is, so this is the model's greedy continuation
    // (Ollama's default sampling, as for /api/chat).
    const json chat = post_ok("/api/chat", {{"model", "stories"},
                                            {"messages", request("stories")["messages"]},
                                            {"stream", false},
                                            {"options", {{"temperature", 0}, {"num_predict", 12}}}});
    EXPECT_EQ(m["content"][0]["text"], chat["message"]["content"]);
    EXPECT_EQ(m["usage"]["input_tokens"], chat["prompt_eval_count"]);

    // System text (string or blocks) reaches a template that shows it: the prompt grows.
    json sys = request("stories-tools");
    const int bare = post_ok("/v1/messages", sys)["usage"]["input_tokens"];
    sys["system"] = json::array({{{"type", "text"}, {"text", "You tell stories."}}});
    EXPECT_GT(post_ok("/v1/messages", sys)["usage"]["input_tokens"].get<int>(), bare);
}

TEST_F(Anthropic, StreamFollowsAnthropicsEventSequence) {
    start();
    const json whole = post_ok("/v1/messages", request("stories"));
    json body = request("stories");
    body["stream"] = true;
    int status = 0;
    const std::vector<test::SseEvent> events = post_sse("/v1/messages", body, &status);
    ASSERT_EQ(status, 200);
    ASSERT_GE(events.size(), 6u);
    std::vector<std::string> names;
    for (const auto& e : events) {
        EXPECT_EQ(e.data["type"], e.name);  // `event:` and data.type agree
        names.push_back(e.name);
    }
    EXPECT_EQ(names[0], "message_start");
    EXPECT_EQ(names[1], "ping");
    EXPECT_EQ(names[2], "content_block_start");
    EXPECT_EQ(names[names.size() - 3], "content_block_stop");
    EXPECT_EQ(names[names.size() - 2], "message_delta");
    EXPECT_EQ(names.back(), "message_stop");
    const json& start_msg = events[0].data["message"];
    EXPECT_EQ(start_msg["role"], "assistant");
    EXPECT_TRUE(start_msg["content"].empty());
    EXPECT_EQ(start_msg["usage"]["input_tokens"], whole["usage"]["input_tokens"]);
    std::string text;
    for (size_t i = 3; i + 3 < events.size(); ++i) {
        ASSERT_EQ(names[i], "content_block_delta");
        EXPECT_EQ(events[i].data["index"], 0);
        EXPECT_EQ(events[i].data["delta"]["type"], "text_delta");
        text += events[i].data["delta"]["text"].get<std::string>();
    }
    EXPECT_EQ(text, whole["content"][0]["text"]);
    const json& delta = events[events.size() - 2].data;
    EXPECT_EQ(delta["delta"]["stop_reason"], "max_tokens");
    EXPECT_EQ(delta["usage"]["output_tokens"], 12);
}

TEST_F(Anthropic, StopSequenceIsReported) {
    start();
    json body = request("stories", 40);
    const std::string text = post_ok("/v1/messages", body)["content"][0]["text"];
    const size_t at = text.find("Lily");
    ASSERT_NE(at, std::string::npos) << text;
    body["stop_sequences"] = {"Lily", "zzz"};
    const json m = post_ok("/v1/messages", body);
    EXPECT_EQ(m["stop_reason"], "stop_sequence");
    EXPECT_EQ(m["stop_sequence"], "Lily");
    EXPECT_EQ(m["content"][0]["text"], text.substr(0, at));
}

TEST_F(Anthropic, ForcedToolUseRoundTrip) {
    start();
    json body = request("stories-tools", 160);
    body["tools"] = json::array({weather_tool()});
    body["tool_choice"] = {{"type", "any"}};
    const json m = post_ok("/v1/messages", body);
    EXPECT_EQ(m["stop_reason"], "tool_use");
    json use;
    for (const json& b : m["content"])
        if (b["type"] == "tool_use") use = b;
    ASSERT_TRUE(use.is_object()) << m.dump();
    EXPECT_EQ(use["name"], "get_weather");
    EXPECT_EQ(use["id"].get<std::string>().rfind("toolu_", 0), 0u);
    EXPECT_TRUE(validate_json(weather_tool()["input_schema"], use["input"]).empty()) << use.dump();

    // Streamed: the call is one tool_use block whose input_json_delta parses to the input.
    body["stream"] = true;
    const auto events = post_sse("/v1/messages", body);
    std::string partial;
    bool started = false;
    for (const auto& e : events) {
        if (e.name == "content_block_start" && e.data["content_block"]["type"] == "tool_use") {
            started = true;
            EXPECT_EQ(e.data["content_block"]["name"], "get_weather");
            EXPECT_EQ(e.data["content_block"]["input"], json::object());
        }
        if (e.name == "content_block_delta" && e.data["delta"]["type"] == "input_json_delta")
            partial += e.data["delta"]["partial_json"].get<std::string>();
        if (e.name == "message_delta") {
            EXPECT_EQ(e.data["delta"]["stop_reason"], "tool_use");
        }
    }
    EXPECT_TRUE(started);
    EXPECT_EQ(json::parse(partial), use["input"]);

    // The result goes back as a tool_result block; the template shows the call.
    body.erase("stream");
    body.erase("tool_choice");
    body["messages"].push_back({{"role", "assistant"}, {"content", m["content"]}});
    body["messages"].push_back(
        {{"role", "user"},
         {"content",
          json::array({{{"type", "tool_result"}, {"tool_use_id", use["id"]}, {"content", "Sunny, 21 C"}}})}});
    const json next = post_ok("/v1/messages", body);
    EXPECT_GT(next["usage"]["input_tokens"].get<int>(), m["usage"]["input_tokens"].get<int>());
    // A named tool that is not offered is the client's mistake.
    body["tool_choice"] = {{"type", "tool"}, {"name", "nope"}};
    auto r = post("/v1/messages", body);
    EXPECT_EQ(r->status, 400);
}

TEST_F(Anthropic, CountTokensMatchesTheMessagesPrompt) {
    start();
    json body = request("stories-tools");
    body["system"] = "You tell stories.";
    const json m = post_ok("/v1/messages", body);
    body.erase("max_tokens");
    const json n = post_ok("/v1/messages/count_tokens", body);
    EXPECT_EQ(n, json({{"input_tokens", m["usage"]["input_tokens"]}}));
    body["tools"] = json::array({weather_tool()});
    EXPECT_GT(post_ok("/v1/messages/count_tokens", body)["input_tokens"].get<int>(), n["input_tokens"].get<int>());
}

TEST_F(Anthropic, ErrorsUseAnthropicsShape) {
    start();
    auto check = [&](const json& body, int status, const std::string& type, const std::string& needle) {
        auto r = post("/v1/messages", body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << r->body;
        const json e = json::parse(r->body);
        EXPECT_EQ(e["type"], "error");
        EXPECT_EQ(e["error"]["type"], type);
        EXPECT_NE(e["error"]["message"].get<std::string>().find(needle), std::string::npos) << r->body;
    };
    json body = request("stories");
    body.erase("max_tokens");
    check(body, 400, "invalid_request_error", "max_tokens");
    body = request("stories");
    body["temperature"] = 1.5;
    check(body, 400, "invalid_request_error", "temperature");
    body = request("nope");
    check(body, 404, "not_found_error", "nope");
    body = request("stories");
    body["messages"][0]["content"] = json::array({{{"type", "image"}, {"source", json::object()}}});
    check(body, 400, "invalid_request_error", "image");
    body = request("stories");
    body["messages"][0]["role"] = "system";
    check(body, 400, "invalid_request_error", "role");
    body = request("stories");
    body["thinking"] = {{"type", "enabled"}, {"budget_tokens", 1024}};
    check(body, 400, "invalid_request_error", "does not support thinking");
    auto r = client().Post("/v1/messages", "{", "application/json");
    EXPECT_EQ(json::parse(r->body)["type"], "error");
    r = client().Get("/v1/messages");  // no such route for GET: still Anthropic's shape
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "not_found_error");
}

TEST_F(Anthropic, AFullQueueIsOverloaded529) {
    server::ServerConfig cfg = test::LoopbackServer::test_config();
    cfg.manager.max_queue = 1;
    cfg.manager.num_parallel = 1;  // one running sequence: later requests queue
    cfg.manager.debug_token_delay = std::chrono::milliseconds(20);
    start(cfg);
    std::atomic<bool> started{false}, release{false};
    std::thread running([&] {  // occupies the runner until its client hangs up
        json body = request("stories", 400);
        body["stream"] = true;
        const http::Receiver receiver = [&](const char*, size_t) {
            started = true;
            return !release.load();
        };
        client().Post("/v1/messages", http::Headers{}, body.dump(), "application/json", receiver);
    });
    for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(started);
    // Three more: one waits in the queue (size 1), two are refused in Anthropic's shape.
    std::vector<int> status(3, 0);
    std::atomic<int> refused{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i)
        ts.emplace_back([&, i] {
            auto r = post("/v1/messages", request("stories", 2));
            if (!r) return;
            status[i] = r->status;
            if (r->status == 529) {
                const json e = json::parse(r->body);
                EXPECT_EQ(e["type"], "error");
                EXPECT_EQ(e["error"]["type"], "overloaded_error");
                refused++;
            }
        });
    for (int i = 0; i < 500 && refused < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    release = true;
    for (auto& t : ts) t.join();
    running.join();
    std::sort(status.begin(), status.end());
    EXPECT_EQ(status, (std::vector<int>{200, 529, 529}));
}

TEST_F(Anthropic, ApiKeysComeAsXApiKeyOrBearer) {
    server::ServerConfig cfg = test::LoopbackServer::test_config();
    cfg.api_keys = {"sekrit"};
    start(cfg);
    const json body = request("stories", 2);
    auto r = post("/v1/messages", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
    r = post("/v1/messages", body, {{"x-api-key", "wrong"}, {"anthropic-version", "2023-06-01"}});
    EXPECT_EQ(r->status, 401);
    r = post("/v1/messages", body, {{"x-api-key", "sekrit"}, {"anthropic-version", "2023-06-01"}});
    EXPECT_EQ(r->status, 200) << r->body;
    r = post("/v1/messages", body, {{"Authorization", "Bearer sekrit"}});
    EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace hearth::server
