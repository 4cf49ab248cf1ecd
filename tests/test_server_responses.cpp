// OpenAI's Responses API (/v1/responses, stateless) over real loopback HTTP: input as a string
// or items, the response object, the event stream, forced function calls and their outputs,
// text.format enforced by the grammar, and the 400s of a stateless server.
#include <gtest/gtest.h>

#include "sampling/json_schema.h"
#include "support/api_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

class Responses : public test::ApiFixture {
protected:
    static json request(const std::string& model, int max = 12) {
        return {{"model", model}, {"input", "Once upon a time"}, {"temperature", 0}, {"max_output_tokens", max}};
    }
    static json weather_tool() {
        return {{"type", "function"},
                {"name", "get_weather"},
                {"description", "The weather in a city"},
                {"parameters",
                 {{"type", "object"},
                  {"properties", {{"city", {{"type", "string"}, {"enum", {"Paris", "Oslo"}}}}}},
                  {"required", {"city"}}}}};
    }
    // The output_text of a response's message items.
    static std::string output_text(const json& r) {
        std::string s;
        for (const json& item : r["output"])
            if (item["type"] == "message")
                for (const json& c : item["content"]) s += c["text"].get<std::string>();
        return s;
    }
};

TEST_F(Responses, CreateFromAStringOrItems) {
    start();
    const json r = post_ok("/v1/responses", request("stories"));
    EXPECT_EQ(r["object"], "response");
    EXPECT_EQ(r["id"].get<std::string>().rfind("resp_", 0), 0u);
    EXPECT_EQ(r["status"], "incomplete");  // cut by max_output_tokens
    EXPECT_EQ(r["incomplete_details"]["reason"], "max_output_tokens");
    EXPECT_EQ(r["model"], "stories");
    EXPECT_EQ(r["store"], false);
    ASSERT_EQ(r["output"].size(), 1u);
    EXPECT_EQ(r["output"][0]["type"], "message");
    EXPECT_EQ(r["output"][0]["role"], "assistant");
    EXPECT_EQ(r["output"][0]["content"][0]["type"], "output_text");
    EXPECT_EQ(r["usage"]["output_tokens"], 12);
    // The same text as chat/completions for the same conversation (same defaults).
    const json chat = post_ok("/v1/chat/completions",
                              {{"model", "stories"},
                               {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
                               {"temperature", 0},
                               {"max_tokens", 12}});
    EXPECT_EQ(output_text(r), chat["choices"][0]["message"]["content"]);
    EXPECT_EQ(r["usage"]["input_tokens"], chat["usage"]["prompt_tokens"]);

    // Items with content parts are the same conversation.
    json items = request("stories");
    items["input"] =
        json::array({{{"type", "message"},
                      {"role", "user"},
                      {"content", json::array({{{"type", "input_text"}, {"text", "Once upon a time"}}})}}});
    EXPECT_EQ(output_text(post_ok("/v1/responses", items)), output_text(r));
    // instructions reach a template that shows the system text.
    json ins = request("stories-tools");
    const int bare = post_ok("/v1/responses", ins)["usage"]["input_tokens"];
    ins["instructions"] = "You tell stories.";
    EXPECT_GT(post_ok("/v1/responses", ins)["usage"]["input_tokens"].get<int>(), bare);
}

TEST_F(Responses, StreamSendsTheResponsesEvents) {
    start();
    const json whole = post_ok("/v1/responses", request("stories"));
    json body = request("stories");
    body["stream"] = true;
    int status = 0;
    const auto events = post_sse("/v1/responses", body, &status);
    ASSERT_EQ(status, 200);
    ASSERT_GE(events.size(), 8u);
    std::vector<std::string> names;
    for (size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].data["type"], events[i].name);
        EXPECT_EQ(events[i].data["sequence_number"], i);
        names.push_back(events[i].name);
    }
    EXPECT_EQ(names[0], "response.created");
    EXPECT_EQ(names[1], "response.in_progress");
    EXPECT_EQ(names[2], "response.output_item.added");
    EXPECT_EQ(names[3], "response.content_part.added");
    EXPECT_EQ(names[names.size() - 4], "response.output_text.done");
    EXPECT_EQ(names[names.size() - 3], "response.content_part.done");
    EXPECT_EQ(names[names.size() - 2], "response.output_item.done");
    EXPECT_EQ(names.back(), "response.incomplete");
    std::string text;
    for (const auto& e : events)
        if (e.name == "response.output_text.delta") text += e.data["delta"].get<std::string>();
    EXPECT_EQ(text, output_text(whole));
    EXPECT_EQ(events[names.size() - 4].data["text"], text);
    const json& final = events.back().data["response"];
    EXPECT_EQ(output_text(final), text);
    EXPECT_EQ(final["usage"]["output_tokens"], 12);
    EXPECT_EQ(events[0].data["response"]["status"], "in_progress");
}

