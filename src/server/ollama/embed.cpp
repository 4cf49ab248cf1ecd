// POST /api/embed (normalized vectors for one or many inputs) and the legacy
// POST /api/embeddings (one raw vector).
#include "http/server.h"
#include "server/http_util.h"
#include "server/ollama/ollama.h"
#include "server/request_parse.h"

namespace hearth::server::ollama {

namespace {

using json = nlohmann::json;

// Runs the request and answers with `make` applied to its Embeddings (or Done, for a load)
// event; an Error is answered in Ollama's shape.
void run(ApiEnv& env, Request r, const http::Request& hreq, http::Response& res,
         std::function<void(const Event&, http::Response&)> make) {
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(r));
    reply_from_events(res, st, hreq.path, [make = std::move(make), path = hreq.path](const Event&) -> EventFn {
        return reply_once([make, path](const Event& e, http::Response& out) {
            try {
                make(e, out);
            } catch (const std::exception& ex) {  // as the handler's own failures are answered
                out = http::Response{};
                send_error(path, out, 500, ex.what());
            }
        });
    });
}

void embed(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Request r;
    r.kind = JobKind::Embed;
    r.model = resolve_model(env.resolver, body);
    const std::string name = get_string(body, "model", "model").value_or(r.model.name);
    r.keep_alive = parse_keep_alive(body);
    r.embed.normalize = true;
    r.embed.truncate = get_bool(body, "truncate", "truncate").value_or(true);
    if (auto it = body.find("input"); it != body.end() && !it->is_null()) {
        if (it->is_string()) {
            r.embed.inputs.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& s : *it) {
                if (!s.is_string()) throw ApiError(400, "input must be a string or an array of strings");
                r.embed.inputs.push_back(s.get<std::string>());
            }
        } else {
            throw ApiError(400, "input must be a string or an array of strings");
        }
    }
    for (const std::string& s : r.embed.inputs)
        if (s.empty()) throw ApiError(400, "input must not contain empty strings");
    if (r.embed.inputs.empty()) r.kind = JobKind::Load;
    run(env, std::move(r), hreq, res, [name](const Event& e, http::Response& reply) {
        json out;
        out["model"] = name;
        out["embeddings"] = json::array();
        for (const auto& v : e.embeddings) out["embeddings"].push_back(v);
        out["total_duration"] = e.stats.total.count();
        out["load_duration"] = e.stats.load.count();
        out["prompt_eval_count"] = e.stats.prompt_eval_count;
        send_json(reply, out);
    });
}

void embeddings_legacy(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Request r;
    r.kind = JobKind::Embed;
    r.model = resolve_model(env.resolver, body);
    r.keep_alive = parse_keep_alive(body);
    r.embed.normalize = false;
    const std::string prompt = get_string(body, "prompt", "prompt").value_or("");
    if (prompt.empty()) r.kind = JobKind::Load;
    else r.embed.inputs.push_back(prompt);
    run(env, std::move(r), hreq, res, [](const Event& e, http::Response& reply) {
        json out;
        out["embedding"] = e.embeddings.empty() ? json::array() : json(e.embeddings[0]);
        send_json(reply, out);
    });
}

}  // namespace

void add_embed_routes(http::Server& http, ApiEnv& env) {
    http.Post("/api/embed", guarded(env, embed));
    http.Post("/api/embeddings", guarded(env, embeddings_legacy));
}

}  // namespace hearth::server::ollama
