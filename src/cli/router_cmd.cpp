// `hearth router`: the cluster's front door (src/cluster/router.h) in the foreground until
// SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cluster/etcd.h"
#include "cluster/router.h"
#include "server/config.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

namespace hearth::cli {

namespace {

struct RouterArgs {
    std::string cluster, cluster_name, workers, policy, worker_key_file;
    std::string first_byte_timeout, inter_token_timeout;
    int threads = 0;
};

std::string env_or(const char* name, const std::string& given) {
    if (!given.empty()) return given;
    const char* v = std::getenv(name);
    return v ? v : "";
}

std::chrono::milliseconds duration_arg(const std::string& text, const char* what, std::chrono::milliseconds def) {
    if (text.empty()) return def;
    auto d = server::parse_duration(text);
    if (!d || d->count() <= 0) throw std::invalid_argument(std::string(what) + ": not a duration: " + text);
    return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

void run_router(const RouterArgs& a) {
    cluster::RouterOptions o;
    o.http = server::ServerConfig::from_env();
    // One event-loop thread relays every stream (and runs the upstream connections): on small
    // machines a second one mostly adds thread hand-offs the workers' compute threads pay for.
    o.http.http_threads = a.threads > 0 ? a.threads : 1;
    if (a.threads <= 0)
        if (const char* t = std::getenv("HEARTH_ROUTER_THREADS"); t && std::atoi(t) > 0) o.http.http_threads = std::atoi(t);
    o.version = HEARTH_VERSION;
    const std::string cl = env_or("HEARTH_CLUSTER", a.cluster);
    if (!cl.empty()) o.etcd_endpoints = cluster::parse_etcd_endpoints(cl);
    o.cluster_name = env_or("HEARTH_CLUSTER_NAME", a.cluster_name);
    if (o.cluster_name.empty()) o.cluster_name = "default";
    o.static_workers = server::split_list(env_or("HEARTH_WORKERS", a.workers));
    if (o.etcd_endpoints.empty() && o.static_workers.empty())
        throw std::invalid_argument("hearth router needs workers: --cluster etcd://HOST:PORT or --workers http://HOST:PORT,...");
    const std::string pol = env_or("HEARTH_ROUTER_POLICY", a.policy);
    if (!pol.empty()) o.policy = cluster::parse_policy(pol);
    o.worker_key = env_or("HEARTH_WORKER_KEY", "");
    if (!a.worker_key_file.empty()) {
        FILE* f = std::fopen(a.worker_key_file.c_str(), "r");
        if (!f) throw std::runtime_error("cannot read the worker key file " + a.worker_key_file);
        char line[4096] = {};
        if (std::fgets(line, sizeof line, f)) o.worker_key = line;
        std::fclose(f);
        while (!o.worker_key.empty() && (o.worker_key.back() == '\n' || o.worker_key.back() == '\r' || o.worker_key.back() == ' '))
            o.worker_key.pop_back();
    }
    o.first_byte_timeout = duration_arg(a.first_byte_timeout, "--first-byte-timeout", o.first_byte_timeout);
    o.inter_token_timeout = duration_arg(a.inter_token_timeout, "--inter-token-timeout", o.inter_token_timeout);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    cluster::Router router(o);
    const int port = router.bind();
    std::fprintf(stderr, "hearth: router listening on http://%s:%d (version %s, policy %s, workers from %s)\n", o.http.host.c_str(),
                 port, HEARTH_VERSION, cluster::to_string(o.policy),
                 o.etcd_endpoints.empty() ? "--workers" : ("etcd, cluster \"" + o.cluster_name + "\"").c_str());
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&sigs, &sig);
        std::fprintf(stderr, "hearth: router shutting down\n");
        router.stop();
    });
    router.listen();
    kill(getpid(), SIGTERM);
    waiter.join();
}

}  // namespace

void add_router_command(CLI::App& app) {
    auto a = std::make_shared<RouterArgs>();
    CLI::App* cmd = app.add_subcommand("router", "Serve one API in front of many daemons (workers from etcd or a list), on HEARTH_HOST");
    cmd->add_option("--cluster", a->cluster, "etcd endpoints: etcd://HOST:PORT[,HOST:PORT...] (also HEARTH_CLUSTER)");
    cmd->add_option("--cluster-name", a->cluster_name, "The cluster's name in etcd (default \"default\"; also HEARTH_CLUSTER_NAME)");
    cmd->add_option("--workers", a->workers, "Static workers instead of etcd: http://HOST:PORT,... (also HEARTH_WORKERS)");
    cmd->add_option("--policy", a->policy, "cache_aware (default), round_robin or least_load (also HEARTH_ROUTER_POLICY)");
    cmd->add_option("--worker-key-file", a->worker_key_file, "File whose first line is the API key sent to workers (also HEARTH_WORKER_KEY)");
    cmd->add_option("--first-byte-timeout", a->first_byte_timeout, "Streamed replies: time to the first byte before another worker is tried (10s)");
    cmd->add_option("--threads", a->threads, "Event-loop threads (default 1; also HEARTH_ROUTER_THREADS)");
    cmd->add_option("--inter-token-timeout", a->inter_token_timeout, "Streamed replies: silence that ends a stream with an error (15s)");
    cmd->footer("Environment: HEARTH_HOST (127.0.0.1:11434), HEARTH_API_KEYS (keys clients must send), HEARTH_ORIGINS, HEARTH_MAX_BODY,\n"
                "HEARTH_HEADER_TIMEOUT, HEARTH_IDLE_TIMEOUT, HEARTH_WRITE_TIMEOUT, HEARTH_MAX_CONNECTIONS.");
    cmd->callback([a] { run_router(*a); });
}

}  // namespace hearth::cli
