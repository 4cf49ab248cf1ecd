// GET /metrics: Metrics::render() plus series the route reads cheaply when scraped (loaded
// models from the manager, its counters, /proc/self for the process).
#include "server/metrics_route.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "http/server.h"
#include "server/http_util.h"
#include "server/server.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.1.0"
#endif

namespace hearth::server {

namespace {

using Writer = PromWriter;

// Process figures from /proc/self (Linux); absent fields stay negative and are not written.
struct ProcessStats {
    double cpu_seconds = -1, start_time = -1, virtual_bytes = -1, resident_bytes = -1, open_fds = -1, threads = -1;
};

ProcessStats read_process_stats() {
    ProcessStats p;
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (stat && std::getline(stat, line)) {
        // Fields after the command name, which is in parentheses and may hold spaces.
        const size_t close = line.rfind(')');
        if (close != std::string::npos) {
            std::istringstream in(line.substr(close + 2));
            std::vector<std::string> f;
            for (std::string tok; in >> tok;) f.push_back(tok);
            // f[0] is field 3 (state): field k is f[k - 3].
            const long ticks = sysconf(_SC_CLK_TCK);
            const long page = sysconf(_SC_PAGESIZE);
            try {
                if (f.size() > 21 && ticks > 0) {
                    p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / double(ticks);  // utime + stime
                    p.threads = std::stod(f[17]);
                    p.virtual_bytes = std::stod(f[20]);
                    if (page > 0) p.resident_bytes = std::stod(f[21]) * double(page);
                    std::ifstream sys("/proc/stat");
                    for (std::string l; std::getline(sys, l);)
                        if (l.rfind("btime ", 0) == 0) {
                            p.start_time = std::stod(l.substr(6)) + std::stod(f[19]) / double(ticks);
                            break;
                        }
                }
            } catch (const std::exception&) {
            }
        }
    }
    std::error_code ec;
    double fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec))
        fds++;
    if (!ec) p.open_fds = fds;
    return p;
}

}  // namespace

std::string render_metrics(ApiEnv& env) {
    Writer w;
    w.out = env.models.metrics().render();

    const std::vector<LoadedModel> loaded = env.models.loaded();
    w.single("hearth_models_loaded", "gauge", "Models loaded now.", double(loaded.size()));
    w.header("hearth_model_memory_bytes", "gauge", "Memory of a loaded model (weights file + KV cache, estimated).");
    for (const LoadedModel& m : loaded) w.sample("hearth_model_memory_bytes", "model=\"" + metric_label_escape(m.name) + "\"", double(m.size));
    w.header("hearth_model_context_length", "gauge", "Context length (tokens) of a loaded model.");
    for (const LoadedModel& m : loaded)
        w.sample("hearth_model_context_length", "model=\"" + metric_label_escape(m.name) + "\"", double(m.context_length));
    w.header("hearth_model_busy", "gauge", "1 while a loaded model has work, else 0.");
    for (const LoadedModel& m : loaded) w.sample("hearth_model_busy", "model=\"" + metric_label_escape(m.name) + "\"", m.busy ? 1 : 0);
    w.single("hearth_memory_budget_bytes", "gauge", "Memory budget for loaded models (HEARTH_MAX_MEMORY).",
             double(env.models.memory_budget()));

    // The engine gauges again under vLLM's names and label (model_name), which inference
    // schedulers (llm-d, the Gateway API inference extension) read. One sample per model the
    // engine has reported; a lone unlabelled 0 before any, so each family has a sample.
    const std::map<std::string, EngineGauges> gauges = env.models.metrics().gauges();
    const auto vllm = [&](const char* name, const char* help, double (*get)(const EngineGauges&)) {
        w.header(name, "gauge", help);
        if (gauges.empty()) w.sample(name, "", 0);
        for (const auto& [model, g] : gauges) w.sample(name, "model_name=\"" + metric_label_escape(model) + "\"", get(g));
    };
    vllm("vllm:num_requests_running", "Requests in the running batch (hearth_requests_running).",
         [](const EngineGauges& g) { return double(g.running); });
    vllm("vllm:num_requests_waiting", "Requests waiting to be admitted (hearth_requests_waiting).",
         [](const EngineGauges& g) { return double(g.waiting); });
    vllm("vllm:kv_cache_usage_perc", "KV-cache usage, 0 to 1: blocks held by sequences / blocks in the pool.",
         [](const EngineGauges& g) {
             if (g.kv_blocks_total <= 0) return 0.0;
             const int64_t held = std::max<int64_t>(g.kv_blocks_used - g.kv_blocks_cached, 0);  // prefix-cache-only blocks are reusable
             return std::min(1.0, double(held) / double(g.kv_blocks_total));
         });
    if (env.draining != nullptr)
        w.single("hearth_node_draining", "gauge", "1 while the daemon drains (finishes its requests before it stops), else 0.",
                 env.draining->load() ? 1 : 0);

    const ManagerStats s = env.models.stats();
    w.single("hearth_model_loads_total", "counter", "Models loaded since the start.", double(s.loads));
    w.single("hearth_model_unloads_total", "counter", "Models unloaded since the start.", double(s.unloads));
    w.single("hearth_manager_requests_completed_total", "counter", "Model requests answered to the end (cancelled ones included).",
             double(s.completed));
    w.single("hearth_manager_requests_cancelled_total", "counter", "Model requests cancelled (client gone or shutdown).",
             double(s.cancelled));
    w.single("hearth_manager_requests_rejected_total", "counter", "Model requests refused because the queue was full (503).",
             double(s.rejected));

    if (env.http != nullptr) {
        const http::ServerStats& h = env.http->stats();
        w.single("hearth_http_connections_open", "gauge", "Open client connections.", double(h.connections_open.load()));
        w.single("hearth_http_connections_total", "counter", "Client connections accepted.", double(h.connections_total.load()));
        w.single("hearth_http_connections_rejected_total", "counter",
                 "Connections answered 503 because HEARTH_MAX_CONNECTIONS were open.", double(h.connections_rejected.load()));
        w.single("hearth_http_timeouts_total", "counter", "Connections closed by a header, body, idle or write timeout.",
                 double(h.timeouts.load()));
        w.single("hearth_http_handler_threads", "gauge", "Threads running or waiting for route handlers.",
                 double(h.handler_threads.load()));
    }
    w.header("hearth_build_info", "gauge", "Always 1; the version is a label.");
    w.sample("hearth_build_info", "version=\"" + metric_label_escape(env.config.version.empty() ? HEARTH_VERSION : env.config.version) + "\"", 1);

    const ProcessStats p = read_process_stats();
    if (p.cpu_seconds >= 0) w.single("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.", p.cpu_seconds);
    if (p.start_time >= 0) w.single("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.", p.start_time);
    if (p.virtual_bytes >= 0) w.single("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes);
    if (p.resident_bytes >= 0) w.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", p.resident_bytes);
    if (p.open_fds >= 0) w.single("process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds);
    if (p.threads >= 0) w.single("process_threads", "gauge", "Number of OS threads in the process.", p.threads);
    return w.out;
}

void register_metrics_route(http::Server& http, ApiEnv& env) {
    http.Get("/metrics", [&env](const http::Request& req, http::Response& res) {
        try {
            res.set_content(render_metrics(env), kMetricsContentType);
        } catch (const std::exception& e) {
            send_error(req, res, 500, e.what());
        }
    });
}

}  // namespace hearth::server
