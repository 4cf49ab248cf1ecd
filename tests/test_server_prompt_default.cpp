// Ollama's prompt defaults over real loopback HTTP: a model without a chat template gets its
// prompt as it is (Ollama's `{{ .Prompt }}`), `raw: true` bypasses any template, and request
// fields out of the model's range (logit_bias ids, think, tools) get a 400 in the API's shape.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>

#include "support/api_fixture.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

class PromptDefault : public test::ApiFixture {};

// What `hearth generate` prints for a prompt at temperature 0.
std::string cli_greedy(const std::string& prompt, int n) {
    const std::string cmd = std::string(HEARTH_BINARY) + " generate -m " +
                            test::shared_path("models/stories260K.gguf") + " -p '" + prompt + "' -n " +
                            std::to_string(n) + " --temp 0 -t 1 2>/dev/null";
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buf;
    while (p && fgets(buf.data(), buf.size(), p.get())) out += buf.data();
    return out;
}

TEST_F(PromptDefault, GenerateOnABaseModelIsTheGreedyContinuation) {
    start();
    const json ref = reference(1);
    const std::string prompt = ref["prompt"];
    ASSERT_FALSE(prompt.empty());
    const json out =
        post_ok("/api/generate",
                {{"model", "stories"}, {"prompt", prompt}, {"stream", false}, {"options", test::greedy_options(40)}});
    // The prompt goes in as it is: BOS + its tokens, exactly llama.cpp's tokenization.
    EXPECT_EQ(out["prompt_eval_count"], ref["prompt_ids"].size());
    EXPECT_EQ(std::vector<int>(out["context"].begin(), out["context"].begin() + ref["prompt_ids"].size()),
              ref["prompt_ids"].get<std::vector<int>>());
    const std::string want = ref["generated_text"];
    const std::string got = out["response"];
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(want.substr(0, got.size()), got);
    EXPECT_EQ(out["eval_count"], 40);
    // ... and what `hearth generate --temp 0` prints for it.
    const std::string cli = cli_greedy(prompt, 40);
    ASSERT_FALSE(cli.empty());
    EXPECT_NE(cli.find(got), std::string::npos) << "cli: " << cli << "\nserver: " << got;

    // `options: {temperature: 0}` alone, as an Ollama client sends it, is the same greedy
    // continuation: no repeat penalty by default (Ollama's engine applies none).
    const json ollama = post_ok("/api/generate", {{"model", "stories"},
                                                  {"prompt", prompt},
                                                  {"stream", false},
                                                  {"options", {{"temperature", 0}, {"num_predict", 40}}}});
    EXPECT_EQ(ollama["response"], got);
    // The prompt the issue reported (49 prompt tokens under ChatML): its own tokens (as raw
    // gives them), and the CLI's greedy text.
    const json tree = post_ok("/api/generate", {{"model", "stories"},
                                                {"prompt", "There was a big tree"},
                                                {"stream", false},
                                                {"options", {{"temperature", 0}, {"num_predict", 60}}}});
    EXPECT_EQ(tree["prompt_eval_count"], greedy_raw("stories", "There was a big tree", 1)["prompt_eval_count"]);
    EXPECT_NE(cli_greedy("There was a big tree", 60).find(tree["response"].get<std::string>()), std::string::npos)
        << tree["response"];
    // /api/show names that default as Ollama does.
    EXPECT_EQ(post_ok("/api/show", {{"model", "stories"}})["template"], "{{ .Prompt }}");
}

