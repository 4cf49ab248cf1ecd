// An in-process `hearth serve` on a free loopback port for HTTP tests, with a models folder
// of symlinks into ../shared, driven with http::Client.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/client.h"
#include "server/server.h"
#include "support/paths.h"

namespace hearth::test {

class LoopbackServer {
public:
    // models: (file name in the models folder, path under ../shared) pairs.
    explicit LoopbackServer(const std::vector<std::pair<std::string, std::string>>& models) {
        for (const auto& [name, rel] : models) std::filesystem::create_symlink(shared_path(rel), dir_.file(name));
    }
    ~LoopbackServer() { stop(); }

    std::string models_dir() const { return dir_.path().string(); }

    // Test defaults (quiet, one compute thread); `tweak` adjusts them before the start.
    static server::ServerConfig test_config() {
        server::ServerConfig cfg;
        cfg.host = "127.0.0.1";
        cfg.port = 0;
        cfg.log_requests = false;
        cfg.version = "9.9.9-test";
        cfg.manager.n_threads = 1;
        return cfg;
    }

    void start(const server::ServerConfig& cfg, server::ModelResolver resolver) {
        srv_ = std::make_unique<server::Server>(cfg, std::move(resolver));
        port_ = srv_->bind();
        thread_ = std::thread([this] { srv_->listen(); });
        ASSERT_TRUE(srv_->wait_until_running(std::chrono::seconds(5)));
    }
    void stop() {
        if (!srv_) return;
        srv_->stop();
        thread_.join();
        srv_.reset();
    }

    int port() const { return port_; }
    server::Server& server() { return *srv_; }
    http::Client client() const {
        http::Client c("127.0.0.1", port_);
        c.set_read_timeout(30, 0);
        c.set_write_timeout(10, 0);
        return c;
    }

private:
    TempDir dir_;
    std::unique_ptr<server::Server> srv_;
    std::thread thread_;
    int port_ = 0;
};

}  // namespace hearth::test
