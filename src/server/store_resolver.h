// The model store as the daemon's ModelResolver: a request's model name is looked up in the
// store (Ollama's name rules, case-insensitive, `name` = `name:latest`) and its manifest's
// layers become what the runner needs (the GGUF blob, template, system prompt, parameters,
// messages). A `.gguf` path and, when a legacy folder is given, `<dir>/<name>.gguf` still
// resolve as with directory_resolver().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/resolver.h"
#include "store/store.h"

namespace hearth::server {

// One stored model's manifest read into the parts the daemon uses.
struct StoredModel {
    store::ModelName name;  // as spelled on disk
    store::Manifest manifest;
    store::Digest digest;  // sha256 of the manifest bytes
    store::ModelConfig config;
    std::chrono::system_clock::time_point modified;
    std::string model_path;                // the model layer's blob; empty when there is none
    std::string parent_model;              // the model layer's "from" (the model it came from)
    std::vector<std::string> adapter_paths;
    std::optional<std::string> template_text;  // the template layer as stored
    bool template_is_jinja = false;            // it parses as Jinja (else Hearth ignores it)
    std::string template_error;                // why it does not
    std::optional<std::string> system;
    nlohmann::json params = nlohmann::json::object();  // the params layer (Ollama option names)
    nlohmann::json messages = nlohmann::json::array();
    std::vector<std::string> licenses;

    // The template Hearth uses in place of the GGUF's: the layer when it is Jinja.
    std::optional<std::string> jinja_template() const {
        return template_is_jinja ? template_text : std::nullopt;
    }
    // Ollama's `details` object from the config blob (parent_model left empty, as /api/tags).
    nlohmann::json details_json() const;
};

// Ollama's `details` object from a config blob (parent_model left empty, as /api/tags).
nlohmann::json config_details_json(const store::ModelConfig& config);
// The config blob of `manifest` (defaults when the blob is absent); throws StoreError when it
// is unreadable or not JSON.
store::ModelConfig read_model_config(const store::Store& store, const store::Manifest& manifest);

// Reads the model `name` names (after Store::resolve). nullptr when the store has no such
// model; throws StoreError when its manifest or a small layer is unreadable or corrupt. The
// manifest is read every time; its layers only when its digest is not among the last few read
// (a process-wide cache keyed by store root and manifest digest: blobs are content-addressed,
// so a changed manifest is a new digest and is read afresh).
std::shared_ptr<const StoredModel> load_stored_model(const store::Store& store, const store::ModelName& name);

// The resolver over `store` (copied: copies share pins and locks). Names resolve in this
// order: an existing `.gguf` path, a store model, then `<legacy_dir>/<name>.gguf` when
// legacy_dir is set. A template layer that is not Jinja (e.g. a Go template from Ollama's
// registry) is ignored with a one-line warning on stderr (once per template blob), so the
// GGUF's own template applies. `list` gives the store's models, newest first (read from the
// manifests and config blobs only), then the legacy folder's files.
ModelResolver store_resolver(store::Store& store, std::string legacy_dir);

}  // namespace hearth::server
