// The registry client's per-operation session: authentication (Bearer tokens from the
// challenge's realm, Basic credentials from HEARTH_REGISTRY_AUTH), retries with backoff,
// error messages from the registry's error bodies.
#include "store/registry_session.h"

#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

namespace hearth::store {

std::optional<RegistryCredentials> credentials_from_env(std::string_view host) {
    const char* env = std::getenv("HEARTH_REGISTRY_AUTH");
    if (!env || !*env) return std::nullopt;
    std::string_view all(env);
    while (!all.empty()) {
        const size_t comma = all.find(',');
        std::string_view entry = all.substr(0, comma);
        all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
        while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
        const size_t eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string_view h = entry.substr(0, eq), cred = entry.substr(eq + 1);
        const size_t colon = cred.find(':');
        if (colon == std::string_view::npos || !iequals(h, host)) continue;
        return RegistryCredentials{std::string(cred.substr(0, colon)), std::string(cred.substr(colon + 1))};
    }
    return std::nullopt;
}

namespace detail {

namespace {

std::string status_text(long status) {
    switch (status) {
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 409: return "409 Conflict";
    case 416: return "416 Range Not Satisfiable";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Unavailable";
    default: return "HTTP " + std::to_string(status);
    }
}

bool retryable_status(int status) { return status >= 500 || status == 429; }

}  // namespace

std::string repository_url(const ModelName& name, bool insecure) {
    name.validate();
    return std::string(insecure ? "http://" : "https://") + name.host + "/v2/" + name.ns + "/" + name.model;
}

Session::Session(const ModelName& name, const RegistryOptions& opts, const std::atomic<bool>* cancel)
    : opts_(opts), cancel_(cancel), host_(name.host) {
    repo_url_ = repository_url(name, opts.insecure);
    origin_ = url_origin(repo_url_);
    creds_ = opts.credentials ? opts.credentials : credentials_from_env(name.host);
}

void Session::check_cancel() const {
    if (cancelled()) throw RegistryError("cancelled", 0, {}, true);
}

HttpResponse Session::send(HttpRequest req) {
    check_cancel();
    auto outer = std::move(req.cancelled);
    req.cancelled = [this, outer] { return cancelled() || (outer && outer()); };
    req.allow_http = opts_.insecure;
    req.connect_timeout_s = opts_.connect_timeout_s;
    req.stall_timeout_s = opts_.stall_timeout_s;
    req.user_agent = opts_.user_agent;
    req.auth_origin = origin_;
    {
        std::lock_guard lock(mu_);
        req.authorization = authorization_;
    }
    HttpResponse r = http_send(req);
    if (r.status != 401) return r;
    const std::string used = req.authorization;
    if (!authenticate(r, used)) return r;
    {
        std::lock_guard lock(mu_);
        req.authorization = authorization_;
    }
    return http_send(req);
}

bool Session::authenticate(const HttpResponse& r, const std::string& used) {
    std::lock_guard lock(mu_);
    if (authorization_ != used) return true;  // another request of this session already renewed it
    const AuthChallenge ch = parse_auth_challenge(r.header("www-authenticate"));
    if (ch.scheme == "basic") {
        if (!creds_ || used.rfind("Basic ", 0) == 0) return false;
        authorization_ = "Basic " + base64(creds_->user + ":" + creds_->password);
        return true;
    }
    if (ch.scheme != "bearer") return false;
    const std::string realm = ch.param("realm");
    std::string realm_origin;
    try {
        realm_origin = url_origin(realm);
    } catch (const std::invalid_argument&) {
        throw RegistryError("the registry's auth challenge names an invalid token realm \"" + realm.substr(0, 200) + "\"",
                            401);
    }
    if (!opts_.insecure && realm_origin.rfind("http://", 0) == 0)
        throw RegistryError("refusing the plain-http token realm " + realm.substr(0, 200) + " (use insecure)", 401);
    std::string url = realm;
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    for (const char* key : {"service", "scope"}) {
        for (const auto& [k, v] : ch.params) {
            if (k != key) continue;
            url += sep + std::string(key) + "=" + url_escape(v);
            sep = '&';
        }
    }
    HttpRequest tq;
    tq.url = url;
    tq.allow_http = opts_.insecure;
    tq.connect_timeout_s = opts_.connect_timeout_s;
    tq.stall_timeout_s = opts_.stall_timeout_s;
    tq.user_agent = opts_.user_agent;
    tq.max_body = 1u << 20;
    tq.cancelled = [this] { return cancelled(); };
    if (creds_) {
        // The user's credentials for this registry go to the realm its challenge names, and
        // nowhere else (not to a host the realm redirects to).
        tq.authorization = "Basic " + base64(creds_->user + ":" + creds_->password);
        tq.auth_origin = realm_origin;
    }
    HttpResponse tr;
    try {
        tr = http_send(tq);
    } catch (const TransportError& e) {
        if (e.cancelled()) throw RegistryError("cancelled", 0, {}, true);
        throw RegistryError(std::string("fetching a token: ") + e.what());
    }
    if (tr.status != 200) fail("fetching a token from " + realm.substr(0, 200), tr);
    nlohmann::json j = nlohmann::json::parse(tr.body, nullptr, false);
    std::string token;
    if (j.is_object()) {
        if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
        else if (j.contains("access_token") && j["access_token"].is_string()) token = j["access_token"].get<std::string>();
    }
    if (token.empty()) throw RegistryError("the token server " + realm.substr(0, 200) + " sent no token", 401);
    for (char c : token)
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f)
            throw RegistryError("the token server " + realm.substr(0, 200) + " sent a malformed token", 401);
    const std::string next = "Bearer " + token;
    if (next == used) return false;  // the same token was refused
    authorization_ = next;
    return true;
}

void Session::retrying(const std::string& what, const std::function<void()>& attempt, const std::function<bool()>& stop) {
    auto delay = opts_.retry_delay;
    for (int n = 0;; ++n) {
        check_cancel();
        std::string why;
        try {
            attempt();
            return;
        } catch (const TransportError& e) {
            if (e.cancelled() || cancelled()) throw RegistryError("cancelled", 0, {}, true);
            if (n >= opts_.max_retries) throw RegistryError(what + ": " + e.what());
            why = e.what();
        } catch (const RegistryError& e) {
            if (e.cancelled() || !retryable_status(e.status()) || n >= opts_.max_retries) throw;
            why = e.what();
        }
        // Backoff, in short slices so a cancel is noticed.
        const auto until = std::chrono::steady_clock::now() + delay;
        while (std::chrono::steady_clock::now() < until) {
            check_cancel();
            if (stop && stop()) throw RegistryError("cancelled", 0, {}, true);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        delay = std::min(delay * 2, opts_.max_retry_delay);
    }
}

void Session::fail(const std::string& what, const HttpResponse& r) const {
    std::string msg = what + ": " + status_text(r.status);
    std::string code;
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_object()) {
        if (j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() && j["errors"][0].is_object()) {
            const auto& e = j["errors"][0];
            if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
            if (e.contains("message") && e["message"].is_string()) msg += ": " + e["message"].get<std::string>();
            else if (!code.empty()) msg += ": " + code;
        } else if (j.contains("error") && j["error"].is_string()) {
            msg += ": " + j["error"].get<std::string>();
        }
    }
    throw RegistryError(msg, static_cast<int>(r.status), code);
}

void Reporter::blob(const std::string& status, const Digest& d, uint64_t total, uint64_t completed, bool force) {
    if (!fn_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && completed != total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    fn_(RegistryProgress{status, d.str(), total, completed});
}

}  // namespace detail
}  // namespace hearth::store
