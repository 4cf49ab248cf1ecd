// ollama/ owns Ollama's API, wire-compatible with its documented shapes: GET /, /api/version,
// /api/tags, /api/ps, POST /api/show, /api/generate, /api/chat (NDJSON streaming),
// /api/embed and the legacy /api/embeddings; the store's routes: /api/create, /api/blobs/:digest,
// /api/copy, /api/delete.
#pragma once

#include <functional>
#include <string>

#include "http/message.h"
#include "server/server.h"

namespace hearth::http {
class Server;
}  // namespace hearth::http

namespace hearth::server {

void register_ollama_routes(http::Server& http, ApiEnv& env);

namespace ollama {

using Handler = std::function<void(ApiEnv&, const http::Request&, http::Response&)>;
// Wraps a handler: ApiError -> its status, other exceptions -> 500, in the error shape.
std::function<void(const http::Request&, http::Response&)> guarded(ApiEnv& env, Handler h);

void add_generate_routes(http::Server& http, ApiEnv& env);  // /api/generate, /api/chat
void add_embed_routes(http::Server& http, ApiEnv& env);     // /api/embed, /api/embeddings
void add_model_routes(http::Server& http, ApiEnv& env);     // /, /api/version, /api/tags, /api/show, /api/ps
void add_create_routes(http::Server& http, ApiEnv& env);    // /api/create, HEAD/POST /api/blobs/:digest
void add_store_routes(http::Server& http, ApiEnv& env);     // /api/copy, DELETE /api/delete

// The model store; ApiError(500, "no model store configured") when there is none.
store::Store& require_store(ApiEnv& env);
// Asks the model manager to unload `name` (as keep_alive 0 does) without waiting.
void unload_model(ApiEnv& env, const std::string& name);
void add_pull_push_routes(http::Server& http, ApiEnv& env); // /api/pull, /api/push (registry client)

}  // namespace ollama
}  // namespace hearth::server
