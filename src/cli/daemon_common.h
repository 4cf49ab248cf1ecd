// Pieces the daemon commands share across their files: how a model argument is sent, how
// names are compared with what the daemon reports, pulling with a progress display, the
// `show` view, and the interactive session of `hearth run`.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/client.h"

namespace hearth::cli {

// The name sent to the daemon: a path to an existing file (or anything ending in `.gguf`)
// becomes absolute, since the daemon resolves paths from its own working directory; other
// names are sent as written.
std::string model_arg(const std::string& name);

// Whether a name the user typed and one the daemon reports mean the same model: equal, or
// equal model names ignoring case and the default host/namespace/tag.
bool same_model(const std::string& typed, const std::string& reported);

// POST /api/pull with the progress display; throws ClientError.
void pull_model(DaemonClient& client, const std::string& name, bool insecure);

// Ollama's `show` view (Model, Capabilities, Parameters, System, License; Metadata with
// verbose) of a /api/show answer.
std::string render_show_info(const nlohmann::json& show, bool verbose);

struct ReplOptions {
    std::string model;
    bool verbose = false;
    std::optional<std::string> format;      // "json"
    std::optional<std::string> keep_alive;  // "5m", "-1", …
    bool word_wrap = true;
    bool insecure = false;
    nlohmann::json think;        // null: the model's default; true/false or "high"/"medium"/"low"
    bool hide_thinking = false;  // think, but print only the answer
};

// Prints a streamed reply's thinking (dimmed on a terminal, between "Thinking..." and
// "...done thinking.") and its answer, as Ollama's CLI does; one per reply.
class ThinkingPrinter {
public:
    ThinkingPrinter(std::FILE* out, bool hide) : out_(out), hide_(hide) {}
    // Thinking text of one streamed object.
    void thinking(const std::string& text);
    // Call before writing answer text, and at the end of the reply: closes the thinking section.
    void before_answer();

private:
    std::FILE* out_;
    bool hide_;
    bool open_ = false, tty_ = false, checked_ = false;
};

// `--think` / `/set think` values: "", "true", "false", "high", "medium", "low" -> the request's
// `think`; nullopt for anything else.
std::optional<nlohmann::json> parse_think_value(const std::string& v);
// The interactive session of `hearth run` over /api/chat (see repl.cpp). Reads lines from
// stdin (a terminal or a pipe) until /bye or end of input.
void run_repl(DaemonClient& client, ReplOptions opts);

}  // namespace hearth::cli
