// `hearth serve`: the daemon in the foreground (Ollama-compatible API on HEARTH_HOST) until
// SIGINT or SIGTERM. With --cluster it registers in etcd (cluster/registrar.h), and SIGTERM
// drains: the record says `draining`, requests in flight finish, the lease is revoked, exit 0.
// POST /api/drain (`hearth drain`) drains with or without a cluster.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cluster/etcd.h"
#include "cluster/pipeline_group.h"
#include "cluster/registrar.h"
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
    std::string cluster, cluster_name, advertise, node_id;  // flags; the HEARTH_* variables fill what is empty
    bool pipeline = false;  // rank 0 of an mpirun group serving models split into stages (cluster/pipeline_group.h)
    std::string split = "auto";
};

std::string flag_or_env(const std::string& flag, const char* var, const std::string& def = "") {
    if (!flag.empty()) return flag;
    const char* v = std::getenv(var);
    return v != nullptr && *v != '\0' ? std::string(v) : def;
}

// The record the registrar compares with the one it wrote: cheap (the store is listed at most
// every 2 s; loaded models and the state every call).
std::function<cluster::NodeRecord()> record_source(server::Server& srv, server::ModelResolver resolver, cluster::NodeRecord base) {
    struct Cache {
        std::vector<std::string> models;
        std::chrono::steady_clock::time_point listed{};
        bool ever = false;
    };
    auto cache = std::make_shared<Cache>();
    return [&srv, resolver = std::move(resolver), base = std::move(base), cache] {
        cluster::NodeRecord r = base;
        r.state = srv.draining() ? "draining" : "ready";
        uint64_t used = 0;
        for (const server::LoadedModel& m : srv.models().loaded()) {
            std::string name = m.name;  // as /api/ps names it
            const size_t slash = name.rfind('/');
            const bool is_path = name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0;
            if (!is_path && name.find(':', slash == std::string::npos ? 0 : slash) == std::string::npos) name += ":latest";
            r.models_loaded.push_back(std::move(name));
            used += m.size;
        }
        std::sort(r.models_loaded.begin(), r.models_loaded.end());
        const auto now = std::chrono::steady_clock::now();
        if (resolver.list && (!cache->ever || now - cache->listed >= std::chrono::seconds(2))) {
            std::vector<std::string> names;
            for (const server::ModelEntry& e : resolver.list()) names.push_back(e.name);
            std::sort(names.begin(), names.end());
            cache->models = std::move(names);
            cache->listed = now;
            cache->ever = true;
        }
        r.models = cache->models;
        const uint64_t budget = srv.models().memory_budget();
        r.free_memory = budget > used ? budget - used : 0;
        return r;
    };
}

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

