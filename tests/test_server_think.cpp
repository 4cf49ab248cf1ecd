// Thinking over real loopback HTTP with a Qwen3-style thinking template (kThinkTemplate on
// stories260K): the capability in /api/show, `think` on /api/chat and /api/generate
// (message.thinking / thinking, streamed too), reasoning_content on OpenAI's chat, thinking
// blocks on Anthropic's Messages and reasoning items on the Responses API.
//
// The template's generation prompt opens <think> when thinking is on, so the model's whole
// greedy continuation (it never writes </think>) is its thinking: exactly the continuation of
// the rendered prompt, which a raw request gives.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>

#include "server/prompt.h"
#include "support/api_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

const char* kOn = "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n<think>\n";
const char* kOff = "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

class Think : public test::ApiFixture {
protected:
    static json messages() { return json::array({{{"role", "user"}, {"content", "Once upon a time"}}}); }
    json chat(const json& think, bool stream_parts = false) {
        json body = {{"model", "stories-think"},
                     {"messages", messages()},
                     {"options", test::greedy_options(N)},
                     {"stream", stream_parts}};
        if (!think.is_null()) body["think"] = think;
        if (!stream_parts) return post_ok("/api/chat", body);
        auto r = post("/api/chat", body);
        json merged = {{"thinking", ""}, {"content", ""}, {"lines", 0}};
        size_t pos = 0;
        while (r && pos < r->body.size()) {
            const size_t end = r->body.find('\n', pos);
            const json line = json::parse(r->body.substr(pos, end - pos));
            pos = end + 1;
            merged["lines"] = merged["lines"].get<int>() + 1;
            merged["thinking"] = merged["thinking"].get<std::string>() + line["message"].value("thinking", "");
            merged["content"] = merged["content"].get<std::string>() + line["message"].value("content", "");
        }
        return merged;
    }
    static constexpr int N = 10;
};

// The capability over the real templates in ../shared/templates: the reasoning models' have
// it, the others' do not.
TEST(ThinkCapability, RealTemplates) {
    const std::map<std::string, bool> want = {
        {"Qwen-QwQ-32B", true},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", true},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", true},
        {"llama-cpp-deepseek-r1", true},
        {"Qwen-Qwen2.5-7B-Instruct", false},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use", false},
        {"meta-llama-Llama-3.2-3B-Instruct", false},
        {"mistralai-Mistral-Nemo-Instruct-2407", false},
        {"google-gemma-2-2b-it", false},
        {"CohereForAI-c4ai-command-r-plus-tool_use", false},
    };
    for (const auto& [name, thinks] : want) {
        std::ifstream f(test::shared_path("templates/" + name + "/template.jinja"));
        ASSERT_TRUE(f) << name;
        const std::string src((std::istreambuf_iterator<char>(f)), {});
        EXPECT_EQ(template_thinks(src), thinks) << name;
    }
    EXPECT_TRUE(template_thinks(test::kThinkTemplate));
    EXPECT_FALSE(template_thinks(test::kToolsTemplate));
    EXPECT_FALSE(template_thinks(""));
}

TEST_F(Think, ShowListsTheCapability) {
    start();
    EXPECT_EQ(post_ok("/api/show", {{"model", "stories-think"}})["capabilities"],
              json::array({"completion", "thinking"}));
    EXPECT_EQ(post_ok("/api/show", {{"model", "stories"}})["capabilities"], json::array({"completion"}));
}

TEST_F(Think, ChatSplitsThinkingFromContent) {
    start();
    const std::string on = greedy_raw("stories-think", kOn, N)["response"];
    const std::string off = greedy_raw("stories-think", kOff, N)["response"];
    ASSERT_FALSE(test::trimmed(on).empty());

    const json t = chat(true);
    EXPECT_EQ(t["message"]["thinking"], test::trimmed(on));
    EXPECT_EQ(t["message"]["content"], "");
    // Unset: the template's default (thinking on), split the same way.
    EXPECT_EQ(chat(nullptr)["message"]["thinking"], test::trimmed(on));
    // Off: the template closes the block; the reply is all content.
    const json f = chat(false);
    EXPECT_FALSE(f["message"].contains("thinking"));
    EXPECT_EQ(f["message"]["content"], off);
    // Streamed: thinking deltas add up to the same text.
    const json s = chat(true, true);
    EXPECT_EQ(s["thinking"], test::trimmed(on));
    EXPECT_EQ(s["content"], "");
    EXPECT_GE(s["lines"].get<int>(), 3);

    // /api/generate: `thinking` beside `response`.
    const json g = post_ok("/api/generate", {{"model", "stories-think"},
                                             {"prompt", "Once upon a time"},
                                             {"think", true},
                                             {"stream", false},
                                             {"options", test::greedy_options(N)}});
    EXPECT_EQ(g["thinking"], test::trimmed(on));
    EXPECT_EQ(g["response"], "");
}

