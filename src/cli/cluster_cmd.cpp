// `hearth cluster status`: the node records of a cluster in etcd, one row per daemon, with
// each daemon's running and waiting requests read from its /metrics; `hearth drain`: asks a
// daemon (POST /api/drain) to finish its requests, leave the cluster and exit.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cluster/etcd.h"
#include "cluster/node.h"
#include "http/client.h"

namespace hearth::cli {

namespace {

std::string env_or(const char* var, const std::string& def) {
    const char* v = std::getenv(var);
    return v != nullptr && *v != '\0' ? std::string(v) : def;
}

// The sum of a family's samples in a Prometheus text exposition; nullopt when absent.
std::optional<double> sum_family(const std::string& text, const std::string& family) {
    std::istringstream in(text);
    std::optional<double> sum;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#' || line.compare(0, family.size(), family) != 0) continue;
        const char next = line.size() > family.size() ? line[family.size()] : '\0';
        if (next != ' ' && next != '{') continue;  // another family with this prefix
        size_t value_at = family.size();
        if (next == '{') {
            const size_t close = line.rfind('}');
            if (close == std::string::npos) continue;
            value_at = close + 1;
        }
        try {
            sum = sum.value_or(0) + std::stod(line.substr(value_at));
        } catch (const std::exception&) {
        }
    }
    return sum;
}

struct Load {
    std::optional<double> running, waiting;
};

Load read_load(const std::string& url, const std::string& api_key) {
    Load l;
    try {
        http::Client c(url);
        c.set_connection_timeout(std::chrono::milliseconds(1000));
        c.set_read_timeout(std::chrono::milliseconds(2000));
        http::Headers h;
        if (!api_key.empty()) h.emplace("Authorization", "Bearer " + api_key);
        http::Result r = c.Get("/metrics", h);
        if (!r || r->status != 200) return l;
        l.running = sum_family(r->body, "hearth_requests_running").value_or(0);
        l.waiting = sum_family(r->body, "hearth_requests_waiting").value_or(0);
    } catch (const std::exception&) {
    }
    return l;
}

std::string number(const std::optional<double>& v) {
    if (!v) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", *v);
    return buf;
}

struct StatusArgs {
    std::string cluster, cluster_name;
};

void cluster_status(const StatusArgs& a) {
    const std::string spec = a.cluster.empty() ? env_or("HEARTH_CLUSTER", "") : a.cluster;
    if (spec.empty()) throw std::runtime_error("no cluster: give --cluster etcd://HOST:PORT[,HOST:PORT...] or set HEARTH_CLUSTER");
    const std::string name = a.cluster_name.empty() ? env_or("HEARTH_CLUSTER_NAME", "default") : a.cluster_name;
    cluster::Etcd etcd(cluster::parse_etcd_endpoints(spec), std::chrono::milliseconds(2000));
    const cluster::Etcd::Range range = etcd.get_prefix(cluster::nodes_prefix(name));
    std::vector<cluster::NodeRecord> nodes;
    for (const cluster::KeyValue& kv : range.kvs)
        if (auto r = cluster::NodeRecord::from_json(kv.value)) nodes.push_back(std::move(*r));
    // Every node's /metrics at once: a dead node costs one timeout, not one per node.
    const std::string key = env_or("HEARTH_API_KEY", "");
    std::vector<std::future<Load>> loads;
    for (const cluster::NodeRecord& n : nodes) loads.push_back(std::async(std::launch::async, read_load, n.url, key));
    std::vector<std::vector<std::string>> rows = {{"NODE", "URL", "STATE", "MODELS", "RUNNING", "WAITING"}};
    for (size_t i = 0; i < nodes.size(); ++i) {
        const cluster::NodeRecord& n = nodes[i];
        std::string models;
        for (const std::string& m : n.models_loaded) models += (models.empty() ? "" : ",") + m;
        const Load l = loads[i].get();
        // A pipeline group (serve --pipeline) is one node: its stage count follows its id.
        const std::string id = n.pipeline_stages > 0 ? n.id + " (" + std::to_string(n.pipeline_stages) + " stages)" : n.id;
        rows.push_back({id, n.url, n.state, models.empty() ? "-" : models, number(l.running), number(l.waiting)});
    }
    std::fputs(render_table(rows).c_str(), stdout);
}

struct DrainArgs {
    std::string host;
    bool wait = false;
    int wait_seconds = 120;
};

void drain(const DrainArgs& a) {
    if (!a.host.empty()) setenv("HEARTH_HOST", a.host.c_str(), 1);  // DaemonClient reads it
    DaemonClient client;
    const nlohmann::json reply = client.post("/api/drain", nlohmann::json::object());
    const uint64_t in_flight = reply.is_object() ? reply.value("in_flight", uint64_t(0)) : 0;
    std::printf("draining %s (%llu request(s) in flight)\n", client.address().c_str(), (unsigned long long)in_flight);
    if (!a.wait) return;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_seconds);
    while (client.ping()) {
        if (std::chrono::steady_clock::now() >= end) throw std::runtime_error("the daemon is still running after the drain wait");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::printf("stopped\n");
}

}  // namespace

void add_cluster_commands(CLI::App& app) {
    {
        CLI::App* group = app.add_subcommand("cluster", "Inspect a cluster of daemons registered in etcd");
        group->require_subcommand(1);
        auto a = std::make_shared<StatusArgs>();
        CLI::App* cmd = group->add_subcommand("status", "List the cluster's daemons: NODE URL STATE MODELS RUNNING WAITING");
        cmd->add_option("--cluster", a->cluster, "etcd endpoints, etcd://HOST:PORT[,HOST:PORT...] (HEARTH_CLUSTER)");
        cmd->add_option("--cluster-name", a->cluster_name, "The cluster's name (HEARTH_CLUSTER_NAME, default \"default\")");
        cmd->footer("MODELS: the models each daemon has loaded; RUNNING / WAITING: from its /metrics, '-' when it does not answer.");
        cmd->callback([a] { run_client_command([&] { cluster_status(*a); }); });
    }
    {
        auto a = std::make_shared<DrainArgs>();
        CLI::App* cmd = app.add_subcommand(
            "drain", "Drain a daemon: it finishes the requests in flight, leaves its cluster, and exits");
        cmd->add_option("--host", a->host, "The daemon's address (default: HEARTH_HOST, 127.0.0.1:11434)");
        cmd->add_flag("--wait", a->wait, "Wait until the daemon has stopped");
        cmd->add_option("--wait-seconds", a->wait_seconds, "How long --wait waits (default 120)");
        cmd->callback([a] { run_client_command([&] { drain(*a); }); });
    }
}

}  // namespace hearth::cli