TEST_F(PromptDefault, SystemTextAndRoleMarkersAreNotAddedWithoutATemplate) {
    start();
    const json plain = post_ok("/api/generate", {{"model", "stories"},
                                                 {"prompt", "Once upon a time"},
                                                 {"stream", false},
                                                 {"options", test::greedy_options(8)}});
    const json with_system = post_ok("/api/generate", {{"model", "stories"},
                                                       {"prompt", "Once upon a time"},
                                                       {"system", "You are a pirate."},
                                                       {"stream", false},
                                                       {"options", test::greedy_options(8)}});
    // `{{ .Prompt }}` has no place for the system text.
    EXPECT_EQ(with_system["prompt_eval_count"], plain["prompt_eval_count"]);
    EXPECT_EQ(with_system["response"], plain["response"]);

    // Chat: the user's text goes in as it is (system and role markers dropped), so the reply is
    // the generate reply for that text.
    const json chat =
        post_ok("/api/chat", {{"model", "stories"},
                              {"messages", json::array({{{"role", "system"}, {"content", "Be brief."}},
                                                        {{"role", "user"}, {"content", "Once upon a time"}}})},
                              {"stream", false},
                              {"options", test::greedy_options(8)}});
    EXPECT_EQ(chat["prompt_eval_count"], plain["prompt_eval_count"]);
    EXPECT_EQ(chat["message"]["content"], plain["response"]);
    // Earlier turns: each user turn's text, in order (Ollama runs the template per turn).
    const json turns = post_ok("/api/chat", {{"model", "stories"},
                                             {"messages", json::array({{{"role", "user"}, {"content", "Once upon"}},
                                                                       {{"role", "assistant"}, {"content", "ignored"}},
                                                                       {{"role", "user"}, {"content", " a time"}}})},
                                             {"stream", false},
                                             {"options", test::greedy_options(8)}});
    EXPECT_EQ(turns["prompt_eval_count"], plain["prompt_eval_count"]);
    EXPECT_EQ(turns["message"]["content"], plain["response"]);

    // OpenAI's chat on the same model takes the same path.
    const json oai = post_ok("/v1/chat/completions",
                             {{"model", "stories"},
                              {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
                              {"temperature", 0},
                              {"max_tokens", 8}});
    EXPECT_EQ(oai["usage"]["prompt_tokens"], plain["prompt_eval_count"]);
}

TEST_F(PromptDefault, RawBypassesATemplate) {
    start();
    // stories-tools has a ChatML template: the templated prompt is longer, raw is not.
    const json templated = post_ok("/api/generate", {{"model", "stories-tools"},
                                                     {"prompt", "Once upon a time"},
                                                     {"stream", false},
                                                     {"options", test::greedy_options(4)}});
    const json raw = greedy_raw("stories-tools", "Once upon a time", 4);
    const json base = greedy_raw("stories", "Once upon a time", 4);
    EXPECT_GT(templated["prompt_eval_count"].get<int>(), raw["prompt_eval_count"].get<int>());
    EXPECT_EQ(raw["prompt_eval_count"], base["prompt_eval_count"]);
    EXPECT_EQ(raw["response"], base["response"]);
}

TEST_F(PromptDefault, ATemplateThatDoesNotParseIsLikeNone) {
    start();
    const json out = post_ok("/api/generate", {{"model", "stories-broken"},
                                               {"prompt", "Once upon a time"},
                                               {"stream", false},
                                               {"options", test::greedy_options(6)}});
    const json raw = greedy_raw("stories", "Once upon a time", 6);
    EXPECT_EQ(out["prompt_eval_count"], raw["prompt_eval_count"]);
    EXPECT_EQ(out["response"], raw["response"]);
}

TEST_F(PromptDefault, OutOfRangeFieldsAreRejectedInEachApisShape) {
    start();
    // logit_bias ids must be tokens of the model (stories260K has 512).
    json body = {{"model", "stories"},
                 {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                 {"max_tokens", 2},
                 {"logit_bias", {{"512", 5}}}};
    auto r = post("/v1/chat/completions", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    json err = json::parse(r->body)["error"];
    EXPECT_EQ(err["param"], "logit_bias");
    EXPECT_EQ(err["type"], "invalid_request_error");
    EXPECT_NE(err["message"].get<std::string>().find("512"), std::string::npos);
    body["logit_bias"] = {{"511", 5}};
    EXPECT_EQ(post("/v1/chat/completions", body)->status, 200);
    r = post("/v1/completions",
             {{"model", "stories"}, {"prompt", "Hi"}, {"max_tokens", 2}, {"logit_bias", {{"100000", -100}}}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"]["param"], "logit_bias");

    // think on a model whose template has no thinking: Ollama's 400.
    r = post(
        "/api/chat",
        {{"model", "stories"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}, {"think", true}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"], "\"stories\" does not support thinking");
    r = post("/api/generate", {{"model", "stories"}, {"prompt", "Hi"}, {"think", "loud"}});
    EXPECT_EQ(r->status, 400);
    // think: false is fine anywhere.
    EXPECT_EQ(post("/api/generate", {{"model", "stories"},
                                     {"prompt", "Hi"},
                                     {"think", false},
                                     {"stream", false},
                                     {"options", {{"num_predict", 1}}}})
                  ->status,
              200);
    // Tools need a template that can show them to the model.
    r = post("/api/chat", {{"model", "stories"},
                           {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                           {"tools", json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}})}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(json::parse(r->body)["error"], "\"stories\" does not support tools");
}

}  // namespace
}  // namespace hearth::server
