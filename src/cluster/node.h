// cluster/ owns serving past one machine: the etcd client (etcd.*, over etcd's v3 JSON
// gateway), a daemon's registration in the cluster (registrar.*: a node record on a lease),
// and `hearth router` (router*.cpp: the membership view, routing policies with a prefix
// index, the proxy with retries, breakers, probes and a watchdog). This file: the node record
// a daemon writes to etcd and the router reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::cluster {

// Where node records live: /hearth/v1/<cluster>/nodes/<node-id>.
std::string nodes_prefix(std::string_view cluster);
std::string node_key(std::string_view cluster, std::string_view node_id);

// One daemon, as registered. Load that changes per request (queue, running) is not here:
// the router reads it from the daemon's /metrics.
struct NodeRecord {
    std::string id;        // unique in the cluster (default: <hostname>-<port>)
    std::string url;       // http://host:port the router reaches it at
    std::string version;
    std::string state = "ready";              // "ready" or "draining"
    std::vector<std::string> models_loaded;   // names as /api/ps gives them
    std::vector<std::string> models;          // every model it can serve (store + --models-dir), as /api/tags
    int parallel = 0;                         // sequences decoded together per model
    uint64_t free_memory = 0;                 // bytes of the model budget not in use
    std::string started_at;                   // RFC 3339
    int pipeline_stages = 0;                  // serve --pipeline: the ranks one model is split over (0: one process)

    std::string to_json() const;
    // nullopt when the text is not a record (missing id or url).
    static std::optional<NodeRecord> from_json(std::string_view text);
    bool operator==(const NodeRecord&) const = default;
};

// The key a model name is compared by across nodes: Ollama's short form ("stories" and
// "stories:latest" match, case-insensitively); names that are not store names (a .gguf file
// served by file name) compare as lowercased text.
std::string model_key(std::string_view name);

}  // namespace hearth::cluster