// pipeline_comm: rank 0's Comm with `serve --pipeline` (the group's later ranks hold the other
// layers), else null.
void serve(const ServeArgs& a, std::shared_ptr<StageGroup> pipeline_group = nullptr, pipeline::Comm* pipeline_comm = nullptr) {
    server::ServerConfig cfg = server::ServerConfig::from_env();
    if (pipeline_group) {
        cfg.manager.pipeline = std::move(pipeline_group);
        cfg.manager.max_loaded = 1;  // the later stages hold one model's layers
    }
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

    // The cluster settings, checked before anything listens.
    const std::string cluster_spec = flag_or_env(a.cluster, "HEARTH_CLUSTER");
    std::vector<std::string> etcd_endpoints;
    if (!cluster_spec.empty()) {
        try {
            etcd_endpoints = cluster::parse_etcd_endpoints(cluster_spec);
        } catch (const std::invalid_argument& e) {
            throw std::runtime_error(std::string("--cluster / HEARTH_CLUSTER: ") + e.what());
        }
    }
    const std::string advertise = flag_or_env(a.advertise, "HEARTH_ADVERTISE");
    if (!advertise.empty() && advertise.rfind("http://", 0) != 0)
        throw std::runtime_error("--advertise / HEARTH_ADVERTISE must be http://HOST:PORT, not '" + advertise + "'");
    std::chrono::milliseconds drain_timeout{60'000};
    if (const char* v = std::getenv("HEARTH_DRAIN_TIMEOUT"); v != nullptr && *v != '\0') {
        const auto d = server::parse_duration(v);
        if (!d || *d < std::chrono::nanoseconds(0)) throw std::runtime_error(std::string("HEARTH_DRAIN_TIMEOUT: not a duration: ") + v);
        drain_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    }

    server::ModelResolver resolver = server::store_resolver(models, cfg.models_dir);
    server::Server srv(cfg, resolver);
    const int port = srv.bind();
    std::fprintf(stderr, "hearth: listening on http://%s:%d (version %s, models in %s%s%s)\n", cfg.host.c_str(), port,
                 HEARTH_VERSION, cfg.models_root.c_str(), cfg.models_dir.empty() ? "" : " and ", cfg.models_dir.c_str());

    std::unique_ptr<cluster::Registrar> registrar;
    if (!etcd_endpoints.empty()) {
        cluster::NodeRecord base;
        base.url = advertise.empty() ? cluster::listener_url(cfg.host, port) : advertise;
        while (base.url.size() > 7 && base.url.back() == '/') base.url.pop_back();
        base.version = HEARTH_VERSION;
        base.parallel = cfg.manager.num_parallel;
        base.started_at = cluster::rfc3339_now();
        if (pipeline_comm) base.pipeline_stages = pipeline_comm->size();
        cluster::RegistrarOptions ro;
        ro.endpoints = etcd_endpoints;
        ro.cluster = flag_or_env(a.cluster_name, "HEARTH_CLUSTER_NAME", "default");
        ro.node_id = flag_or_env(a.node_id, "HEARTH_NODE_ID", cluster::default_node_id(port));
        registrar = std::make_unique<cluster::Registrar>(ro, record_source(srv, resolver, base));
        registrar->start();
    }

    // POST /api/drain wakes the waiter as SIGTERM does.
    std::atomic<bool> drain_requested{false}, listener_ended{false};
    srv.set_drain_handler([&] {
        drain_requested = true;
        kill(getpid(), SIGTERM);
    });
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (!listener_ended && !drain_requested && sig == SIGTERM && pipeline_comm) {
            // A pipeline group gets SIGTERM from mpirun when a stage died (or when it is being
            // stopped): the later stages are gone or going, so nothing in flight can finish.
            // Leave the cluster at once and fail those requests with an error now, before
            // mpirun's SIGKILL follows.
            std::fprintf(stderr, "hearth: pipeline: the group is ending (SIGTERM); failing %llu request(s) in flight\n",
                         (unsigned long long)srv.in_flight());
            if (registrar) registrar->stop();
            const std::string why = "the pipeline group is ending (a stage exited, or the group is being stopped); retry shortly";
            pipeline_comm->interrupt(why);
            // The runner may be inside MPI (OpenMPI reporting the lost peer can take seconds):
            // the replies are written from here.
            srv.models().fail_requests(why);
            for (int i = 0; i < 50 && srv.in_flight() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        } else if (!listener_ended && (drain_requested || (sig == SIGTERM && registrar))) {
            // SIGTERM in a cluster, or a drain request: finish what is in flight first.
            srv.begin_drain();
            if (registrar) registrar->poke();  // the record says draining at once
            std::fprintf(stderr, "hearth: draining (%llu request(s) in flight, at most %lld s)\n",
                         (unsigned long long)srv.in_flight(), (long long)(drain_timeout.count() / 1000));
            const auto end = std::chrono::steady_clock::now() + drain_timeout;
            int idle_polls = 0;  // in_flight() 0 twice in a row: the last reply was handed over
            const timespec tick{0, 20'000'000};
            while (std::chrono::steady_clock::now() < end) {
                if (srv.in_flight() == 0) {
                    if (++idle_polls >= 3) break;
                } else {
                    idle_polls = 0;
                }
                // SIGINT while draining stops at once; another SIGTERM is the same drain.
                if (sigtimedwait(&sigs, nullptr, &tick) == SIGINT || listener_ended) break;
            }
            if (srv.in_flight() > 0) std::fprintf(stderr, "hearth: drain timeout: %llu request(s) still in flight\n",
                                                  (unsigned long long)srv.in_flight());
        }
        std::fprintf(stderr, "hearth: shutting down\n");
        if (registrar) registrar->stop();  // revokes the lease: the record is gone at once
        srv.stop();
    });
    const bool ok = srv.listen();
    listener_ended = true;
    kill(getpid(), SIGTERM);  // wakes the waiter if the listener ended on its own
    waiter.join();
    if (!ok) throw std::runtime_error("the HTTP listener failed");
}

