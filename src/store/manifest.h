// Docker v2 image manifests and the model config blob, in Ollama's JSON shapes
// (see store/store.h for the folder).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/name.h"

namespace hearth::store {

namespace media_type {
inline constexpr std::string_view kManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kModel = "application/vnd.ollama.image.model";
inline constexpr std::string_view kTemplate = "application/vnd.ollama.image.template";
inline constexpr std::string_view kSystem = "application/vnd.ollama.image.system";
inline constexpr std::string_view kParams = "application/vnd.ollama.image.params";
inline constexpr std::string_view kMessages = "application/vnd.ollama.image.messages";
inline constexpr std::string_view kLicense = "application/vnd.ollama.image.license";
inline constexpr std::string_view kAdapter = "application/vnd.ollama.image.adapter";
inline constexpr std::string_view kProjector = "application/vnd.ollama.image.projector";
}  // namespace media_type

// One blob a manifest points at (a layer, or the config).
struct Layer {
    std::string media_type;
    Digest digest;
    uint64_t size = 0;
    std::string from;  // Ollama's optional "from" (the model a layer was inherited from); "" = absent

    bool operator==(const Layer&) const = default;
};

struct Manifest {
    int schema_version = 2;
    std::string media_type = std::string(media_type::kManifest);
    Layer config;
    std::vector<Layer> layers;

    // Sum of the layer sizes and the config size (what `ollama list` shows as SIZE).
    uint64_t total_size() const;
    // Every blob referenced: config first, then the layers in order (duplicates kept).
    std::vector<Digest> digests() const;
    // The first layer of this media type, or nullptr.
    const Layer* find(std::string_view media_type) const;
    std::vector<const Layer*> find_all(std::string_view media_type) const;

    // Compact JSON in Go's field order (schemaVersion, mediaType, config, layers), as Ollama
    // writes it: the bytes whose SHA-256 is the model's ID.
    std::string to_json() const;
    // Validating parse: schemaVersion 2, config and layers present, every digest valid, sizes
    // non-negative integers. Unknown fields are ignored. Throws StoreError(Corrupt).
    static Manifest parse(std::string_view json);

    bool operator==(const Manifest&) const = default;
};

// The config blob (media type kConfig), Ollama's ConfigV2. The lead fills the model fields
// from GGUF metadata: model_family = general.architecture, model_type = parameter size
// ("8.0B"), file_type = quantization ("Q4_K_M"). `architecture` and `os` are the image
// platform as in Docker (Ollama writes "amd64" and "linux"), not the model architecture.
struct ModelConfig {
    std::string model_format = "gguf";
    std::string model_family;
    std::vector<std::string> model_families;
    std::string model_type;
    std::string file_type;
    std::string architecture = "amd64";
    std::string os = "linux";
    std::string rootfs_type = "layers";
    std::vector<Digest> diff_ids;  // the layers' digests, in manifest order

    // Sets diff_ids from the layers.
    void set_layers(const std::vector<Layer>& layers);
    // Compact JSON in Ollama's field order; model_families is null when empty (as Go writes a
    // nil slice).
    std::string to_json() const;
    // Lenient parse (missing fields keep their defaults); throws StoreError(Corrupt) on bad JSON.
    static ModelConfig parse(std::string_view json);

    bool operator==(const ModelConfig&) const = default;
};

}  // namespace hearth::store
