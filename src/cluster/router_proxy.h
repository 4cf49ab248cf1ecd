// The router's proxy: forwards one client request to a worker on the router's own event
// loop (Boost.Beast's asynchronous client: no thread per request), and relays the reply.
// Until the first body byte reaches the client a failed attempt (connect error or timeout,
// 502/503, no first byte in time, the worker's probe failing meanwhile) is retried on another
// worker, at most max_retries times, after a short backoff with jitter. Once bytes have been
// relayed there is no retry: a worker that stalls past the inter-token timeout or goes away
// ends the stream with an error event in the API's shape, and a stall takes the worker out of
// rotation. A client that goes away closes the worker connection (the worker cancels).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/router.h"
#include "cluster/router_policy.h"
#include "cluster/router_workers.h"
#include "http/message.h"

namespace boost::asio {
class io_context;
}

namespace hearth::cluster {

// Router-wide counters for /metrics (per-worker ones live on Worker).
struct RouterCounters {
    std::atomic<uint64_t> requests{0}, no_worker{0}, failed{0}, stream_errors{0};
    mutable std::mutex mu;
    std::map<std::string, uint64_t> decisions;  // by reason
    void decided(const char* reason) {
        std::lock_guard lk(mu);
        decisions[reason]++;
    }
};

struct ProxyRequest {
    std::string method, target, path;
    http::Headers headers;  // the client's
    std::string body;
    std::string remote_addr;
    bool streaming = false;  // the client asked for a streamed reply
    RouteInput route;
    std::vector<uint64_t> chain;
    std::string model;  // as named in the body, for messages
    std::shared_ptr<http::Stream> client;
};

class Proxy {
public:
    // `loop`: the HTTP server's loop, shared (the router's case); null: a loop of its own.
    Proxy(const RouterOptions& opts, WorkerSet& workers, Balancer& balancer, RouterCounters& counters,
          boost::asio::io_context* loop = nullptr);
    ~Proxy();  // stops its own loop
    void forward(std::shared_ptr<ProxyRequest> req);
    void stop();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

// The error reply body for `path` in its API's shape, and the same as a stream event
// (NDJSON line, OpenAI SSE data + [DONE], or Anthropic's `event: error`).
std::string stream_error_event(const std::string& path, const std::string& content_type, const std::string& message);

}  // namespace hearth::cluster
