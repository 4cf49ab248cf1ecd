// Serving metrics for `GET /metrics` (Prometheus text format 0.0.4). Runners and the
// serving engine report into one Metrics object owned by the ModelManager; every series is
// labelled by model. All methods are thread-safe and cheap (one mutex, no allocation on the
// hot path beyond the first use of a model label).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::server {

// Exposition-format helpers (also used by the /metrics route for its own series).
// A label value with backslash, double quote and newline escaped.
std::string metric_label_escape(std::string_view v);
// A sample value: integers exactly, NaN / +Inf / -Inf spelled as Prometheus reads them.
std::string metric_value(double v);

// Builds the text exposition: `# HELP`/`# TYPE` lines, then `name{labels} value` samples.
struct PromWriter {
    std::string out;
    void header(const char* name, const char* type, const char* help);
    void sample(const std::string& name, const std::string& labels, double v);  // labels: `k="v",...` or empty
    void single(const char* name, const char* type, const char* help, double v);  // header + one unlabelled sample
};

// The instantaneous state of one model's serving engine, set after each scheduler step.
struct EngineGauges {
    int64_t running = 0;          // sequences in the running batch
    int64_t waiting = 0;          // requests queued (not yet admitted)
    int64_t kv_blocks_used = 0;   // KV blocks held by sequences or the prefix cache
    int64_t kv_blocks_total = 0;  // KV blocks in the model's pool
    int64_t kv_blocks_cached = 0; // blocks held only by the prefix cache (evictable)
};

class Metrics {
public:
    // Gauges of one model (replaces the previous values).
    void set_gauges(const std::string& model, const EngineGauges& g);
    // A request was admitted: `prompt_tokens` in its prompt, `cached_tokens` of them reused
    // from the prefix cache (0 when none).
    void request_started(const std::string& model, uint64_t prompt_tokens, uint64_t cached_tokens);
    // One generated token was sent (counts hearth_generation_tokens_total).
    void token_generated(const std::string& model);
    // Latencies in seconds.
    void observe_ttft(const std::string& model, double seconds);  // received -> first token
    void observe_itl(const std::string& model, double seconds);   // between two tokens
    void observe_e2e(const std::string& model, double seconds);   // received -> done
    // A request ended: reason "stop", "length", "cancelled", "error", ...
    void request_finished(const std::string& model, const std::string& reason);
    // A sequence was preempted (its KV freed, to be recomputed later).
    void preempted(const std::string& model);
    // The model was unloaded: its gauges drop to zero (counters stay, as Prometheus expects).
    void model_unloaded(const std::string& model);

    // Every model's gauges as last set (zero after unload), by model name.
    std::map<std::string, EngineGauges> gauges() const;

    // The whole exposition, `# HELP`/`# TYPE` lines included.
    std::string render() const;

private:
    struct Histogram {
        std::vector<uint64_t> buckets;  // cumulative counts are computed when rendering
        double sum = 0;
        uint64_t count = 0;
    };
    struct PerModel {
        EngineGauges gauges;
        uint64_t requests = 0, prompt_tokens = 0, cached_tokens = 0, generation_tokens = 0, preemptions = 0;
        std::map<std::string, uint64_t> finished;  // by reason
        Histogram ttft, itl, e2e;
    };
    PerModel& model_locked(const std::string& model);

    mutable std::mutex mu_;
    std::map<std::string, PerModel> models_;
};

}  // namespace hearth::server
