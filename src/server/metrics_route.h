// GET /metrics: the Prometheus text exposition (format 0.0.4) of the daemon: the serving
// engine's per-model series (server/metrics.h), the loaded models and their memory, the
// model manager's counters, and the usual process_* series. It sits behind the middleware,
// so API keys apply to it like to every other non-public route.
#pragma once

#include <string>

namespace hearth::http {
class Server;
}

namespace hearth::server {

struct ApiEnv;

// The Content-Type of the exposition.
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition text.
std::string render_metrics(ApiEnv& env);

void register_metrics_route(http::Server& http, ApiEnv& env);

}  // namespace hearth::server
