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
};
// The interactive session of `hearth run` over /api/chat (see repl.cpp). Reads lines from
// stdin (a terminal or a pipe) until /bye or end of input.
void run_repl(DaemonClient& client, ReplOptions opts);

}  // namespace hearth::cli
