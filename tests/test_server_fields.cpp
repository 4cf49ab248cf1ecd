// Request fields out of their documented range over real loopback HTTP: each is a 400 that
// names the field in the API's error shape (OpenAI's `param`; the message in Anthropic's),
// whether the route's decoder catches it or, for logit_bias ids beyond the model's
// vocabulary, the model's runner; the edges of each range are still accepted.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "http/client.h"
#include "support/api_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

class Fields : public test::ApiFixture {
protected:
    static json chat(int max_tokens = 2) {
        return {{"model", "stories"},
                {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                {"max_tokens", max_tokens}};
    }
    static json completion() { return {{"model", "stories"}, {"prompt", "Once upon a time"}, {"max_tokens", 2}}; }
    static json response() { return {{"model", "stories"}, {"input", "Once upon a time"}, {"max_output_tokens", 2}}; }
    static json message() {
        return {{"model", "stories"},
                {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                {"max_tokens", 2}};
    }

    // `body` with `key` set to `value` is a 400 in OpenAI's shape whose param is `param`.
    void expect_oai_400(const std::string& path, json body, const std::string& key, const json& value,
                        const std::string& param) {
        body[key] = value;
        auto r = post(path, body);
        ASSERT_TRUE(r) << path << " " << key;
        EXPECT_EQ(r->status, 400) << path << " " << key << "=" << value.dump() << ": " << r->body;
        const json j = json::parse(r->body, nullptr, false);
        ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object()) << r->body;
        EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r->body;
        EXPECT_EQ(j["error"]["param"], param) << path << " " << key << "=" << value.dump() << ": " << r->body;
        EXPECT_TRUE(j["error"]["code"].is_null()) << r->body;
        const std::string msg = j["error"]["message"].is_string() ? j["error"]["message"].get<std::string>() : "";
        EXPECT_NE(msg.find(param), std::string::npos) << r->body;
    }
    // The same in Anthropic's shape: the message names `key`.
    void expect_anthropic_400(json body, const std::string& key, const json& value, const std::string& name) {
        if (key == "thinking.budget_tokens") body["thinking"] = {{"type", "enabled"}, {"budget_tokens", value}};
        else body[key] = value;
        auto r = post("/v1/messages", body);
        ASSERT_TRUE(r) << key;
        EXPECT_EQ(r->status, 400) << key << "=" << value.dump() << ": " << r->body;
        const json j = json::parse(r->body, nullptr, false);
        ASSERT_TRUE(j.is_object()) << r->body;
        EXPECT_EQ(j["type"], "error") << r->body;
        EXPECT_EQ(j["error"]["type"], "invalid_request_error") << r->body;
        const std::string msg = j["error"]["message"].is_string() ? j["error"]["message"].get<std::string>() : "";
        EXPECT_EQ(msg.rfind(name, 0), 0u) << r->body;
    }
    int status_of(const std::string& path, const json& body) {
        auto r = post(path, body);
        return r ? r->status : -1;
    }
};

TEST_F(Fields, ChatFieldsOutOfRangeAre400sNamingTheField) {
    start();
    const std::string path = "/v1/chat/completions";
    expect_oai_400(path, chat(), "temperature", 2.01, "temperature");
    expect_oai_400(path, chat(), "temperature", -0.5, "temperature");
    expect_oai_400(path, chat(), "temperature", 5e7, "temperature");
    expect_oai_400(path, chat(), "top_p", 1.5, "top_p");
    expect_oai_400(path, chat(), "top_p", -0.1, "top_p");
    expect_oai_400(path, chat(), "frequency_penalty", 2.5, "frequency_penalty");
    expect_oai_400(path, chat(), "presence_penalty", -2.5, "presence_penalty");
    expect_oai_400(path, chat(), "n", 0, "n");
    expect_oai_400(path, chat(), "n", 129, "n");
    expect_oai_400(path, chat(), "max_tokens", 0, "max_tokens");
    expect_oai_400(path, chat(), "max_tokens", -5, "max_tokens");
    expect_oai_400(path, chat(), "max_completion_tokens", 0, "max_completion_tokens");
    // Both given: the one out of range is named, even when the other wins.
    json both = chat();
    both["max_completion_tokens"] = 2;
    expect_oai_400(path, both, "max_tokens", 0, "max_tokens");
    expect_oai_400(path, chat(), "seed", 1.5, "seed");
    json lp = chat();
    lp["logprobs"] = true;
    expect_oai_400(path, lp, "top_logprobs", 21, "top_logprobs");
    expect_oai_400(path, lp, "top_logprobs", -1, "top_logprobs");
    expect_oai_400(path, chat(), "logit_bias", {{"5", 100.5}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"5", -101}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"5", "1"}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"-1", 1}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"1.5", 1}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"abc", 1}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"99999999999999999999999", 1}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", {{"4294967296", 1}}, "logit_bias");
    expect_oai_400(path, chat(), "logit_bias", json::array({1, 2}), "logit_bias");
    // A tool's arguments are an object: other parameter schemas are refused, as OpenAI does.
    const json string_tool = json::array(
        {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "string"}}}}}}});
    expect_oai_400(path, chat(), "tools", string_tool, "tools[0].function.parameters");
    expect_oai_400(path, chat(), "tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", 5}}}}}),
                   "tools[0].function.parameters");
    json object_tool = chat();
    object_tool["tools"] = json::array(
        {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}}});
    object_tool["tool_choice"] = "none";  // (stories has no tool template: the schema check alone)
    EXPECT_EQ(status_of(path, object_tool), 200);
}

