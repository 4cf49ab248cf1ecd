// POST /api/copy and DELETE /api/delete on the model store, and the helpers the store routes
// share (the store or a 500, unloading a model that changed).
#include "http/server.h"
#include "server/http_util.h"
#include "server/ollama/ollama.h"
#include "server/request_parse.h"
#include "store/store.h"

namespace hearth::server::ollama {

using json = nlohmann::json;

store::Store& require_store(ApiEnv& env) {
    if (!env.store) throw ApiError(500, "no model store configured");
    return *env.store;
}

void unload_model(ApiEnv& env, const std::string& name) {
    Request r;
    r.kind = JobKind::Unload;
    r.model.name = name;
    env.models.submit(std::move(r));  // answered at once when the model is not loaded
}

namespace {

void copy(ApiEnv& env, const http::Request& req, http::Response& res) {
    store::Store& s = require_store(env);
    const json body = parse_json_object(req.body, env.config.max_json_depth);
    const std::string source = get_string(body, "source", "source").value_or("");
    const std::string destination = get_string(body, "destination", "destination").value_or("");
    std::string why;
    auto src = store::ModelName::try_parse(source, &why);
    if (!src) throw ApiError(400, "source \"" + source + "\" is invalid: " + why);
    auto dst = store::ModelName::try_parse(destination, &why);
    if (!dst) throw ApiError(400, "destination \"" + destination + "\" is invalid: " + why);
    if (!s.has_model(*src)) throw ApiError(404, "model \"" + source + "\" not found");
    s.copy(*src, *dst);
    unload_model(env, s.resolve(*dst).display());  // the name now means other weights
    res.status = 200;
}

void remove(ApiEnv& env, const http::Request& req, http::Response& res) {
    store::Store& s = require_store(env);
    const json body = parse_json_object(req.body, env.config.max_json_depth);
    const std::string name = get_model_name(body);
    std::string why;
    auto n = store::ModelName::try_parse(name, &why);
    if (!n) throw ApiError(400, "name \"" + name + "\" is invalid: " + why);
    const store::ModelName resolved = s.resolve(*n);
    if (!s.has_model(resolved)) throw ApiError(404, "model '" + name + "' not found");
    unload_model(env, resolved.display());
    try {
        const store::PruneReport report = s.remove(resolved);
        for (const std::string& e : report.errors) std::fprintf(stderr, "hearth: delete %s: %s\n", name.c_str(), e.c_str());
    } catch (const store::StoreError& e) {
        if (e.kind() == store::StoreErrorKind::NotFound) throw ApiError(404, "model '" + name + "' not found");
        throw;
    }
    res.status = 200;
}

}  // namespace

void add_store_routes(http::Server& http, ApiEnv& env) {
    http.Post("/api/copy", guarded(env, copy));
    http.Delete("/api/delete", guarded(env, remove));
}

}  // namespace hearth::server::ollama
