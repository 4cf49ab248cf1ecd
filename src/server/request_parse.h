// Request parsing shared by the Ollama and OpenAI routes: typed field access that names the
// field in its 400, sampling/generation options, keep_alive, model resolution.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/http_util.h"
#include "server/model_manager.h"
#include "server/request.h"
#include "server/resolver.h"

namespace hearth::server {

// Field readers: absent or null -> nullopt; a wrong type -> ApiError(400) naming `name`.
std::optional<std::string> get_string(const nlohmann::json& obj, const char* key, const std::string& name);
std::optional<bool> get_bool(const nlohmann::json& obj, const char* key, const std::string& name);
// Integral numbers within [lo, hi] (a float with an integral value is accepted).
std::optional<int64_t> get_int(const nlohmann::json& obj, const char* key, const std::string& name, int64_t lo,
                               int64_t hi);
// Finite numbers with |v| <= limit.
std::optional<double> get_number(const nlohmann::json& obj, const char* key, const std::string& name,
                                 double limit = 1e6);

// The model a request names: body["model"], else the legacy body["name"] (older clients);
// "" when neither names one. A non-string is ApiError(400) naming the field.
std::string get_model_name(const nlohmann::json& body);

// The model named by body["model"] (or "name"; 400 when missing, 404 `model "x" not found, try pulling
// it first` when the resolver does not know it).
ResolvedModel resolve_model(const ModelResolver& resolver, const nlohmann::json& body);

// Applies Ollama-style options (num_ctx, num_predict, temperature, top_k, top_p, min_p,
// typical_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, seed, stop,
// num_batch, num_thread; num_keep and unknown keys ignored) onto `job`, then validates the
// sampling parameters. `prefix` names fields in errors ("options.").
void apply_options(const nlohmann::json& options, GenerateJob& job, const std::string& prefix);

// Ollama's defaults for a request: temperature 0.8, top_k 40, top_p 0.9, num_predict -1
// (until the end or the context is full), and no repeat penalty (repeat_penalty 1.0 over
// 64 tokens): Ollama's documentation says 1.1, but its engine does not apply one, so at
// temperature 0 the answer is the model's greedy continuation, as Ollama's is.
GenerateJob default_generate_job();

// keep_alive as a duration string ("5m") or a number of seconds; negative: forever.
std::optional<KeepAlive> parse_keep_alive(const nlohmann::json& body);

// Queues `req` and returns its state; ApiError(503) when the model's queue is full or the
// server is stopping.
std::shared_ptr<RequestState> submit_request(ModelManager& models, Request req);

}  // namespace hearth::server