TEST_F(Fields, CompletionFieldsOutOfRangeAre400sNamingTheField) {
    start();
    const std::string path = "/v1/completions";
    expect_oai_400(path, completion(), "temperature", 3, "temperature");
    expect_oai_400(path, completion(), "top_p", 2, "top_p");
    expect_oai_400(path, completion(), "logprobs", 6, "logprobs");
    expect_oai_400(path, completion(), "logprobs", -1, "logprobs");
    expect_oai_400(path, completion(), "best_of", 21, "best_of");
    expect_oai_400(path, completion(), "best_of", 2, "best_of");  // only one completion is generated
    expect_oai_400(path, completion(), "n", 2, "n");
    expect_oai_400(path, completion(), "max_tokens", 0, "max_tokens");
    expect_oai_400(path, completion(), "logit_bias", {{"7", 1000}}, "logit_bias");
}

TEST_F(Fields, LogitBiasIdsMustBeTokensOfTheModel) {
    start();
    // stories260K has 512 tokens: 99999999 parses as an id, only the runner can tell.
    for (const bool stream : {false, true}) {
        for (const std::string path : {"/v1/chat/completions", "/v1/completions"}) {
            json body = path == "/v1/completions" ? completion() : chat();
            body["stream"] = stream;
            body["logit_bias"] = {{"3", 1}, {"99999999", -100}};
            auto r = post(path, body);
            ASSERT_TRUE(r);
            EXPECT_EQ(r->status, 400) << path << (stream ? " (stream)" : "") << ": " << r->body;
            EXPECT_NE(r->get_header_value("Content-Type").find("application/json"), std::string::npos);
            const json err = json::parse(r->body)["error"];
            EXPECT_EQ(err["param"], "logit_bias") << r->body;
            EXPECT_EQ(err["type"], "invalid_request_error");
            const std::string msg = err["message"];
            EXPECT_NE(msg.find("99999999 is not a token id of this model"), std::string::npos) << msg;
            EXPECT_NE(msg.find("512 tokens"), std::string::npos) << msg;
        }
    }
    json body = chat();
    body["logit_bias"] = {{"512", 1}};  // one past the last
    EXPECT_EQ(status_of("/v1/chat/completions", body), 400);
    body["logit_bias"] = {{"511", 1}, {"0", -100}};
    EXPECT_EQ(status_of("/v1/chat/completions", body), 200);
}

TEST_F(Fields, TheEdgesOfEachRangeAreAccepted) {
    start();
    json body = chat();
    body["temperature"] = 2;
    body["top_p"] = 0;
    body["frequency_penalty"] = -2;
    body["presence_penalty"] = 2;
    body["n"] = 1;
    body["logprobs"] = true;
    body["top_logprobs"] = 20;
    body["seed"] = -1;
    body["logit_bias"] = {{"0", -100}, {"1", 100}, {"2", 0.5}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    body = completion();
    body["temperature"] = 0;
    body["top_p"] = 1;
    body["logprobs"] = 5;
    body["best_of"] = 1;
    EXPECT_EQ(status_of("/v1/completions", body), 200);
    body = response();
    body["temperature"] = 2;
    body["top_p"] = 1;
    body["top_logprobs"] = 20;
    EXPECT_EQ(status_of("/v1/responses", body), 200);
    body = message();
    body["temperature"] = 1;
    body["top_p"] = 0;
    body["top_k"] = 0;
    EXPECT_EQ(status_of("/v1/messages", body), 200);
}

TEST_F(Fields, ResponsesFieldsOutOfRangeAre400sNamingTheField) {
    start();
    const std::string path = "/v1/responses";
    expect_oai_400(path, response(), "temperature", 2.5, "temperature");
    expect_oai_400(path, response(), "temperature", 1e9, "temperature");
    expect_oai_400(path, response(), "top_p", -1, "top_p");
    expect_oai_400(path, response(), "max_output_tokens", 0, "max_output_tokens");
    expect_oai_400(path, response(), "top_logprobs", 21, "top_logprobs");
}

TEST_F(Fields, AnthropicFieldsOutOfRangeAre400sNamingTheField) {
    start();
    expect_anthropic_400(message(), "tools", json::array({{{"name", "f"}, {"input_schema", {{"type", "array"}}}}}),
                         "tools[0].input_schema");
    expect_anthropic_400(message(), "temperature", 1.01, "temperature");
    expect_anthropic_400(message(), "temperature", 1e9, "temperature");
    expect_anthropic_400(message(), "top_p", -0.5, "top_p");
    expect_anthropic_400(message(), "top_k", -1, "top_k");
    expect_anthropic_400(message(), "max_tokens", 0, "max_tokens");
    expect_anthropic_400(message(), "thinking.budget_tokens", 1023, "thinking.budget_tokens");
}

}  // namespace
}  // namespace hearth::server
