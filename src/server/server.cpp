#include "server/server.h"

#include <csignal>
#include <stdexcept>
#include <thread>

#include "http/server.h"
#include "server/anthropic/anthropic.h"
#include "server/metrics_route.h"
#include "server/middleware.h"
#include "server/ollama/ollama.h"
#include "server/openai/openai.h"
#include "server/registry_routes.h"
#include "store/store.h"
#include "ui/routes.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

namespace hearth::server {

Server::Server(ServerConfig config, ModelResolver resolver) : cfg_(std::move(config)), resolver_(std::move(resolver)) {
    if (cfg_.version.empty()) cfg_.version = HEARTH_VERSION;
    // A client that disconnects mid-stream must not kill the process: writes then fail instead.
    std::signal(SIGPIPE, SIG_IGN);
    models_ = std::make_unique<ModelManager>(cfg_.manager);
    http_ = std::make_unique<http::Server>(http_options(cfg_));
    if (!cfg_.models_root.empty()) store_ = std::make_unique<store::Store>(cfg_.models_root);
    env_ = std::make_unique<ApiEnv>(ApiEnv{cfg_, resolver_, *models_, store_.get(), http_.get(), &draining_});
    install_middleware(*http_, cfg_);
    ui::register_routes(*http_);  // GET / (the chat page for browsers) and /ui/*: before the API routes
    register_ollama_routes(*http_, *env_);
    register_openai_routes(*http_, *env_);
    register_anthropic_routes(*http_, *env_);
    register_registry_routes(*http_, *env_);
    register_metrics_route(*http_, *env_);
    // POST /api/drain: protected as every route is (a loopback bind, or the API keys; an
    // insecure bind without keys is open, as its other routes are).
    http_->Post("/api/drain", [this](const http::Request&, http::Response& res) {
        begin_drain();
        res.set_content(nlohmann::json{{"status", "draining"}, {"in_flight", in_flight()}}.dump(), "application/json");
    });
}

bool Server::begin_drain() {
    if (draining_.exchange(true)) return false;
    std::function<void()> fn;
    {
        std::lock_guard<std::mutex> lk(drain_mu_);
        fn = on_drain_;
    }
    if (fn) fn();
    return true;
}

void Server::set_drain_handler(std::function<void()> fn) {
    std::lock_guard<std::mutex> lk(drain_mu_);
    on_drain_ = std::move(fn);
}

Server::~Server() {
    stop();
    models_->shutdown();
}

int Server::bind() {
    if (!is_loopback_host(cfg_.host) && cfg_.api_keys.empty() && !cfg_.allow_insecure)
        throw std::runtime_error("refusing to listen on " + cfg_.host +
                                 " without an API key: set HEARTH_API_KEYS (or --api-key-file), or "
                                 "HEARTH_ALLOW_INSECURE=1 to allow it");
    try {
        port_ = http_->bind(cfg_.host, cfg_.port);
    } catch (const std::exception& e) {
        if (cfg_.port == 0) throw std::runtime_error("cannot bind " + cfg_.host + " to a free port");
        throw std::runtime_error("cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) +
                                 " (in use? set HEARTH_HOST)");
    }
    return port_;
}

bool Server::listen() {
    http_->run();
    return true;
}

void Server::stop() {
    models_->shutdown();  // running generations end, so their streams finish
    http_->stop();
}

const http::ServerStats& Server::http_stats() const { return http_->stats(); }

bool Server::wait_until_running(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!http_->running()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

}  // namespace hearth::server