TEST_F(Think, EarlierThinkingReachesTemplatesAsReasoningContent) {
    start();
    const json out = post_ok(
        "/api/chat", {{"model", "stories"},
                      {"template", "{% for m in messages %}{{ m.reasoning_content }}{{ m.content }}{% endfor %}"},
                      {"messages", json::array({{{"role", "user"}, {"content", "Once upon"}},
                                                {{"role", "assistant"}, {"content", ""}, {"thinking", " a time"}}})},
                      {"stream", false},
                      {"options", test::greedy_options(4)}});
    const json raw = greedy_raw("stories", "Once upon a time", 4);
    EXPECT_EQ(out["prompt_eval_count"], raw["prompt_eval_count"]);
    EXPECT_EQ(out["message"]["content"], raw["response"]);
}

// A think level reaches templates as reasoning_effort (gpt-oss style), from each API's field.
TEST_F(Think, LevelsReachTemplatesAsReasoningEffort) {
    start();
    const std::string tmpl = "{# <think> #}{{ reasoning_effort }}{% for m in messages %}{{ m.content }}{% endfor %}";
    const json msgs = json::array({{{"role", "user"}, {"content", " upon a time"}}});
    const json high = post_ok("/api/chat", {{"model", "stories"},
                                            {"template", tmpl},
                                            {"messages", msgs},
                                            {"think", "high"},
                                            {"stream", false},
                                            {"options", test::greedy_options(2)}});
    EXPECT_EQ(high["prompt_eval_count"], greedy_raw("stories", "high upon a time", 1)["prompt_eval_count"]);
    const json on = post_ok("/api/chat", {{"model", "stories"},
                                          {"template", tmpl},
                                          {"messages", msgs},
                                          {"think", true},
                                          {"stream", false},
                                          {"options", test::greedy_options(2)}});
    EXPECT_EQ(on["prompt_eval_count"], greedy_raw("stories", " upon a time", 1)["prompt_eval_count"]);
    auto r = post("/v1/responses", {{"model", "stories-think"}, {"input", "x"}, {"reasoning", {{"effort", "huge"}}}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"]["param"], "reasoning.effort");
}

TEST_F(Think, OpenAiChatGivesReasoningContent) {
    start();
    const std::string on = greedy_raw("stories-think", kOn, N)["response"];
    const std::string off = greedy_raw("stories-think", kOff, N)["response"];
    json body = {{"model", "stories-think"}, {"messages", messages()}, {"temperature", 0}, {"max_tokens", N}};
    const json r = post_ok("/v1/chat/completions", body);
    EXPECT_EQ(r["choices"][0]["message"]["reasoning_content"], test::trimmed(on));
    EXPECT_EQ(r["choices"][0]["message"]["content"], "");
    body["reasoning_effort"] = "none";
    const json f = post_ok("/v1/chat/completions", body);
    EXPECT_FALSE(f["choices"][0]["message"].contains("reasoning_content"));
    EXPECT_EQ(f["choices"][0]["message"]["content"], off);
    body["reasoning_effort"] = "high";
    body["stream"] = true;
    std::string reasoning;
    for (const auto& e : post_sse("/v1/chat/completions", body))
        if (e.data.is_object() && !e.data["choices"].empty() &&
            e.data["choices"][0]["delta"].contains("reasoning_content"))
            reasoning += e.data["choices"][0]["delta"]["reasoning_content"].get<std::string>();
    EXPECT_EQ(reasoning, test::trimmed(on));
}

TEST_F(Think, AnthropicThinkingBlocks) {
    start();
    const std::string on = greedy_raw("stories-think", kOn, N)["response"];
    json body = {{"model", "stories-think"},
                 {"messages", messages()},
                 {"temperature", 0},
                 {"max_tokens", N},
                 {"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}};
    const json m = post_ok("/v1/messages", body);
    ASSERT_GE(m["content"].size(), 1u);
    EXPECT_EQ(m["content"][0]["type"], "thinking");
    EXPECT_EQ(m["content"][0]["thinking"], test::trimmed(on));
    body["stream"] = true;
    std::string thinking;
    bool block = false;
    for (const auto& e : post_sse("/v1/messages", body)) {
        if (e.name == "content_block_start" && e.data["content_block"]["type"] == "thinking") block = true;
        if (e.name == "content_block_delta" && e.data["delta"]["type"] == "thinking_delta")
            thinking += e.data["delta"]["thinking"].get<std::string>();
    }
    EXPECT_TRUE(block);
    EXPECT_EQ(thinking, test::trimmed(on));
    body.erase("stream");
    body["thinking"] = {{"type", "disabled"}};
    const json off = post_ok("/v1/messages", body);
    EXPECT_EQ(off["content"][0]["type"], "text");
}

TEST_F(Think, ResponsesReasoningItems) {
    start();
    const std::string on = greedy_raw("stories-think", kOn, N)["response"];
    json body = {
        {"model", "stories-think"}, {"input", "Once upon a time"}, {"temperature", 0}, {"max_output_tokens", N}};
    const json r = post_ok("/v1/responses", body);
    ASSERT_GE(r["output"].size(), 1u);
    EXPECT_EQ(r["output"][0]["type"], "reasoning");
    EXPECT_EQ(r["output"][0]["content"][0]["text"], test::trimmed(on));
    body["stream"] = true;
    std::string reasoning;
    for (const auto& e : post_sse("/v1/responses", body))
        if (e.name == "response.reasoning_text.delta") reasoning += e.data["delta"].get<std::string>();
    EXPECT_EQ(reasoning, test::trimmed(on));
    body.erase("stream");
    body["reasoning"] = {{"effort", "none"}};
    EXPECT_EQ(post_ok("/v1/responses", body)["output"][0]["type"], "message");
}

// `hearth run` against this server: stdout of `hearth run ARGS` with `input` on stdin.
std::string run_cli(int port, const std::string& args, const std::string& input) {
    test::TempDir dir;
    const std::string in = dir.file("stdin");
    std::ofstream(in) << input;
    const std::string cmd = "HEARTH_HOST=127.0.0.1:" + std::to_string(port) + " HEARTH_MODELS=" + dir.file("store") +
                            " HEARTH_API_KEY= " + HEARTH_BINARY + " run " + args + " <" + in + " 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p.get())) out += buf;
    return out;
}

TEST_F(Think, CliShowsHidesOrTurnsOffThinking) {
    start();
    const int port = loop_.port();
    const std::string shown = run_cli(port, "stories-think --think 'Once upon a time'", "");
    EXPECT_EQ(shown.rfind("Thinking...\n", 0), 0u) << shown;
    EXPECT_NE(shown.find("\n...done thinking.\n"), std::string::npos) << shown;
    const std::string hidden = run_cli(port, "stories-think --hidethinking 'Once upon a time'", "");
    EXPECT_EQ(hidden.find("Thinking..."), std::string::npos) << hidden;
    // --hidethinking on a model that cannot think is not an error.
    const std::string plain = run_cli(port, "stories --hidethinking 'Once upon a time'", "");
    EXPECT_EQ(plain.find("Error"), std::string::npos) << plain;
    EXPECT_FALSE(plain.empty());
    const std::string off = run_cli(port, "stories-think --think=false 'Once upon a time'", "");
    EXPECT_EQ(off.find("Thinking..."), std::string::npos) << off;
    EXPECT_FALSE(off.empty());
    EXPECT_NE(run_cli(port, "stories-think --think=loud hi", "").find("invalid --think"), std::string::npos);
    // The chat: /set nothink, then /set think.
    const std::string repl =
        run_cli(port, "stories-think -i",
                "/set parameter num_predict 12\n/set nothink\nOnce upon a time\n/set think\nOnce upon a time\n/bye\n");
    const size_t off_at = repl.find("Set 'nothink' mode."), on_at = repl.find("Set 'think' mode.");
    ASSERT_NE(off_at, std::string::npos) << repl;
    ASSERT_NE(on_at, std::string::npos) << repl;
    EXPECT_EQ(repl.substr(off_at, on_at - off_at).find("Thinking..."), std::string::npos) << repl;
    EXPECT_NE(repl.find("Thinking...", on_at), std::string::npos) << repl;
}

}  // namespace
}  // namespace hearth::server
