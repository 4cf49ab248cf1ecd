#include "server/model_info.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <map>

#include "gguf/gguf.h"
#include "server/prompt.h"

namespace hearth::server {

namespace {

const char* file_type_name(uint64_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    case 38: return "MXFP4";  // llama.cpp's MXFP4_MOE (gpt-oss)
    default: return nullptr;
    }
}

nlohmann::json value_json(const gguf::Value& v, bool verbose) {
    using gguf::ValueType;
    switch (v.type()) {
    case ValueType::BOOL: return v.as_bool();
    case ValueType::STRING: return v.as_string();
    case ValueType::FLOAT32:
    case ValueType::FLOAT64: return v.as_f64();
    case ValueType::ARRAY: {
        if (!verbose) return nullptr;
        nlohmann::json a = nlohmann::json::array();
        for (const auto& item : v.as_array().items) a.push_back(value_json(item, verbose));
        return a;
    }
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64: return v.as_i64();
    default: return v.as_u64();
    }
}

}  // namespace

std::string human_count(uint64_t n) {
    char buf[32];
    auto fmt = [&](double v, const char* unit) {
        if (v >= 100) std::snprintf(buf, sizeof buf, "%.0f%s", v, unit);
        else std::snprintf(buf, sizeof buf, "%.1f%s", v, unit);
    };
    if (n >= 1'000'000'000ull) fmt(double(n) / 1e9, "B");
    else if (n >= 1'000'000ull) fmt(double(n) / 1e6, "M");
    else if (n >= 1'000ull) std::snprintf(buf, sizeof buf, "%.0fK", double(n) / 1e3);
    else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
    return buf;
}

std::string quantization_name(const gguf::File& f) {
    try {
        if (auto ft = f.get_u64("general.file_type"))
            if (const char* n = file_type_name(*ft)) return n;
    } catch (const std::exception&) {
    }
    std::map<std::string, uint64_t> bytes_by_type;
    for (const auto& t : f.tensors()) bytes_by_type[type_name(t.type)] += t.nbytes;
    std::string best;
    uint64_t most = 0;
    for (const auto& [name, b] : bytes_by_type)
        if (b > most) {
            most = b;
            best = name;
        }
    for (char& c : best) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return best;
}

ModelDetails model_details(const gguf::File& f) {
    ModelDetails d;
    d.family = f.architecture();
    if (!d.family.empty()) d.families.push_back(d.family);
    for (const auto& t : f.tensors()) d.n_params += static_cast<uint64_t>(t.n_elements());
    d.parameter_size = human_count(d.n_params);
    d.quantization_level = quantization_name(f);
    d.encoder = d.family == "bert" || d.family == "nomic-bert";
    try {
        if (auto n = f.get_i64(d.family + ".context_length")) d.context_length = *n;
    } catch (const std::exception&) {
    }
    return d;
}

nlohmann::json ModelDetails::to_json() const {
    return {{"parent_model", ""},
            {"format", format},
            {"family", family},
            {"families", families},
            {"parameter_size", parameter_size},
            {"quantization_level", quantization_level}};
}

nlohmann::json metadata_json(const gguf::File& f, bool verbose) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : f.metadata()) {
        if (key == "tokenizer.chat_template") continue;  // /api/show returns it as `template`
        out[key] = value_json(value, verbose);
    }
    out["general.parameter_count"] = model_details(f).n_params;
    return out;
}

std::vector<std::string> capabilities(const gguf::File& f, const std::string& template_source) {
    std::vector<std::string> caps;
    const ModelDetails d = model_details(f);
    if (d.encoder) {
        caps.push_back("embedding");
        return caps;
    }
    caps.push_back("completion");
    if (template_source.find("tools") != std::string::npos) caps.push_back("tools");
    if (template_thinks(template_source)) caps.push_back("thinking");
    return caps;
}

std::string cheap_digest(const std::string& path) {
    struct stat st {};
    uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    auto mix = [&](const void* p, size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (size_t i = 0; i < n; ++i) {
            h ^= b[i];
            h *= 1099511628211ull;
        }
    };
    mix(path.data(), path.size());
    if (stat(path.c_str(), &st) == 0) {
        mix(&st.st_size, sizeof st.st_size);
        mix(&st.st_mtim, sizeof st.st_mtim);
        mix(&st.st_ino, sizeof st.st_ino);
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

}  // namespace hearth::server