TEST_F(Responses, ForcedFunctionCallAndItsOutput) {
    start();
    json body = request("stories-tools", 160);
    body["tools"] = json::array({weather_tool()});
    body["tool_choice"] = "required";
    const json r = post_ok("/v1/responses", body);
    EXPECT_EQ(r["status"], "completed");
    json call;
    for (const json& item : r["output"])
        if (item["type"] == "function_call") call = item;
    ASSERT_TRUE(call.is_object()) << r.dump();
    EXPECT_EQ(call["name"], "get_weather");
    EXPECT_EQ(call["status"], "completed");
    const json args = json::parse(call["arguments"].get<std::string>());
    EXPECT_TRUE(validate_json(weather_tool()["parameters"], args).empty()) << args.dump();

    body["stream"] = true;
    std::string streamed;
    bool done = false;
    for (const auto& e : post_sse("/v1/responses", body)) {
        if (e.name == "response.function_call_arguments.delta") streamed += e.data["delta"].get<std::string>();
        if (e.name == "response.function_call_arguments.done") {
            done = true;
            EXPECT_EQ(e.data["arguments"], streamed);
        }
    }
    EXPECT_TRUE(done);
    EXPECT_EQ(json::parse(streamed), args);

    // The call and its output go back as input items.
    body.erase("stream");
    body["tool_choice"] = "auto";
    body["input"] =
        json::array({{{"role", "user"}, {"content", "Weather in Paris?"}},
                     {{"type", "function_call"},
                      {"call_id", call["call_id"]},
                      {"name", "get_weather"},
                      {"arguments", call["arguments"]}},
                     {{"type", "function_call_output"}, {"call_id", call["call_id"]}, {"output", "Sunny"}}});
    const json next = post_ok("/v1/responses", body);
    EXPECT_EQ(next["object"], "response");
    body["input"][1]["arguments"] = "not json";
    EXPECT_EQ(post("/v1/responses", body)->status, 400);
}

// The same forcing on /v1/chat/completions: tool_choice "required" or a named function.
TEST_F(Responses, ChatCompletionsToolChoiceForcesACall) {
    start();
    json body = {{"model", "stories-tools"},
                 {"messages", json::array({{{"role", "user"}, {"content", "Weather in Paris?"}}})},
                 {"tools", json::array({{{"type", "function"},
                                         {"function",
                                          {{"name", "get_weather"}, {"parameters", weather_tool()["parameters"]}}}}})},
                 {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
                 {"temperature", 0},
                 {"max_tokens", 160}};
    const json r = post_ok("/v1/chat/completions", body);
    EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls");
    const json& calls = r["choices"][0]["message"]["tool_calls"];
    ASSERT_EQ(calls.size(), 1u) << r.dump();
    EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
    const json args = json::parse(calls[0]["function"]["arguments"].get<std::string>());
    EXPECT_TRUE(validate_json(weather_tool()["parameters"], args).empty()) << args.dump();
    // "auto" leaves it to the model: this one writes a story, not a call.
    body["tool_choice"] = "auto";
    body["max_tokens"] = 8;
    EXPECT_EQ(post_ok("/v1/chat/completions", body)["choices"][0]["finish_reason"], "length");
}

TEST_F(Responses, TextFormatJsonSchemaIsEnforced) {
    start();
    const json schema = {{"type", "object"},
                         {"properties",
                          {{"name", {{"type", "string"}, {"maxLength", 12}}},
                           {"age", {{"type", "integer"}, {"minimum", 0}, {"maximum", 120}}}}},
                         {"required", {"name", "age"}}};
    json body = request("stories", 400);
    body["temperature"] = 1;
    body["text"] = {{"format", {{"type", "json_schema"}, {"name", "person"}, {"schema", schema}, {"strict", true}}}};
    for (int seed = 1; seed <= 2; ++seed) {
        const json r = post_ok("/v1/responses", body);
        ASSERT_EQ(r["status"], "completed") << r.dump();
        const json value = json::parse(output_text(r));
        EXPECT_TRUE(validate_json(schema, value).empty()) << value.dump();
        EXPECT_EQ(r["text"]["format"]["type"], "json_schema");
    }
    body["text"] = {{"format", {{"type", "json_schema"}, {"name", "x"}}}};
    auto r = post("/v1/responses", body);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"]["param"], "text.format.schema");
}

TEST_F(Responses, StatelessRequestsAreRefused) {
    start();
    auto check = [&](json body, const std::string& param) {
        auto r = post("/v1/responses", body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << r->body;
        const json e = json::parse(r->body)["error"];
        EXPECT_EQ(e["param"], param);
        EXPECT_EQ(e["type"], "invalid_request_error");
    };
    json body = request("stories");
    body["store"] = true;
    check(body, "store");
    body = request("stories");
    body["previous_response_id"] = "resp_123";
    check(body, "previous_response_id");
    body = request("stories");
    body["input"] = json::array({{{"type", "item_reference"}, {"id", "msg_1"}}});
    check(body, "input[0].type");
    body = request("stories");
    body["tools"] = json::array({{{"type", "web_search"}}});
    check(body, "tools[0].type");
    body = request("stories");
    body.erase("input");
    check(body, "input");
    body = request("stories");
    body["store"] = false;  // explicitly stateless is fine
    EXPECT_EQ(post("/v1/responses", body)->status, 200);
    auto r = post("/v1/responses", request("nope"));
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "model_not_found");
}

}  // namespace
}  // namespace hearth::server
