// `hearth router`: one API endpoint in front of many daemons. It serves the daemon's Ollama
// and OpenAI (and Anthropic) model routes by forwarding each request to one worker, chosen
// by the routing policy (router_policy.h) among the workers that can serve the model
// (router_workers.h: membership from etcd or a static list, probes, breakers, load); the
// proxy (router_proxy.h) retries before the first byte and watches streams for stalls.
// /api/tags, /api/ps and /v1/models are the union over workers; /metrics is the router's own.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/config.h"

namespace hearth::cluster {

enum class Policy { CacheAware, RoundRobin, LeastLoad };
Policy parse_policy(const std::string& name);  // throws std::invalid_argument
const char* to_string(Policy p);

struct RouterOptions {
    server::ServerConfig http;                  // HEARTH_HOST, API keys, CORS, timeouts (as the daemon)
    std::vector<std::string> etcd_endpoints;    // --cluster (empty: static workers)
    std::string cluster_name = "default";
    std::vector<std::string> static_workers;    // --workers http://h:p,...
    std::string worker_key;                     // HEARTH_WORKER_KEY: Bearer key sent to workers
    Policy policy = Policy::CacheAware;
    std::chrono::milliseconds connect_timeout{1'000};
    std::chrono::milliseconds first_byte_timeout{10'000};   // streamed replies: to the first body byte
    std::chrono::milliseconds inter_token_timeout{15'000};  // streamed replies: between body bytes
    std::chrono::milliseconds request_timeout{600'000};     // whole replies: to the reply
    std::chrono::milliseconds load_allowance{120'000};      // added to the first-byte timeout when the model is not loaded there
    std::chrono::milliseconds probe_interval{2'000};        // GET /api/version on each worker
    std::chrono::milliseconds load_interval{250};           // GET /metrics on each worker
    int max_retries = 2;                                    // each on another worker
    int breaker_failures = 3;                               // consecutive failures that open a breaker
    std::chrono::milliseconds breaker_cooldown{5'000};      // open -> half-open
    // Prefix affinity (cache_aware): window size in bytes, the match share that routes by
    // prefix, the load gap (absolute and relative) beyond which the least loaded wins.
    size_t prefix_window = 64;
    double prefix_threshold = 0.3;
    double balance_abs = 4;
    double balance_rel = 1.5;
    size_t prefix_entries = 1u << 18;                       // per model, LRU beyond
    std::chrono::seconds prefix_ttl{1800};
    std::chrono::milliseconds lease_grace{7'000};           // a record gone while its worker still answers: kept this long
    std::string session_header = "X-Hearth-Session";        // session affinity (also OpenAI `user`)
    std::string version;
};

class Router {
public:
    explicit Router(RouterOptions opts);
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    int bind();     // HEARTH_HOST; returns the port
    bool listen();  // serves until stop()
    void stop();
    int port() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::cluster
