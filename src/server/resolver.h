// The seam between the daemon and wherever models come from. The model manager only sees a
// ModelResolver: `resolve` maps a request's model name to a GGUF path plus what a store
// manifest may add (template, system prompt, default options); `list` enumerates what
// /api/tags shows. directory_resolver() serves plain .gguf files; store_resolver.h puts the
// model store behind the same seam.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::server {

struct StoredModel;  // store_resolver.h

struct ResolvedModel {
    std::string name;  // canonical name: the manager's key and what /api/ps shows
    std::string path;  // the GGUF file
    std::optional<std::string> template_override;  // Jinja chat template replacing the GGUF's
    std::optional<std::string> system;             // default system prompt
    nlohmann::json options = nlohmann::json::object();  // default request options (Ollama names)
    nlohmann::json messages = nlohmann::json::array();  // MESSAGE turns put before the chat's own
    std::string digest;  // store models: the manifest's sha256 (hex); empty for plain .gguf files
    std::shared_ptr<const StoredModel> stored;  // store models: the manifest read into its parts
};

struct ModelEntry {
    std::string name;  // as /api/tags shows it ("stories:latest")
    std::string path;
    uint64_t size = 0;
    std::chrono::system_clock::time_point modified;
    std::string digest;      // store models: the manifest's sha256 (hex); empty: derived from the file
    nlohmann::json details;  // store models: Ollama's `details` from the config blob; null: read the GGUF
};

struct ModelResolver {
    std::function<std::optional<ResolvedModel>(const std::string& name)> resolve;
    std::function<std::vector<ModelEntry>()> list;
};

// "name:latest" -> "name"; other tags are kept.
std::string strip_latest_tag(const std::string& name);

// Resolves a name that is an existing `.gguf` path, or `<dir>/<name>.gguf` / `<dir>/<name>`
// (names with '/' or ".." never reach into the directory); lists each `.gguf` in `dir`.
// An empty `dir` resolves paths only and lists nothing.
ModelResolver directory_resolver(std::string dir);

}  // namespace hearth::server
