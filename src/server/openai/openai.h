// openai/ owns OpenAI's API under /v1/: POST /v1/chat/completions, /v1/completions (SSE
// streaming), /v1/responses (the Responses API, stateless), /v1/embeddings, GET /v1/models
// and /v1/models/{id}, with errors in OpenAI's
// {"error":{"message","type","param","code"}} shape.
#pragma once

#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "http/server.h"
#include "server/http_util.h"
#include "server/server.h"

namespace hearth::server {

void register_openai_routes(http::Server& http, ApiEnv& env);

namespace openai {

// An ApiError that also names the offending request field and an error code.
class OaiError : public ApiError {
public:
    OaiError(int status, const std::string& message, std::string param, std::string code = {})
        : ApiError(status, message), param_(std::move(param)), code_(std::move(code)) {}
    const std::string& param() const { return param_; }
    const std::string& code() const { return code_; }

private:
    std::string param_, code_;
};

// {"error":{"message","type","param","code"}}; `param`/`code` empty -> null.
std::string error_json(int status, const std::string& message, const std::string& param, const std::string& code);
// Sets the status and the error body; a 404 about a model gets code "model_not_found", and
// a message starting with a field name ("temperature must ...") names it as `param`.
void send_oai_error(http::Response& res, int status, const std::string& message, std::string param = {},
                    std::string code = {});
// send_oai_error as an ErrorFn (param derived from the message), for reply_from_events.
void oai_error_reply(http::Response& res, int status, const std::string& message);

// The smallest top_p the sampler takes: OpenAI's top_p 0 becomes it (the most likely token alone).
inline constexpr double kSmallestTopP = std::numeric_limits<float>::min();

// The number body[key] within [lo, hi] ("lo and hi" in `range`), else a 400 naming the field.
std::optional<double> number_in(const nlohmann::json& body, const char* key, double lo, double hi, const char* range);

using Handler = std::function<void(ApiEnv&, const http::Request&, http::Response&)>;
http::Handler guarded(ApiEnv& env, Handler h);

// An EventFn that streams server-sent events (Cache-Control: no-cache): `chunks(event)`
// returns the whole text to write ("data: ...\n\n" lines, or ""), until Done or Error.
EventFn stream_sse(std::function<std::string(const Event&)> chunks);

// An EventFn for a reply sent whole at Done: `finish` builds it from the Done event. A later
// Error event is answered in OpenAI's error shape, and so is an exception `finish` throws
// (a 500), as the handler's own would be.
EventFn reply_at_done(std::function<void(const Event&)> on_token,
                      std::function<void(const Event& done, http::Response&)> finish);

// A message's content: a string, null (""), or an array of {"type", "text"} parts whose type
// is one of `types`; errors name the field (`name`, its part, and its type when `type_param`).
std::string content_text(const nlohmann::json& c, const std::string& name, std::initializer_list<const char*> types,
                         bool type_param = false);

void add_chat_routes(http::Server& http, ApiEnv& env);       // /v1/chat/completions, /v1/completions
void add_model_routes(http::Server& http, ApiEnv& env);      // /v1/models, /v1/models/{id}, /v1/embeddings
void add_responses_routes(http::Server& http, ApiEnv& env);  // /v1/responses

}  // namespace openai
}  // namespace hearth::server
