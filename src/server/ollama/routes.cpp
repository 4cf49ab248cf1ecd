#include "http/server.h"
#include "server/http_util.h"
#include "server/ollama/ollama.h"

namespace hearth::server {

namespace ollama {

std::function<void(const http::Request&, http::Response&)> guarded(ApiEnv& env, Handler h) {
    return [&env, h = std::move(h)](const http::Request& req, http::Response& res) {
        try {
            h(env, req, res);
        } catch (const ApiError& e) {
            send_error(req, res, e.status(), e.what());
        } catch (const std::exception& e) {
            send_error(req, res, 500, e.what());
        }
    };
}

}  // namespace ollama

void register_ollama_routes(http::Server& http, ApiEnv& env) {
    ollama::add_model_routes(http, env);
    ollama::add_generate_routes(http, env);
    ollama::add_embed_routes(http, env);
    ollama::add_create_routes(http, env);
    ollama::add_store_routes(http, env);
    ollama::add_pull_push_routes(http, env);
}

}  // namespace hearth::server
