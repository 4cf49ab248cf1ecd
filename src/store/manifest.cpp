// Manifest and config JSON.
#include "store/manifest.h"

#include <nlohmann/json.hpp>

namespace hearth::store {

using ordered_json = nlohmann::ordered_json;

namespace {

[[noreturn]] void corrupt(const std::string& what) {
    throw StoreError(StoreErrorKind::Corrupt, "invalid manifest: " + what);
}

ordered_json layer_json(const Layer& l) {
    ordered_json j;
    j["mediaType"] = l.media_type;
    j["digest"] = l.digest.str();
    j["size"] = l.size;
    if (!l.from.empty()) j["from"] = l.from;
    return j;
}

Layer parse_layer(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) corrupt(where + " is not an object");
    Layer l;
    auto media = j.find("mediaType");
    if (media == j.end() || !media->is_string()) corrupt(where + ".mediaType is missing or not a string");
    l.media_type = media->get<std::string>();
    auto digest = j.find("digest");
    if (digest == j.end() || !digest->is_string()) corrupt(where + ".digest is missing or not a string");
    auto d = Digest::try_parse(digest->get_ref<const std::string&>());
    if (!d) corrupt(where + ".digest \"" + digest->get<std::string>().substr(0, 100) + "\" is not sha256:<64 hex>");
    l.digest = *d;
    auto size = j.find("size");
    if (size == j.end()) corrupt(where + ".size is missing");
    if (size->is_number_unsigned()) l.size = size->get<uint64_t>();
    else if (size->is_number_integer() && size->get<int64_t>() >= 0) l.size = static_cast<uint64_t>(size->get<int64_t>());
    else corrupt(where + ".size is not a non-negative integer");
    if (auto from = j.find("from"); from != j.end()) {
        if (!from->is_string()) corrupt(where + ".from is not a string");
        l.from = from->get<std::string>();
    }
    return l;
}

}  // namespace

uint64_t Manifest::total_size() const {
    uint64_t total = config.size;
    for (const Layer& l : layers) total += l.size;
    return total;
}

std::vector<Digest> Manifest::digests() const {
    std::vector<Digest> out;
    out.reserve(layers.size() + 1);
    out.push_back(config.digest);
    for (const Layer& l : layers) out.push_back(l.digest);
    return out;
}

const Layer* Manifest::find(std::string_view type) const {
    for (const Layer& l : layers)
        if (l.media_type == type) return &l;
    return nullptr;
}

std::vector<const Layer*> Manifest::find_all(std::string_view type) const {
    std::vector<const Layer*> out;
    for (const Layer& l : layers)
        if (l.media_type == type) out.push_back(&l);
    return out;
}

std::string Manifest::to_json() const {
    ordered_json j;
    j["schemaVersion"] = schema_version;
    j["mediaType"] = media_type;
    j["config"] = layer_json(config);
    j["layers"] = ordered_json::array();
    for (const Layer& l : layers) j["layers"].push_back(layer_json(l));
    return j.dump();
}

Manifest Manifest::parse(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        corrupt(std::string("not JSON (") + e.what() + ")");
    }
    if (!j.is_object()) corrupt("not a JSON object");
    Manifest m;
    auto version = j.find("schemaVersion");
    if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != 2)
        corrupt("schemaVersion is not 2");
    m.schema_version = 2;
    if (auto media = j.find("mediaType"); media != j.end()) {
        if (!media->is_string()) corrupt("mediaType is not a string");
        m.media_type = media->get<std::string>();
    }
    auto config = j.find("config");
    if (config == j.end()) corrupt("config is missing");
    m.config = parse_layer(*config, "config");
    auto layers = j.find("layers");
    if (layers == j.end() || !layers->is_array()) corrupt("layers is missing or not an array");
    for (size_t i = 0; i < layers->size(); ++i)
        m.layers.push_back(parse_layer((*layers)[i], "layers[" + std::to_string(i) + "]"));
    return m;
}

// ---- ModelConfig

void ModelConfig::set_layers(const std::vector<Layer>& layers) {
    diff_ids.clear();
    for (const Layer& l : layers) diff_ids.push_back(l.digest);
}

std::string ModelConfig::to_json() const {
    ordered_json j;
    j["model_format"] = model_format;
    j["model_family"] = model_family;
    j["model_families"] = model_families.empty() ? ordered_json(nullptr) : ordered_json(model_families);
    j["model_type"] = model_type;
    j["file_type"] = file_type;
    j["architecture"] = architecture;
    j["os"] = os;
    ordered_json ids = ordered_json::array();
    for (const Digest& d : diff_ids) ids.push_back(d.str());
    j["rootfs"] = ordered_json{{"type", rootfs_type}, {"diff_ids", ids}};
    return j.dump();
}

ModelConfig ModelConfig::parse(std::string_view text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw StoreError(StoreErrorKind::Corrupt, std::string("invalid model config: not JSON (") + e.what() + ")");
    }
    if (!j.is_object()) throw StoreError(StoreErrorKind::Corrupt, "invalid model config: not a JSON object");
    auto str = [&](const char* key, std::string& out) {
        if (auto it = j.find(key); it != j.end() && it->is_string()) out = it->get<std::string>();
    };
    ModelConfig c;
    str("model_format", c.model_format);
    str("model_family", c.model_family);
    str("model_type", c.model_type);
    str("file_type", c.file_type);
    str("architecture", c.architecture);
    str("os", c.os);
    if (auto it = j.find("model_families"); it != j.end() && it->is_array())
        for (const auto& f : *it)
            if (f.is_string()) c.model_families.push_back(f.get<std::string>());
    if (auto rootfs = j.find("rootfs"); rootfs != j.end() && rootfs->is_object()) {
        if (auto t = rootfs->find("type"); t != rootfs->end() && t->is_string()) c.rootfs_type = t->get<std::string>();
        if (auto ids = rootfs->find("diff_ids"); ids != rootfs->end() && ids->is_array()) {
            for (const auto& id : *ids) {
                auto d = id.is_string() ? Digest::try_parse(id.get_ref<const std::string&>()) : std::nullopt;
                if (!d) throw StoreError(StoreErrorKind::Corrupt, "invalid model config: bad rootfs.diff_ids entry");
                c.diff_ids.push_back(*d);
            }
        }
    }
    return c;
}

}  // namespace hearth::store
