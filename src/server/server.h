// server/ owns the daemon (`hearth serve`): its middleware on the HTTP layer (http/: Host
// check, CORS, API keys, body and nesting caps, request log), the model manager and its
// per-model runner threads, request parsing shared by the APIs, and the routes: ollama/
// (Ollama's /api/*), openai/ (/v1/*), anthropic/ (/v1/messages). Models are found through a
// ModelResolver (resolver.h), the seam where the store plugs in.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "server/config.h"
#include "server/model_manager.h"
#include "server/resolver.h"

namespace hearth::store {
class Store;
}

namespace hearth::http {
class Server;
struct ServerStats;
}

namespace hearth::server {

// What route handlers share.
struct ApiEnv {
    const ServerConfig& config;
    const ModelResolver& resolver;
    ModelManager& models;
    // The model store; null when config.models_root is empty (store routes then fail 500).
    store::Store* store = nullptr;
    // The HTTP server (its connection counters for /metrics); null in handler unit tests.
    const http::Server* http = nullptr;
    // Set while the daemon drains (POST /api/drain, SIGTERM in a cluster); null in unit tests.
    const std::atomic<bool>* draining = nullptr;
};

class Server {
public:
    Server(ServerConfig config, ModelResolver resolver);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds config.host:config.port (port 0: any free port) and returns the port. Throws
    // std::runtime_error when the address is unusable, or when it is not a loopback address
    // and there is no API key (unless allow_insecure).
    int bind();
    // Serves until stop(); returns false when the listener failed.
    bool listen();
    // Stops accepting, cancels running generations, answers queued requests with 503.
    void stop();
    bool wait_until_running(std::chrono::milliseconds timeout);

    // Draining: /metrics and the cluster record say so, requests are still served, and the
    // owner (`hearth serve`) stops once in_flight() is 0. begin_drain() is true the first time,
    // and then runs the drain handler (POST /api/drain calls it too).
    bool begin_drain();
    bool draining() const { return draining_.load(); }
    void set_drain_handler(std::function<void()> fn);
    uint64_t in_flight() const { return models_->in_flight(); }

    int port() const { return port_; }
    ModelManager& models() { return *models_; }
    store::Store* store() { return store_.get(); }
    const ServerConfig& config() const { return cfg_; }
    const http::ServerStats& http_stats() const;

private:
    ServerConfig cfg_;
    ModelResolver resolver_;
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<ModelManager> models_;
    std::unique_ptr<http::Server> http_;
    std::unique_ptr<ApiEnv> env_;
    int port_ = -1;
    std::atomic<bool> draining_{false};
    std::mutex drain_mu_;
    std::function<void()> on_drain_;
};

}  // namespace hearth::server
