// What the listing routes say about a GGUF without loading it: details (family, parameter
// size, quantization), metadata as JSON, capabilities, a cheap stable digest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::gguf {
class File;
}

namespace hearth::server {

struct ModelDetails {
    std::string format = "gguf";
    std::string family;
    std::vector<std::string> families;
    std::string parameter_size;      // "1.1B", "260K"
    std::string quantization_level;  // "Q4_0", "F16"
    uint64_t n_params = 0;
    int64_t context_length = 0;
    bool encoder = false;            // an embedding model
    nlohmann::json to_json() const;  // Ollama's `details` object
};

ModelDetails model_details(const gguf::File& f);

// "1.1B", "137M", "260K" (Ollama's style).
std::string human_count(uint64_t n);
// general.file_type's name ("Q4_K_M"), else the most common tensor type's.
std::string quantization_name(const gguf::File& f);

// GGUF metadata -> {key: value}; arrays become null unless `verbose`.
nlohmann::json metadata_json(const gguf::File& f, bool verbose);

// "completion" or "embedding", plus "tools" when the chat template mentions tools and
// "thinking" when it has a thinking section (template_thinks).
std::vector<std::string> capabilities(const gguf::File& f, const std::string& template_source);

// A stable id from the path, size and modification time (hashing weights is too slow).
std::string cheap_digest(const std::string& path);

}  // namespace hearth::server
