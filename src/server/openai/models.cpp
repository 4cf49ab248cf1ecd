// GET /v1/models, GET /v1/models/{id} and POST /v1/embeddings.
#include <sys/stat.h>

#include <chrono>
#include <cstring>

#include "server/openai/openai.h"
#include "server/request_parse.h"

namespace hearth::server::openai {

namespace {

using json = nlohmann::json;

json model_object(const std::string& id, int64_t created) {
    return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "library"}};
}

int64_t file_mtime(const std::string& path) {
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) return 0;
    return static_cast<int64_t>(sb.st_mtime);
}

void list_models(ApiEnv& env, const http::Request&, http::Response& res) {
    json data = json::array();
    if (env.resolver.list) {
        for (const ModelEntry& e : env.resolver.list())
            data.push_back(model_object(
                e.name, std::chrono::duration_cast<std::chrono::seconds>(e.modified.time_since_epoch()).count()));
    }
    send_json(res, json{{"object", "list"}, {"data", std::move(data)}});
}

void get_model(ApiEnv& env, const http::Request& req, http::Response& res) {
    const std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
    std::optional<ResolvedModel> m;
    if (!id.empty() && env.resolver.resolve) m = env.resolver.resolve(id);
    if (!m) throw OaiError(404, "The model '" + id + "' does not exist", "model", "model_not_found");
    send_json(res, model_object(id, file_mtime(m->path)));
}

std::string base64(const unsigned char* p, size_t n) {
    static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        const uint32_t b0 = p[i], b1 = i + 1 < n ? p[i + 1] : 0, b2 = i + 2 < n ? p[i + 2] : 0;
        const uint32_t v = (b0 << 16) | (b1 << 8) | b2;
        out += tab[(v >> 18) & 63];
        out += tab[(v >> 12) & 63];
        out += i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out += i + 2 < n ? tab[v & 63] : '=';
    }
    return out;
}

// Little-endian float32 bytes, base64-encoded.
std::string floats_base64(const std::vector<float>& v) {
    std::vector<unsigned char> bytes(v.size() * 4);
    for (size_t i = 0; i < v.size(); ++i) {
        uint32_t u;
        std::memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; ++k) bytes[i * 4 + k] = static_cast<unsigned char>(u >> (8 * k));
    }
    return base64(bytes.data(), bytes.size());
}

void embeddings(ApiEnv& env, const http::Request& hreq, http::Response& res) {
    const json body = parse_json_object(hreq.body, env.config.max_json_depth);
    Request r;
    r.kind = JobKind::Embed;
    r.model = resolve_model(env.resolver, body);
    const std::string name = get_string(body, "model", "model").value_or(r.model.name);
    const std::string encoding = get_string(body, "encoding_format", "encoding_format").value_or("float");
    if (encoding != "float" && encoding != "base64")
        throw OaiError(400, "encoding_format must be \"float\" or \"base64\"", "encoding_format");
    if (body.contains("dimensions") && !body["dimensions"].is_null())
        throw OaiError(400, "dimensions is not supported", "dimensions");
    const std::string bad = "input must be a string or an array of strings";
    auto it = body.find("input");
    if (it == body.end() || it->is_null()) throw OaiError(400, "input is required", "input");
    if (it->is_string()) {
        r.embed.inputs.push_back(it->get<std::string>());
    } else if (it->is_array()) {
        for (const auto& s : *it) {
            if (!s.is_string()) throw OaiError(400, bad, "input");
            r.embed.inputs.push_back(s.get<std::string>());
        }
    } else {
        throw OaiError(400, bad, "input");
    }
    if (r.embed.inputs.empty()) throw OaiError(400, "input must not be empty", "input");
    for (const std::string& s : r.embed.inputs)
        if (s.empty()) throw OaiError(400, "input must not contain empty strings", "input");
    r.embed.normalize = true;
    r.embed.truncate = true;
    std::shared_ptr<RequestState> st = submit_request(env.models, std::move(r));
    reply_from_events(res, st, oai_error_reply, [name, encoding](const Event&) {
        return reply_once([name, encoding](const Event& e, http::Response& res) {
            json data = json::array();
            for (size_t i = 0; i < e.embeddings.size(); ++i) {
                json item = {{"object", "embedding"}};
                if (encoding == "base64") item["embedding"] = floats_base64(e.embeddings[i]);
                else item["embedding"] = e.embeddings[i];
                item["index"] = i;
                data.push_back(std::move(item));
            }
            const int32_t tokens = e.stats.prompt_eval_count;
            send_json(res, json{{"object", "list"},
                                {"data", std::move(data)},
                                {"model", name},
                                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
        });
    });
}

}  // namespace

void add_model_routes(http::Server& http, ApiEnv& env) {
    http.Get("/v1/models", guarded(env, list_models));
    http.Get(R"(/v1/models/(.+))", guarded(env, get_model));
    http.Post("/v1/embeddings", guarded(env, embeddings));
}

}  // namespace hearth::server::openai
