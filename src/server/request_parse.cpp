#include "server/request_parse.h"

#include <cmath>

#include "server/config.h"

namespace hearth::server {

namespace {

const nlohmann::json* field(const nlohmann::json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

}  // namespace

std::optional<std::string> get_string(const nlohmann::json& obj, const char* key, const std::string& name) {
    const auto* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw ApiError(400, name + " must be a string");
    return v->get<std::string>();
}

std::optional<bool> get_bool(const nlohmann::json& obj, const char* key, const std::string& name) {
    const auto* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw ApiError(400, name + " must be true or false");
    return v->get<bool>();
}

std::optional<int64_t> get_int(const nlohmann::json& obj, const char* key, const std::string& name, int64_t lo,
                               int64_t hi) {
    const auto* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw ApiError(400, name + " must be an integer");
    const std::string range = " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    int64_t x;
    if (v->is_number_unsigned()) {
        const uint64_t u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(hi)) throw ApiError(400, name + range);
        x = static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
        x = v->get<int64_t>();
    } else {
        const double d = v->get<double>();
        if (!std::isfinite(d) || d != std::floor(d) || d < double(lo) || d > double(hi)) throw ApiError(400, name + range);
        x = static_cast<int64_t>(d);
    }
    if (x < lo || x > hi) throw ApiError(400, name + range);
    return x;
}

std::optional<double> get_number(const nlohmann::json& obj, const char* key, const std::string& name, double limit) {
    const auto* v = field(obj, key);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw ApiError(400, name + " must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d)) throw ApiError(400, name + " must be a finite number");
    if (std::fabs(d) > limit) throw ApiError(400, name + " is out of range");
    return d;
}

std::string get_model_name(const nlohmann::json& body) {
    std::string name = get_string(body, "model", "model").value_or("");
    if (name.empty()) name = get_string(body, "name", "name").value_or("");  // older clients
    return name;
}

ResolvedModel resolve_model(const ModelResolver& resolver, const nlohmann::json& body) {
    const std::string name = get_model_name(body);
    if (name.empty()) throw ApiError(400, "model is required");
    std::optional<ResolvedModel> m;
    if (resolver.resolve) m = resolver.resolve(name);
    if (!m) throw ApiError(404, "model \"" + name + "\" not found, try pulling it first");
    return std::move(*m);
}

GenerateJob default_generate_job() {
    GenerateJob job;
    job.options.n_predict = -1;
    SamplingParams& sp = job.options.sampling;
    sp.temperature = 0.8f;
    sp.top_k = 40;
    sp.top_p = 0.9f;
    sp.min_p = 0.0f;
    sp.typical_p = 1.0f;
    sp.repeat_penalty = 1.0f;  // Ollama documents 1.1, but its engine applies no repeat penalty
    sp.repeat_last_n = 64;
    return job;
}

void apply_options(const nlohmann::json& options, GenerateJob& job, const std::string& prefix) {
    if (options.is_null()) return;
    if (!options.is_object()) throw ApiError(400, prefix.substr(0, prefix.size() - 1) + " must be an object");
    auto name = [&](const char* k) { return prefix + k; };
    SamplingParams& sp = job.options.sampling;
    if (auto v = get_int(options, "num_ctx", name("num_ctx"), 1, 1 << 20)) job.num_ctx = static_cast<int32_t>(*v);
    if (auto v = get_int(options, "num_predict", name("num_predict"), -2, 1 << 24))
        job.options.n_predict = *v < 0 ? -1 : static_cast<int32_t>(*v);
    if (auto v = get_int(options, "num_batch", name("num_batch"), 1, 1 << 16)) job.num_batch = static_cast<int32_t>(*v);
    if (auto v = get_int(options, "num_thread", name("num_thread"), 0, 1024)) job.num_thread = static_cast<int32_t>(*v);
    if (auto v = get_number(options, "temperature", name("temperature"))) sp.temperature = static_cast<float>(*v);
    if (auto v = get_int(options, "top_k", name("top_k"), 0, 1 << 24)) sp.top_k = static_cast<int32_t>(*v);
    if (auto v = get_number(options, "top_p", name("top_p"))) sp.top_p = static_cast<float>(*v);
    if (auto v = get_number(options, "min_p", name("min_p"))) sp.min_p = static_cast<float>(*v);
    if (auto v = get_number(options, "typical_p", name("typical_p"))) sp.typical_p = static_cast<float>(*v);
    if (auto v = get_number(options, "repeat_penalty", name("repeat_penalty"))) sp.repeat_penalty = static_cast<float>(*v);
    if (auto v = get_int(options, "repeat_last_n", name("repeat_last_n"), -1, 1 << 24)) sp.repeat_last_n = static_cast<int32_t>(*v);
    if (auto v = get_number(options, "presence_penalty", name("presence_penalty"))) sp.presence_penalty = static_cast<float>(*v);
    if (auto v = get_number(options, "frequency_penalty", name("frequency_penalty")))
        sp.frequency_penalty = static_cast<float>(*v);
    if (auto v = get_int(options, "seed", name("seed"), INT64_MIN, INT64_MAX)) {
        if (*v >= 0) sp.seed = static_cast<uint64_t>(*v);  // negative: a random seed
    }
    if (const auto* stop = field(options, "stop")) {
        job.options.stop.clear();
        if (stop->is_string()) {
            job.options.stop.push_back(stop->get<std::string>());
        } else if (stop->is_array()) {
            for (const auto& s : *stop) {
                if (!s.is_string()) throw ApiError(400, name("stop") + " must be a string or an array of strings");
                job.options.stop.push_back(s.get<std::string>());
            }
        } else {
            throw ApiError(400, name("stop") + " must be a string or an array of strings");
        }
        std::erase_if(job.options.stop, [](const std::string& s) { return s.empty(); });
    }
    if (std::string err = sp.validate(); !err.empty()) throw ApiError(400, prefix + err);
}

std::optional<KeepAlive> parse_keep_alive(const nlohmann::json& body) {
    const auto* v = field(body, "keep_alive");
    if (!v) return std::nullopt;
    std::optional<KeepAlive> d;
    if (v->is_number()) d = seconds_to_duration(v->get<double>());
    else if (v->is_string()) d = parse_duration(v->get<std::string>());
    else throw ApiError(400, "keep_alive must be a duration such as \"5m\" or a number of seconds");
    if (!d) throw ApiError(400, "keep_alive must be a duration such as \"5m\" or a number of seconds");
    return d;
}

std::shared_ptr<RequestState> submit_request(ModelManager& models, Request req) {
    std::shared_ptr<RequestState> st = req.state;
    switch (models.submit(std::move(req))) {
    case SubmitResult::Queued: return st;
    case SubmitResult::QueueFull:
        throw ApiError(503, "server busy, please try again: too many requests are waiting for this model (HEARTH_MAX_QUEUE)");
    case SubmitResult::ShuttingDown: break;
    }
    throw ApiError(503, "the server is shutting down");
}

}  // namespace hearth::server
