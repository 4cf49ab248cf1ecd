// What the HTTP layer hands a model's runner and what the runner sends back. These types do
// not depend on how the runner schedules work: the continuous-batching serving engine
// consumes Requests and produces each one's Events on its own channel.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/generate.h"
#include "sampling/grammar.h"
#include "server/channel.h"
#include "server/resolver.h"
#include "template/tool_calls.h"

namespace hearth::server {

using Clock = std::chrono::steady_clock;
using Nanos = std::chrono::nanoseconds;
// How long a model stays loaded after a request; negative: forever, zero: unload right away.
using KeepAlive = std::chrono::nanoseconds;

// How the runner turns a request into prompt tokens.
struct PromptSpec {
    bool raw = false;    // tokenize `text` as is
    std::string text;    // the raw prompt
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // rendered when !raw
    nlohmann::ordered_json tools;                                        // null or an array
    std::optional<std::string> template_override;  // request's `template` (Jinja)
    std::vector<int32_t> prefix;                    // /api/generate `context`: ids put first
    std::optional<bool> think;                      // `think`: thinking on/off (unset: the template's default)
    std::string think_level;                        // "low", "medium", "high" when the request named one
};

struct GenerateJob {
    PromptSpec prompt;
    GenerateOptions options;  // n_predict (< 0: until the end), sampling, stop strings
    int32_t num_ctx = 0;      // 0: the model's default
    int32_t num_batch = 0;    // 0: the default
    int32_t num_thread = 0;   // 0: physical cores (applies when a context is created)
    // The request's `format` ("json" or a JSON schema), kept verbatim, and the grammar
    // compiled from it (null: unconstrained). The runner masks logits with it.
    nlohmann::json format;
    std::shared_ptr<const Grammar> grammar;
    // tool_choice requires a call: to this tool ("": any of prompt.tools). The runner, which
    // knows the template's tool-call syntax, compiles the grammar (tool_choice.h).
    std::optional<std::string> force_tool_call;
};

struct EmbedJob {
    std::vector<std::string> inputs;
    bool normalize = true;  // /api/embed normalizes, legacy /api/embeddings does not
    bool truncate = true;   // cut inputs longer than the context instead of failing
};

enum class JobKind { Generate, Embed, Load, Unload };

struct TokenProb {
    std::string token;
    float logprob = 0;
    std::vector<std::pair<std::string, float>> top;  // most likely first
};

struct Stats {
    Nanos total{0}, load{0}, prompt_eval{0}, eval{0};
    int32_t prompt_eval_count = 0;
    int32_t eval_count = 0;
    int32_t cached_tokens = 0;  // prompt tokens served from the prefix cache (not recomputed)
};

struct Event {
    enum class Kind {
        Started,     // the prompt is accepted; tokens follow (the HTTP status is 200 from here)
        Token,       // text (possibly empty) and, when asked, the token's log-probability
        Done,        // the end: done_reason, stats, context
        Embeddings,  // the vectors, then nothing else
        Error,       // status + message; nothing follows
    };
    Kind kind = Kind::Token;
    int status = 200;
    std::string text;  // Token: the text; Error: the message
    std::optional<TokenProb> prob;
    std::string done_reason;  // "stop", "length", "load", "unload", "cancelled"
    std::string stop_sequence;  // Done: the stop string that ended the generation, if one did
    Stats stats;
    std::vector<int32_t> context;  // Done: prompt + generated ids
    std::vector<std::vector<float>> embeddings;
    ToolCallFormat tool_format = ToolCallFormat::None;  // Started: the template's tool-call syntax
    bool thinking = false;        // Started: split <think> reasoning off the output (think on, template thinks)
    bool reasoning_open = false;  // Started: the rendered prompt ends inside <think>

    static Event error(int status, std::string message) {
        Event e;
        e.kind = Kind::Error;
        e.status = status;
        e.text = std::move(message);
        return e;
    }
};

// Shared by the HTTP thread and the runner for one request's lifetime.
struct RequestState {
    Channel<Event> events;
    std::atomic<bool> cancelled{false};  // set when the client went away; checked every step
    std::shared_ptr<void> in_flight;     // ModelManager's in-flight count holds while the state lives
};

struct Request {
    JobKind kind = JobKind::Generate;
    ResolvedModel model;
    GenerateJob gen;
    EmbedJob embed;
    std::optional<KeepAlive> keep_alive;  // absent: the server default
    Clock::time_point received = Clock::now();
    std::shared_ptr<RequestState> state = std::make_shared<RequestState>();
};

}  // namespace hearth::server
