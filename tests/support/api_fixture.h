// A loopback `hearth serve` for the API-fidelity tests (Anthropic Messages, OpenAI Responses,
// thinking, Ollama's raw-prompt default): models from ../shared served from a folder, some
// given a chat template the way a store TEMPLATE would, plus HTTP and SSE helpers.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/client.h"
#include "server/server.h"
#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::test {

// A ChatML template that offers tools and teaches the Hermes <tool_call> syntax.
inline const char* kToolsTemplate =
    "{%- if tools %}<|im_start|>system\nTools:{% for t in tools %} {{ t.function.name }}{% endfor %}. "
    "Call one as <tool_call>{\"name\": N, \"arguments\": A}</tool_call><|im_end|>\n{% endif %}"
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n"
    "{%- if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} "
    "{{ c.function.arguments | tojson }}</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}"
    "<|im_end|>\n{% endfor %}<|im_start|>assistant\n";

// A Qwen3-style thinking template: `enable_thinking` false closes an empty <think> block in
// the generation prompt; otherwise the prompt opens one (as DeepSeek-R1 and QwQ do), so the
// output starts with reasoning.
inline const char* kThinkTemplate =
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}";

struct SseEvent {
    std::string name;  // the `event:` line ("" when absent)
    nlohmann::json data;
};

class ApiFixture : public ::testing::Test {
protected:
    void TearDown() override { loop_.stop(); }

    // Serves stories260K as "stories" (no template), as "stories-tools" (kToolsTemplate),
    // "stories-think" (kThinkTemplate) and "stories-broken" (a template that does not parse),
    // and qwen3 (synthetic, no template).
    void start(server::ServerConfig cfg = LoopbackServer::test_config()) {
        server::ModelResolver resolver = server::directory_resolver(loop_.models_dir());
        resolver.resolve = [base = resolver.resolve](const std::string& name) {
            static const std::map<std::string, std::pair<std::string, const char*>> aliases = {
                {"stories-tools", {"stories", kToolsTemplate}},
                {"stories-think", {"stories", kThinkTemplate}},
                {"stories-broken", {"stories", "{% if %}<|im_start|>"}}};
            auto it = aliases.find(name);
            if (it == aliases.end()) return base(name);
            auto m = base(it->second.first);
            if (m) {
                m->name = name;
                m->template_override = it->second.second;
            }
            return m;
        };
        loop_.start(cfg, resolver);
    }
    http::Client client() { return loop_.client(); }
    http::Result post(const std::string& path, const nlohmann::json& body, const http::Headers& headers = {}) {
        return client().Post(path, headers, body.dump(), "application/json");
    }
    nlohmann::json post_ok(const std::string& path, const nlohmann::json& body) {
        auto r = post(path, body);
        if (!r) {
            ADD_FAILURE() << "no reply from " << path;
            return nlohmann::json();
        }
        EXPECT_EQ(r->status, 200) << r->body;
        return nlohmann::json::parse(r->body, nullptr, false);
    }
    // POSTs and parses the reply as server-sent events (`event:` + `data:` lines).
    std::vector<SseEvent> post_sse(const std::string& path, const nlohmann::json& body, int* status = nullptr) {
        auto r = post(path, body);
        std::vector<SseEvent> out;
        if (!r) {
            ADD_FAILURE() << "no reply from " << path;
            return out;
        }
        if (status) *status = r->status;
        EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos) << r->body;
        SseEvent cur;
        size_t pos = 0;
        const std::string& b = r->body;
        while (pos < b.size()) {
            size_t end = b.find('\n', pos);
            if (end == std::string::npos) end = b.size();
            const std::string line = b.substr(pos, end - pos);
            pos = end + 1;
            if (line.rfind("event: ", 0) == 0)
                cur.name = line.substr(7);
            else if (line.rfind("data: ", 0) == 0)
                cur.data = nlohmann::json::parse(line.substr(6), nullptr, false);
            else if (line.empty() && (!cur.name.empty() || !cur.data.is_null()))
                out.push_back(std::exchange(cur, SseEvent{}));
        }
        return out;
    }
    // The stories260K reference (llama.cpp's greedy continuation) for prompt `i`.
    static nlohmann::json reference(size_t i = 0) {
        std::ifstream f(shared_path("models/stories260K.reference.json"));
        return nlohmann::json::parse(f)[i];
    }
    // /api/generate with raw: true at temperature 0 (no repeat penalty): the model's greedy
    // continuation of exactly `prompt`.
    nlohmann::json greedy_raw(const std::string& model, const std::string& prompt, int n) {
        return post_ok("/api/generate",
                       {{"model", model},
                        {"prompt", prompt},
                        {"raw", true},
                        {"stream", false},
                        {"options", {{"temperature", 0}, {"repeat_penalty", 1.0}, {"num_predict", n}}}});
    }

    LoopbackServer loop_{
        {{"stories.gguf", "models/stories260K.gguf"}, {"qwen3.gguf", "models/synthetic/qwen3-f32.gguf"}}};
};

// Greedy options in each API's own names.
inline nlohmann::json greedy_options(int n) {
    return {{"temperature", 0}, {"repeat_penalty", 1.0}, {"num_predict", n}};
}

// Trims spaces and newlines at both ends (the reasoning/content splitter does).
inline std::string trimmed(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace hearth::test
