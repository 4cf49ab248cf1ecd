// POST /api/pull and POST /api/push in Ollama's shapes, on top of store::RegistryClient:
// `model` (or the legacy `name`), `insecure`, `stream` (default true). Streaming answers are
// NDJSON progress objects ({"status"} or {"status","digest","total","completed"}) ending
// with {"status":"success"} or a final {"error":"..."} line; a client that goes away cancels
// the transfer (a partly downloaded blob stays resumable). `stream: false` answers one
// object, or an error with its HTTP status.
#include <atomic>
#include <memory>

#include "http/server.h"
#include "server/http_util.h"
#include "server/ollama/ollama.h"
#include "server/request_parse.h"
#include "store/registry_client.h"
#include "store/store.h"

namespace hearth::server {

namespace ollama {

namespace {

using nlohmann::json;

json progress_json(const store::RegistryProgress& p) {
    json j = {{"status", p.status}};
    if (!p.digest.empty()) {
        j["digest"] = p.digest;
        j["total"] = p.total;
        j["completed"] = p.completed;
    }
    return j;
}

// The HTTP status for a failed pull/push.
int status_of(const std::exception& e) {
    if (const auto* r = dynamic_cast<const store::RegistryError*>(&e)) return r->status() == 404 ? 404 : 500;
    if (const auto* s = dynamic_cast<const store::StoreError*>(&e)) {
        switch (s->kind()) {
        case store::StoreErrorKind::InvalidName:
        case store::StoreErrorKind::InvalidDigest: return 400;
        case store::StoreErrorKind::NotFound: return 404;
        case store::StoreErrorKind::Busy: return 409;
        default: return 500;
        }
    }
    return 500;
}

std::string line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

void handle(ApiEnv& env, const http::Request& req, http::Response& res, bool push) {
    require_store(env);
    const json body = parse_json_object(req.body, env.config.max_json_depth);
    const std::string model = get_model_name(body);
    if (model.empty()) throw ApiError(400, "model is required");
    const bool insecure = get_bool(body, "insecure", "insecure").value_or(false);
    const bool stream = get_bool(body, "stream", "stream").value_or(true);
    std::string why;
    const auto name = store::ModelName::try_parse(model, &why);
    if (!name) throw ApiError(400, "invalid model name \"" + model.substr(0, 200) + "\": " + why);
    if (push && !env.store->has_model(*name)) throw ApiError(404, "model \"" + model.substr(0, 200) + "\" not found");

    store::RegistryOptions opts;
    opts.insecure = insecure;
    auto client = std::make_shared<store::RegistryClient>(*env.store, opts);
    auto run = [client, push, n = *name](const store::RegistryProgressFn& progress, const std::atomic<bool>* cancel) {
        if (push) client->push(n, progress, cancel);
        else client->pull(n, progress, cancel);
    };

    if (!stream) {
        std::atomic<bool> cancel{false};
        try {
            run({}, &cancel);
        } catch (const std::exception& e) {
            send_error(req, res, status_of(e), e.what());
            return;
        }
        send_json(res, json{{"status", "success"}});
        return;
    }

    // The whole transfer runs on this handler thread; progress lines go out as they come.
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<http::Stream> out = res.defer();
    out->on_abort([cancel] { *cancel = true; });  // the client is gone: stop the transfer
    http::Response head;
    head.status = 200;
    head.set_header("Content-Type", "application/x-ndjson");
    out->begin(std::move(head));
    auto write = [&](const json& j) {
        if (cancel->load()) return;
        if (!out->write(line(j))) *cancel = true;
    };
    try {
        run([&](const store::RegistryProgress& p) { write(progress_json(p)); }, cancel.get());
    } catch (const store::RegistryError& e) {
        if (!e.cancelled() && !cancel->load()) write(json{{"error", e.what()}});
    } catch (const std::exception& e) {
        if (!cancel->load()) write(json{{"error", e.what()}});
    }
    out->end();  // nothing is sent once the client is gone
}

}  // namespace

void add_pull_push_routes(http::Server& http, ApiEnv& env) {
    http.Post("/api/pull", guarded(env, [](ApiEnv& e, const http::Request& req, http::Response& res) {
                  handle(e, req, res, false);
              }));
    http.Post("/api/push", guarded(env, [](ApiEnv& e, const http::Request& req, http::Response& res) {
                  handle(e, req, res, true);
              }));
}

}  // namespace ollama

}  // namespace hearth::server
