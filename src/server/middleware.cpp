#include "server/middleware.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "http/server.h"
#include "server/http_util.h"

namespace hearth::server {

namespace {

// "host:port" / "[v6]:port" / "host" -> host.
std::string_view strip_port(std::string_view hostport) {
    if (!hostport.empty() && hostport.front() == '[') {
        const size_t close = hostport.find(']');
        return close == std::string_view::npos ? hostport : hostport.substr(0, close + 1);
    }
    const size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos && hostport.find(':') == colon) return hostport.substr(0, colon);
    return hostport;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

void set_cors_headers(const http::Request& req, http::Response& res) {
    res.set_header("Access-Control-Allow-Origin", req.get_header_value("Origin"));
    res.set_header("Vary", "Origin");
}

}  // namespace

bool loopback_host_header(std::string_view host) {
    if (host.empty()) return true;
    return is_loopback_host(strip_port(host));
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
    for (const std::string& a : allowed)
        if (a == "*" || a == origin) return true;
    for (std::string_view scheme : {"app://", "file://", "tauri://"})
        if (starts_with(origin, scheme)) return true;
    std::string_view rest;
    if (starts_with(origin, "http://")) rest = origin.substr(7);
    else if (starts_with(origin, "https://")) rest = origin.substr(8);
    else return false;
    if (rest.find('/') != std::string_view::npos) return false;
    return is_loopback_host(strip_port(rest));
}

bool bearer_authorized(std::string_view authorization, const std::vector<std::string>& keys) {
    static constexpr std::string_view kBearer = "Bearer ";
    if (!starts_with(authorization, kBearer)) return false;
    const std::string_view given = authorization.substr(kBearer.size());
    bool ok = false;
    for (const std::string& k : keys) ok |= constant_time_equal(given, k);  // no early exit
    return ok;
}

bool public_route(std::string_view method, std::string_view path) {
    return (method == "GET" || method == "HEAD") &&
           (path == "/" || path == "/api/version" || starts_with(path, "/ui/"));  // /ui/: the chat page's files
}

http::ServerOptions http_options(const ServerConfig& cfg) {
    http::ServerOptions opts;
    opts.loop_threads = std::max(cfg.http_threads, 1);
    opts.max_body = cfg.max_body;
    opts.header_timeout = cfg.header_timeout;
    opts.idle_timeout = cfg.idle_timeout;
    opts.write_timeout = cfg.write_timeout;
    opts.max_connections = cfg.max_connections;
    return opts;
}

void install_middleware(http::Server& http, const ServerConfig& cfg) {
    const bool loopback_bind = is_loopback_host(cfg.host);
    http.set_pre_routing_handler([cfg, loopback_bind](const http::Request& req, http::Response& res) {
        if (loopback_bind && !loopback_host_header(req.get_header_value("Host"))) {
            send_error(req, res, 403, "forbidden: the Host header must name this machine (localhost)");
            return true;
        }
        const std::string origin = req.get_header_value("Origin");
        const bool cors = !origin.empty() && origin_allowed(origin, cfg.origins);
        if (req.method == "OPTIONS") {
            if (!cors) {
                send_error(req, res, 403, "origin not allowed");
                return true;
            }
            set_cors_headers(req, res);
            res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS, HEAD");
            res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, X-Api-Key, Anthropic-Version");
            res.set_header("Access-Control-Max-Age", "600");
            res.status = 204;
            return true;
        }
        if (cors) set_cors_headers(req, res);
        if (!cfg.api_keys.empty() && !public_route(req.method, req.path) &&
            !bearer_authorized(req.get_header_value("Authorization"), cfg.api_keys) &&
            !bearer_authorized("Bearer " + req.get_header_value("x-api-key"), cfg.api_keys)) {  // Anthropic's header
            res.set_header("WWW-Authenticate", "Bearer");
            send_error(req, res, 401, "unauthorized: a valid API key is required (Authorization: Bearer <key>)");
            return true;
        }
        return false;
    });

    // The library's own replies (unknown route, body too large, bad request line) get a body
    // in the API's error shape.
    http.set_error_handler([](const http::Request& req, http::Response& res) {
        if (!res.body.empty()) return;
        std::string msg;
        switch (res.status) {
        case 404: msg = "404 page not found"; break;
        case 413: msg = "request body too large"; break;
        case 405: msg = "method not allowed"; break;
        case 400: msg = "bad request"; break;
        case 408: msg = "request timeout: the body arrived too slowly"; break;
        case 431: msg = "request header fields too large"; break;
        case 503: msg = "server busy: too many open connections"; break;
        default: msg = "HTTP error " + std::to_string(res.status); break;
        }
        send_error(req, res, res.status, msg);
    });

    http.set_exception_handler([](const http::Request& req, http::Response& res, std::exception_ptr ep) {
        std::string msg = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            msg = e.what();
        } catch (...) {
        }
        send_error(req, res, 500, msg);
    });

    if (cfg.log_requests) {
        http.set_logger([](const http::Request& req, const http::Response& res) {
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - req.received).count();
            std::fprintf(stderr, "hearth: %s %s %d %.1fms %s\n", req.method.c_str(), req.path.c_str(), res.status, ms,
                         req.remote_addr.c_str());
        });
    }
}

}  // namespace hearth::server