// `mpirun -np N hearth serve --pipeline`: rank 0 is the daemon, the other ranks serve their
// stages of whatever model it loads until it stops. An error on rank 0 ends the group.
void serve_pipeline(const ServeArgs& a) {
    // SIGINT/SIGTERM blocked before MPI starts its threads, so they inherit the mask and the
    // daemon's waiter (serve()) receives mpirun's SIGTERM instead of the default action.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::unique_ptr<pipeline::Comm> comm = pipeline::make_mpi_comm();
    if (comm->rank() > 0) {
        pthread_sigmask(SIG_UNBLOCK, &sigs, nullptr);  // a later stage just ends
        pipeline::serve_stage(*comm);
        return;
    }
    int timeout_ms = 60'000;
    if (const char* v = std::getenv("HEARTH_PIPELINE_TIMEOUT"); v != nullptr && *v != '\0') {
        const auto d = server::parse_duration(v);
        if (!d || *d <= std::chrono::nanoseconds(0)) throw std::runtime_error(std::string("HEARTH_PIPELINE_TIMEOUT: not a duration: ") + v);
        timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
    }
    auto group = std::make_shared<pipeline::CommGroup>(*comm, a.split, timeout_ms);
    std::fprintf(stderr, "hearth: pipeline of %d stages (split %s, watchdog %d ms)\n", comm->size(), a.split.c_str(), timeout_ms);
    try {
        serve(a, group, comm.get());
    } catch (const std::exception& e) {
        if (comm->size() < 2) throw;
        std::fprintf(stderr, "hearth: error: %s\n", e.what());
        std::fflush(stderr);
        comm->abort(1);
    }
    group->finish();
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto a = std::make_shared<ServeArgs>();
    CLI::App* cmd = app.add_subcommand("serve", "Run the daemon (Ollama-compatible API on HEARTH_HOST, default 127.0.0.1:11434)");
    cmd->add_option("--models-dir", a->models_dir, "Also serve the .gguf files of this folder by file name (models are in the store: $HEARTH_MODELS, default ~/.hearth/models)");
    cmd->add_option("--api-key-file", a->api_key_file, "File with API keys (one per line or comma-separated)");
    cmd->add_option("--cluster", a->cluster,
                    "Register in a cluster: etcd endpoints etcd://HOST:PORT[,HOST:PORT...] (HEARTH_CLUSTER); SIGTERM then drains");
    cmd->add_option("--cluster-name", a->cluster_name, "The cluster's name in etcd (HEARTH_CLUSTER_NAME, default \"default\")");
    cmd->add_option("--advertise", a->advertise,
                    "The URL routers reach this daemon at, http://HOST:PORT (HEARTH_ADVERTISE; default: the listener's address)");
    cmd->add_option("--node-id", a->node_id, "This daemon's id in the cluster (HEARTH_NODE_ID; default <hostname>-<port>)");
    cmd->footer(
        "Environment: HEARTH_MODELS (the model store, ~/.hearth/models), HEARTH_NOPRUNE, HEARTH_HOST, HEARTH_API_KEYS,\n"
        "HEARTH_ALLOW_INSECURE, HEARTH_ORIGINS, HEARTH_MAX_BODY,\n"
        "HEARTH_KEEP_ALIVE (5m), HEARTH_MAX_LOADED_MODELS (3), HEARTH_MAX_MEMORY (80% of RAM), HEARTH_MAX_QUEUE (512),\n"
        "HEARTH_CLUSTER, HEARTH_CLUSTER_NAME, HEARTH_ADVERTISE, HEARTH_NODE_ID, HEARTH_DRAIN_TIMEOUT (60s),\n"
        "HEARTH_PIPELINE_TIMEOUT (60s: a --pipeline stage that does not answer a batch in time ends the group).");
    cmd->add_flag("--pipeline", a->pipeline,
                  "Under mpirun: split each model's layers between the ranks; rank 0 serves HTTP (one model at a time)");
    cmd->add_option("--split", a->split, "With --pipeline: 'auto' (by weight bytes) or layers per rank, e.g. 11,11")
        ->capture_default_str();
    cmd->callback([a] {
        if (a->pipeline) serve_pipeline(*a);
        else serve(*a);
    });
}

}  // namespace hearth::cli
