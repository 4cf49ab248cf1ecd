// `hearth serve`: the daemon in the foreground (Ollama-compatible API on HEARTH_HOST) until
// SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "server/server.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

namespace hearth::cli {

namespace {

struct ServeArgs {
    std::string models_dir;
    std::string api_key_file;
};

std::vector<std::string> read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read the API key file " + path);
    std::vector<std::string> keys;
    std::string line;
    while (std::getline(in, line)) {
        for (const std::string& k : server::split_list(line))
            if (k[0] != '#') keys.push_back(k);
    }
    if (keys.empty()) throw std::runtime_error("the API key file " + path + " holds no key");
    return keys;
}

void serve(const ServeArgs& a) {
    server::ServerConfig cfg = server::ServerConfig::from_env();
    cfg.version = HEARTH_VERSION;
    if (!a.api_key_file.empty()) {
        auto keys = read_key_file(a.api_key_file);
        cfg.api_keys.insert(cfg.api_keys.end(), keys.begin(), keys.end());
    }
    std::string dir = a.models_dir;
    if (dir.empty())
        if (const char* env = std::getenv("HEARTH_MODELS")) dir = env;

    // Signals go to one waiting thread; every other thread (HTTP workers, runners) has them blocked.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    server::Server srv(cfg, server::directory_resolver(dir));
    const int port = srv.bind();
    std::fprintf(stderr, "hearth: listening on http://%s:%d (version %s%s%s)\n", cfg.host.c_str(), port, HEARTH_VERSION,
                 dir.empty() ? "" : ", models from ", dir.c_str());
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig == SIGINT || sig == SIGTERM) std::fprintf(stderr, "hearth: shutting down\n");
        srv.stop();
    });
    const bool ok = srv.listen();
    kill(getpid(), SIGTERM);  // wakes the waiter if the listener ended on its own
    waiter.join();
    if (!ok) throw std::runtime_error("the HTTP listener failed");
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto a = std::make_shared<ServeArgs>();
    CLI::App* cmd = app.add_subcommand("serve", "Run the daemon (Ollama-compatible API on HEARTH_HOST, default 127.0.0.1:11434)");
    cmd->add_option("--models-dir", a->models_dir, "Folder of .gguf models served by file name (default: $HEARTH_MODELS)");
    cmd->add_option("--api-key-file", a->api_key_file, "File with API keys (one per line or comma-separated)");
    cmd->footer(
        "Environment: HEARTH_HOST, HEARTH_API_KEYS, HEARTH_ALLOW_INSECURE, HEARTH_ORIGINS, HEARTH_MAX_BODY,\n"
        "HEARTH_KEEP_ALIVE (5m), HEARTH_MAX_LOADED_MODELS (3), HEARTH_MAX_MEMORY (80% of RAM), HEARTH_MAX_QUEUE (512).");
    cmd->callback([a] { serve(*a); });
}

}  // namespace hearth::cli
