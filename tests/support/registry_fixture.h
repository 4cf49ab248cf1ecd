// Helpers for the registry tests: a real model (stories260K) put into a store the way
// `hearth create` lays it out, and a listing of a store's visible files.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/store.h"
#include "support/paths.h"

namespace hearth::test {

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The model layer (stories260K.gguf), a template, params and the config blob.
inline store::Manifest stories_manifest(const store::Store& s) {
    using namespace store;
    Manifest m;
    const ImportResult gguf = s.import_file(shared_path("models/stories260K.gguf"));
    m.layers.push_back(Layer{std::string(media_type::kModel), gguf.digest, gguf.size, ""});
    for (auto [type, text] : {std::pair{media_type::kTemplate, std::string("{% for m in messages %}{{ m['content'] }}{% endfor %}")},
                              std::pair{media_type::kParams, std::string(R"({"temperature":0})")}})
        m.layers.push_back(Layer{std::string(type), s.put_blob(text), text.size(), ""});
    ModelConfig c;
    c.model_family = "llama";
    c.model_families = {"llama"};
    c.model_type = "260K";
    c.file_type = "F32";
    c.set_layers(m.layers);
    const std::string cj = c.to_json();
    m.config = Layer{std::string(media_type::kConfig), s.put_blob(cj), cj.size(), ""};
    return m;
}

// Writes stories260K into `s` as `name`; returns the manifest's digest.
inline store::Digest add_stories_model(const store::Store& s, const std::string& name) {
    return s.write_manifest(store::ModelName::parse(name), stories_manifest(s));
}

// Every regular file under `root` (relative paths, sorted); `-partial` files (resumable
// downloads, not part of the visible store) are left out unless `with_partials`.
inline std::vector<std::string> visible_files(const std::filesystem::path& root, bool with_partials = false) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!std::filesystem::exists(root, ec)) return out;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec); !ec && it != decltype(it)(); it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        const std::string rel = std::filesystem::relative(it->path(), root).string();
        if (!with_partials && rel.find("-partial") != std::string::npos) continue;
        out.push_back(rel);
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace hearth::test
