#include <cctype>
#include <limits>

#include "server/openai/openai.h"
#include "server/request_parse.h"

namespace hearth::server {

namespace openai {

namespace {

// "temperature must be ..." -> "temperature"; "" when the message does not start that way.
std::string leading_param(const std::string& message) {
    size_t i = 0;
    while (i < message.size() && (std::isalnum(static_cast<unsigned char>(message[i])) || message[i] == '_' ||
                                  message[i] == '.' || message[i] == '[' || message[i] == ']'))
        ++i;
    if (i == 0 || i >= message.size() || message[i] != ' ') return "";
    const std::string rest = message.substr(i + 1);
    for (const char* verb : {"must ", "is ", "are "})
        if (rest.rfind(verb, 0) == 0) return message.substr(0, i);
    return "";
}

}  // namespace

std::string error_json(int status, const std::string& message, const std::string& param, const std::string& code) {
    const char* type = status == 401   ? "authentication_error"
                       : status == 404 ? "invalid_request_error"
                       : status >= 500 ? "api_error"
                                       : "invalid_request_error";
    nlohmann::json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
    if (!param.empty()) e["param"] = param;
    if (!code.empty()) e["code"] = code;
    return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_oai_error(http::Response& res, int status, const std::string& message, std::string param, std::string code) {
    if (param.empty() && status == 400) param = leading_param(message);
    if (status == 404 && code.empty() && message.rfind("model ", 0) == 0) {
        code = "model_not_found";
        if (param.empty()) param = "model";
    }
    res.status = status;
    if (status == 503) res.set_header("Retry-After", "1");
    res.set_content(error_json(status, message, param, code), "application/json; charset=utf-8");
}

std::optional<double> number_in(const nlohmann::json& body, const char* key, double lo, double hi, const char* range) {
    auto v = get_number(body, key, key, std::numeric_limits<double>::infinity());
    if (v && (*v < lo || *v > hi)) throw OaiError(400, std::string(key) + " must be between " + range, key);
    return v;
}

void oai_error_reply(http::Response& res, int status, const std::string& message) {
    send_oai_error(res, status, message);
}

http::Handler guarded(ApiEnv& env, Handler h) {
    return [&env, h = std::move(h)](const http::Request& req, http::Response& res) {
        try {
            h(env, req, res);
        } catch (const OaiError& e) {
            send_oai_error(res, e.status(), e.what(), e.param(), e.code());
        } catch (const ApiError& e) {
            send_oai_error(res, e.status(), e.what());
        } catch (const std::exception& e) {
            send_oai_error(res, 500, e.what());
        }
    };
}

EventFn stream_sse(std::function<std::string(const Event&)> chunks) {
    http::Response head;
    head.set_header("Cache-Control", "no-cache");
    return stream_rendered("text/event-stream", std::move(chunks), std::move(head));
}

EventFn reply_at_done(std::function<void(const Event&)> on_token,
                      std::function<void(const Event& done, http::Response&)> finish) {
    return server::reply_at_done(std::move(on_token), std::move(finish),
                                 [](http::Response& r, int status, const std::string& message) {
                                     send_oai_error(r, status, message);
                                 });
}

}  // namespace openai

void register_openai_routes(http::Server& http, ApiEnv& env) {
    openai::add_model_routes(http, env);
    openai::add_chat_routes(http, env);
    openai::add_responses_routes(http, env);
}

}  // namespace hearth::server
