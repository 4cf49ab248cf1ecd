// The store-backed ModelResolver (see store_resolver.h).
#include "server/store_resolver.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <system_error>

#include "template/template.h"

namespace hearth::server {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kMaxTextLayer = 16u << 20;  // template/system/params/messages/license blobs

std::chrono::system_clock::time_point to_system(fs::file_time_type t) {
    return std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(t));
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Prints the warning about a non-Jinja template layer once per blob.
void warn_ignored_template(const StoredModel& m) {
    static std::mutex mu;
    static std::set<std::string> warned;
    const store::Layer* layer = m.manifest.find(store::media_type::kTemplate);
    if (!layer) return;
    std::lock_guard lk(mu);
    if (!warned.insert(layer->digest.hex).second) return;
    std::fprintf(stderr,
                 "hearth: warning: %s: the template layer %s is not a Jinja template (%s); using the GGUF's chat "
                 "template\n",
                 m.name.display().c_str(), layer->digest.str().c_str(), m.template_error.c_str());
}

}  // namespace

json config_details_json(const store::ModelConfig& config) {
    json families = config.model_families.empty() ? json(nullptr) : json(config.model_families);
    return {{"parent_model", ""},
            {"format", config.model_format},
            {"family", config.model_family},
            {"families", families},
            {"parameter_size", config.model_type},
            {"quantization_level", config.file_type}};
}

json StoredModel::details_json() const { return config_details_json(config); }

store::ModelConfig read_model_config(const store::Store& store, const store::Manifest& manifest) {
    if (!store.has_blob(manifest.config.digest)) return {};
    return store::ModelConfig::parse(store.read_blob_text(manifest.config.digest, kMaxTextLayer));
}

namespace {

// Store models read into their parts, keyed by store root and manifest digest. A manifest's
// layers are content-addressed blobs, so what they say cannot change while the manifest's
// digest stays the same: a request then reads only its manifest, and a changed manifest (a
// new digest) is read afresh. Least recently used entries go beyond kCapacity.
class StoredModelCache {
public:
    std::shared_ptr<const StoredModel> find(const std::string& key) {
        std::lock_guard lk(mu_);
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (it->first != key) continue;
            std::rotate(entries_.begin(), it, it + 1);  // to the front
            return entries_.front().second;
        }
        return nullptr;
    }
    void put(const std::string& key, std::shared_ptr<const StoredModel> m) {
        std::lock_guard lk(mu_);
        std::erase_if(entries_, [&](const Entry& e) { return e.first == key; });
        entries_.insert(entries_.begin(), Entry{key, std::move(m)});
        if (entries_.size() > kCapacity) entries_.pop_back();
    }

private:
    static constexpr size_t kCapacity = 16;
    using Entry = std::pair<std::string, std::shared_ptr<const StoredModel>>;
    std::mutex mu_;
    std::vector<Entry> entries_;  // most recently used first
};

StoredModelCache& stored_model_cache() {
    static StoredModelCache cache;
    return cache;
}

// Reads the layers of `m.manifest` (name, digest and modified already set).
void read_layers(const store::Store& store, StoredModel& m) {
    m.config = read_model_config(store, m.manifest);

    auto text = [&](const store::Layer& l) { return store.read_blob_text(l.digest, kMaxTextLayer); };
    for (const store::Layer& l : m.manifest.layers) {
        const std::string& t = l.media_type;
        if (t == store::media_type::kModel) {
            if (m.model_path.empty()) {
                m.model_path = store.blob_path(l.digest).string();
                m.parent_model = l.from;
            }
        } else if (t == store::media_type::kAdapter) {
            m.adapter_paths.push_back(store.blob_path(l.digest).string());
        } else if (t == store::media_type::kTemplate) {
            m.template_text = text(l);
        } else if (t == store::media_type::kSystem) {
            m.system = text(l);
        } else if (t == store::media_type::kParams) {
            try {
                json p = json::parse(text(l));
                if (p.is_object()) m.params = std::move(p);
            } catch (const json::exception& e) {
                throw store::StoreError(store::StoreErrorKind::Corrupt,
                                        "the params layer " + l.digest.str() + " is not JSON: " + e.what());
            }
        } else if (t == store::media_type::kMessages) {
            try {
                json p = json::parse(text(l));
                if (p.is_array()) m.messages = std::move(p);
            } catch (const json::exception& e) {
                throw store::StoreError(store::StoreErrorKind::Corrupt,
                                        "the messages layer " + l.digest.str() + " is not JSON: " + e.what());
            }
        } else if (t == store::media_type::kLicense) {
            m.licenses.push_back(text(l));
        }
    }
    if (m.template_text) {
        try {
            Template::parse(*m.template_text);
            m.template_is_jinja = true;
        } catch (const std::exception& e) {
            m.template_error = e.what();
        }
    }
}

}  // namespace

