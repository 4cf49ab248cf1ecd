#include "server/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <csignal>
#include <stdexcept>
#include <thread>

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
    http_ = std::make_unique<httplib::Server>();
    if (!cfg_.models_root.empty()) store_ = std::make_unique<store::Store>(cfg_.models_root);
    env_ = std::make_unique<ApiEnv>(ApiEnv{cfg_, resolver_, *models_, store_.get()});
    const int threads = std::max(cfg_.http_threads, 4);
    http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http_->set_payload_max_length(cfg_.max_body);
    // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second daemon bind the
    // same port and split requests with the first instead of failing "address in use".
    http_->set_socket_options([](int sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    http_->set_keep_alive_timeout(5);
    http_->set_tcp_nodelay(true);  // streamed tokens go out at once (no Nagle wait for the ACK)
    http_->set_read_timeout(60);
    http_->set_write_timeout(60);
    install_middleware(*http_, cfg_);
    ui::register_routes(*http_);  // GET / (the chat page for browsers) and /ui/*: before the API routes
    register_ollama_routes(*http_, *env_);
    register_openai_routes(*http_, *env_);
    register_anthropic_routes(*http_, *env_);
    register_registry_routes(*http_, *env_);
    register_metrics_route(*http_, *env_);
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
    if (cfg_.port == 0) {
        port_ = http_->bind_to_any_port(cfg_.host);
        if (port_ <= 0) throw std::runtime_error("cannot bind " + cfg_.host + " to a free port");
    } else {
        if (!http_->bind_to_port(cfg_.host, cfg_.port))
            throw std::runtime_error("cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) +
                                     " (in use? set HEARTH_HOST)");
        port_ = cfg_.port;
    }
    return port_;
}

bool Server::listen() { return http_->listen_after_bind(); }

void Server::stop() {
    models_->shutdown();  // running generations end, so their streams finish
    http_->stop();
}

bool Server::wait_until_running(std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!http_->is_running()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

}  // namespace hearth::server
