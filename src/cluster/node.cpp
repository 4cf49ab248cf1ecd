// The node record's JSON form and the model key names are compared by.
#include "cluster/node.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "store/name.h"

namespace hearth::cluster {

std::string nodes_prefix(std::string_view cluster) { return "/hearth/v1/" + std::string(cluster) + "/nodes/"; }

std::string node_key(std::string_view cluster, std::string_view node_id) { return nodes_prefix(cluster) + std::string(node_id); }

std::string NodeRecord::to_json() const {
    nlohmann::json j = {{"id", id},
                        {"url", url},
                        {"version", version},
                        {"state", state},
                        {"models_loaded", models_loaded},
                        {"models", models},
                        {"parallel", parallel},
                        {"free_memory", free_memory},
                        {"started_at", started_at}};
    if (pipeline_stages > 0) j["pipeline_stages"] = pipeline_stages;
    return j.dump();
}

std::optional<NodeRecord> NodeRecord::from_json(std::string_view text) {
    const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (!j.is_object()) return std::nullopt;
    NodeRecord r;
    const auto str = [&](const char* k, std::string& out) {
        if (auto it = j.find(k); it != j.end() && it->is_string()) out = it->get<std::string>();
    };
    const auto list = [&](const char* k, std::vector<std::string>& out) {
        if (auto it = j.find(k); it != j.end() && it->is_array())
            for (const auto& v : *it)
                if (v.is_string()) out.push_back(v.get<std::string>());
    };
    str("id", r.id);
    str("url", r.url);
    str("version", r.version);
    str("state", r.state);
    str("started_at", r.started_at);
    list("models_loaded", r.models_loaded);
    list("models", r.models);
    if (auto it = j.find("parallel"); it != j.end() && it->is_number_integer()) r.parallel = it->get<int>();
    if (auto it = j.find("free_memory"); it != j.end() && it->is_number_unsigned()) r.free_memory = it->get<uint64_t>();
    if (auto it = j.find("pipeline_stages"); it != j.end() && it->is_number_integer()) r.pipeline_stages = it->get<int>();
    if (r.id.empty() || r.url.empty()) return std::nullopt;
    return r;
}

std::string model_key(std::string_view name) {
    if (auto n = store::ModelName::try_parse(name)) return n->fold_key();
    std::string s(name);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

}  // namespace hearth::cluster