std::shared_ptr<const StoredModel> load_stored_model(const store::Store& store, const store::ModelName& name) {
    const store::ModelName resolved = store.resolve(name);
    std::string bytes;
    try {
        bytes = store.read_manifest_bytes(resolved);
    } catch (const store::StoreError& e) {
        if (e.kind() == store::StoreErrorKind::NotFound) return nullptr;
        throw;
    }
    const store::Digest digest = store::Digest::of(bytes);
    std::error_code ec;
    const auto mtime = fs::last_write_time(store.manifest_path(resolved), ec);
    const auto modified = ec ? std::chrono::system_clock::now() : to_system(mtime);

    const std::string key = store.root().string() + '\n' + digest.hex;
    StoredModelCache& cache = stored_model_cache();
    if (std::shared_ptr<const StoredModel> hit = cache.find(key)) {
        if (hit->name == resolved && hit->modified == modified) return hit;
        // The same manifest under another name (a copy) or written again: only those differ.
        auto m = std::make_shared<StoredModel>(*hit);
        m->name = resolved;
        m->modified = modified;
        cache.put(key, m);
        return m;
    }
    auto m = std::make_shared<StoredModel>();
    m->name = resolved;
    m->manifest = store::Manifest::parse(bytes);
    m->digest = digest;
    m->modified = modified;
    read_layers(store, *m);
    cache.put(key, m);
    return m;
}

ModelResolver store_resolver(store::Store& store_ref, std::string legacy_dir) {
    const store::Store store = store_ref;  // copies share the store's state
    const ModelResolver legacy = directory_resolver(legacy_dir);
    ModelResolver r;
    r.resolve = [store, legacy](const std::string& requested) -> std::optional<ResolvedModel> {
        if (requested.empty()) return std::nullopt;
        // An existing .gguf file named by its path wins, as with directory_resolver.
        if (ends_with(requested, ".gguf")) {
            std::error_code ec;
            if (fs::is_regular_file(requested, ec)) return legacy.resolve(requested);
        }
        if (auto name = store::ModelName::try_parse(requested)) {
            if (std::shared_ptr<const StoredModel> m = load_stored_model(store, *name)) {
                if (m->model_path.empty())
                    throw std::runtime_error("model \"" + requested + "\" has no model layer in its manifest");
                if (m->template_text && !m->template_is_jinja) warn_ignored_template(*m);
                ResolvedModel out;
                out.name = m->name.display();
                out.path = m->model_path;
                out.template_override = m->jinja_template();
                out.system = m->system;
                out.options = m->params;
                out.messages = m->messages;
                out.digest = m->digest.hex;
                out.stored = std::move(m);
                return out;
            }
        }
        return legacy.resolve(requested);
    };
    r.list = [store, legacy]() {
        std::vector<ModelEntry> out;
        // Only the manifests (Store::list reads them) and the config blobs: the details are
        // the config's, so no text layer or GGUF is read.
        for (const store::ModelInfo& info : store.list()) {
            store::ModelConfig config;
            try {
                config = read_model_config(store, info.manifest);
            } catch (const std::exception&) {
                continue;  // unreadable: left out, as Store::list leaves out invalid manifests
            }
            ModelEntry e;
            e.name = info.name.display();
            if (const store::Layer* model = info.manifest.find(store::media_type::kModel))
                e.path = store.blob_path(model->digest).string();
            e.size = info.size;
            e.modified = to_system(info.modified);
            e.digest = info.digest.hex;
            e.details = config_details_json(config);
            out.push_back(std::move(e));
        }
        for (ModelEntry& e : legacy.list()) out.push_back(std::move(e));
        return out;
    };
    return r;
}

}  // namespace hearth::server
