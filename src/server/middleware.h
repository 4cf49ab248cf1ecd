// What runs before routing on every request: the Host-header check (DNS-rebinding defence on
// loopback binds), CORS (preflight answered here), API-key authentication; and after it:
// JSON bodies for the HTTP layer's own errors (413, 404, 431, 503...) and one log line per
// request.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/config.h"

namespace hearth::http {
class Server;
struct ServerOptions;
}

namespace hearth::server {

void install_middleware(http::Server& http, const ServerConfig& cfg);

// The HTTP layer's options from the daemon's settings (the router serves with the same).
http::ServerOptions http_options(const ServerConfig& cfg);

// A Host header acceptable on a loopback bind: localhost, 127.x.y.z or [::1], with or without
// a port. An absent header is accepted (non-browser clients).
bool loopback_host_header(std::string_view host);

// http(s)://localhost, 127.x.y.z, [::1] with any port, app:// file:// tauri:// origins, or
// one listed in `allowed` ("*" allows every origin).
bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed);

// "Bearer <key>" matching one of `keys` (every key is compared, in constant time each).
bool bearer_authorized(std::string_view authorization, const std::vector<std::string>& keys);

// Routes reachable without a key.
bool public_route(std::string_view method, std::string_view path);

}  // namespace hearth::server
