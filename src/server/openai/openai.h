// openai/ owns OpenAI's API under /v1/: POST /v1/chat/completions, /v1/completions (SSE
// streaming), /v1/responses (the Responses API, stateless), /v1/embeddings, GET /v1/models
// and /v1/models/{id}, with errors in OpenAI's
// {"error":{"message","type","param","code"}} shape.
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "server/http_util.h"
#include "server/server.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace hearth::server {

void register_openai_routes(httplib::Server& http, ApiEnv& env);

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
void send_oai_error(httplib::Response& res, int status, const std::string& message, std::string param = {},
                    std::string code = {});

using Handler = std::function<void(ApiEnv&, const httplib::Request&, httplib::Response&)>;
std::function<void(const httplib::Request&, httplib::Response&)> guarded(ApiEnv& env, Handler h);

// The request's first event; an Error is sent as the reply (nullopt returned).
std::optional<Event> await_first(RequestState& st, httplib::Response& res);

// Streams events as server-sent events: `chunks(event)` returns the whole text to write
// ("data: ...\n\n" lines, or ""), until Done or Error.
void stream_sse(httplib::Response& res, std::shared_ptr<RequestState> st, Event first,
                std::function<std::string(const Event&)> chunks);

// A message's content: a string, null (""), or an array of {"type", "text"} parts whose type
// is one of `types`; errors name the field (`name`, its part, and its type when `type_param`).
std::string content_text(const nlohmann::json& c, const std::string& name, std::initializer_list<const char*> types,
                         bool type_param = false);

void add_chat_routes(httplib::Server& http, ApiEnv& env);   // /v1/chat/completions, /v1/completions
void add_model_routes(httplib::Server& http, ApiEnv& env);  // /v1/models, /v1/models/{id}, /v1/embeddings
void add_responses_routes(httplib::Server& http, ApiEnv& env);  // /v1/responses

}  // namespace openai
}  // namespace hearth::server
