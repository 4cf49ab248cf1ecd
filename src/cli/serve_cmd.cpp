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
#include "server/store_resolver.h"
#include "store/store.h"

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
    // The store (HEARTH_MODELS, default ~/.hearth/models); --models-dir adds a folder of .gguf files.
    cfg.models_root = store::default_models_root().string();
    cfg.models_dir = a.models_dir;
    store::Store models(cfg.models_root);
    const store::PruneReport pruned = models.prune_at_start();
    if (!pruned.removed_blobs.empty() || !pruned.removed_partials.empty())
        std::fprintf(stderr, "hearth: pruned %zu unused blob(s) and %zu stale partial file(s), %.1f MB freed\n",
                     pruned.removed_blobs.size(), pruned.removed_partials.size(), double(pruned.bytes_freed) / 1e6);
    for (const std::string& e : pruned.errors) std::fprintf(stderr, "hearth: prune: %s\n", e.c_str());

    // Signals go to one waiting thread; every other thread (HTTP workers, runners) has them blocked.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    server::Server srv(cfg, server::store_resolver(models, cfg.models_dir));
    const int port = srv.bind();
    std::fprintf(stderr, "hearth: listening on http://%s:%d (version %s, models in %s%s%s)\n", cfg.host.c_str(), port,
                 HEARTH_VERSION, cfg.models_root.c_str(), cfg.models_dir.empty() ? "" : " and ", cfg.models_dir.c_str());
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
    cmd->add_option("--models-dir", a->models_dir, "Also serve the .gguf files of this folder by file name (models are in the store: $HEARTH_MODELS, default ~/.hearth/models)");
    cmd->add_option("--api-key-file", a->api_key_file, "File with API keys (one per line or comma-separated)");
    cmd->footer(
        "Environment: HEARTH_MODELS (the model store, ~/.hearth/models), HEARTH_NOPRUNE, HEARTH_HOST, HEARTH_API_KEYS,\n"
        "HEARTH_ALLOW_INSECURE, HEARTH_ORIGINS, HEARTH_MAX_BODY,\n"
        "HEARTH_KEEP_ALIVE (5m), HEARTH_MAX_LOADED_MODELS (3), HEARTH_MAX_MEMORY (80% of RAM), HEARTH_MAX_QUEUE (512).");
    cmd->callback([a] { serve(*a); });
}

}  // namespace hearth::cli
