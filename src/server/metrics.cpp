#include "server/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hearth::server {

namespace {

// Upper bounds in seconds, shared by the latency histograms (TTFT spans long prompts on CPU,
// ITL is milliseconds): 1 ms .. 120 s.
const std::vector<double>& bucket_bounds() {
    static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                          0.5,   0.75,   1.0,   2.5,  5.0,   10.0, 20.0,  40.0, 60.0, 120.0};
    return b;
}

}  // namespace

std::string metric_label_escape(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string metric_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    // Integral values (counters, bytes) print exactly up to 2^53; others in the shortest of
    // 15 or 17 significant digits that reads back as the same double.
    if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    std::snprintf(buf, sizeof buf, "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

Metrics::PerModel& Metrics::model_locked(const std::string& model) {
    auto it = models_.find(model);
    if (it != models_.end()) return it->second;
    PerModel& m = models_[model];
    for (Histogram* h : {&m.ttft, &m.itl, &m.e2e}) h->buckets.assign(bucket_bounds().size(), 0);
    return m;
}

void Metrics::set_gauges(const std::string& model, const EngineGauges& g) {
    std::lock_guard lk(mu_);
    model_locked(model).gauges = g;
}

void Metrics::request_started(const std::string& model, uint64_t prompt_tokens, uint64_t cached_tokens) {
    std::lock_guard lk(mu_);
    PerModel& m = model_locked(model);
    m.requests++;
    m.prompt_tokens += prompt_tokens;
    m.cached_tokens += cached_tokens;
}

void Metrics::token_generated(const std::string& model) {
    std::lock_guard lk(mu_);
    model_locked(model).generation_tokens++;
}

static void observe(std::vector<uint64_t>& buckets, double& sum, uint64_t& count, double s) {
    const auto& b = bucket_bounds();
    for (size_t i = 0; i < b.size(); i++)
        if (s <= b[i]) {
            buckets[i]++;
            break;
        }
    sum += s;
    count++;
}

void Metrics::observe_ttft(const std::string& model, double seconds) {
    std::lock_guard lk(mu_);
    Histogram& h = model_locked(model).ttft;
    observe(h.buckets, h.sum, h.count, seconds);
}

void Metrics::observe_itl(const std::string& model, double seconds) {
    std::lock_guard lk(mu_);
    Histogram& h = model_locked(model).itl;
    observe(h.buckets, h.sum, h.count, seconds);
}

void Metrics::observe_e2e(const std::string& model, double seconds) {
    std::lock_guard lk(mu_);
    Histogram& h = model_locked(model).e2e;
    observe(h.buckets, h.sum, h.count, seconds);
}

void Metrics::request_finished(const std::string& model, const std::string& reason) {
    std::lock_guard lk(mu_);
    model_locked(model).finished[reason.empty() ? "unknown" : reason]++;
}

void Metrics::preempted(const std::string& model) {
    std::lock_guard lk(mu_);
    model_locked(model).preemptions++;
}

void Metrics::model_unloaded(const std::string& model) {
    std::lock_guard lk(mu_);
    auto it = models_.find(model);
    if (it != models_.end()) it->second.gauges = EngineGauges{};
}

std::map<std::string, EngineGauges> Metrics::gauges() const {
    std::lock_guard lk(mu_);
    std::map<std::string, EngineGauges> out;
    for (const auto& [model, m] : models_) out[model] = m.gauges;
    return out;
}

std::string Metrics::render() const {
    std::lock_guard lk(mu_);
    PromWriter w;
    auto header = [&](const char* name, const char* type, const char* help) { w.header(name, type, help); };
    auto series = [&](const char* name, const std::string& labels, double v) { w.sample(name, labels, v); };
    auto each_gauge = [&](const char* name, const char* help, auto get) {
        header(name, "gauge", help);
        for (const auto& [model, m] : models_) series(name, "model=\"" + metric_label_escape(model) + "\"", static_cast<double>(get(m)));
    };
    auto each_counter = [&](const char* name, const char* help, auto get) {
        header(name, "counter", help);
        for (const auto& [model, m] : models_) series(name, "model=\"" + metric_label_escape(model) + "\"", static_cast<double>(get(m)));
    };
    each_gauge("hearth_requests_running", "Sequences in the running batch.", [](const PerModel& m) { return m.gauges.running; });
    each_gauge("hearth_requests_waiting", "Requests waiting to be admitted.", [](const PerModel& m) { return m.gauges.waiting; });
    each_gauge("hearth_kv_blocks_used", "KV-cache blocks in use (sequences and prefix cache).",
               [](const PerModel& m) { return m.gauges.kv_blocks_used; });
    each_gauge("hearth_kv_blocks_total", "KV-cache blocks in the model's pool.", [](const PerModel& m) { return m.gauges.kv_blocks_total; });
    each_gauge("hearth_kv_blocks_cached", "KV-cache blocks held only by the prefix cache.",
               [](const PerModel& m) { return m.gauges.kv_blocks_cached; });
    each_gauge("hearth_prefix_cache_hit_ratio", "Prompt tokens served from the prefix cache / prompt tokens.",
               [](const PerModel& m) { return m.prompt_tokens ? static_cast<double>(m.cached_tokens) / m.prompt_tokens : 0.0; });
    each_counter("hearth_requests_total", "Requests admitted.", [](const PerModel& m) { return m.requests; });
    each_counter("hearth_prompt_tokens_total", "Prompt tokens of admitted requests.", [](const PerModel& m) { return m.prompt_tokens; });
    each_counter("hearth_prompt_cached_tokens_total", "Prompt tokens reused from the prefix cache.",
                 [](const PerModel& m) { return m.cached_tokens; });
    each_counter("hearth_generation_tokens_total", "Tokens generated.", [](const PerModel& m) { return m.generation_tokens; });
    each_counter("hearth_preemptions_total", "Sequences preempted for lack of KV blocks.", [](const PerModel& m) { return m.preemptions; });

    header("hearth_requests_finished_total", "counter", "Requests finished, by reason.");
    for (const auto& [model, m] : models_)
        for (const auto& [reason, n] : m.finished)
            series("hearth_requests_finished_total", "model=\"" + metric_label_escape(model) + "\",reason=\"" + metric_label_escape(reason) + "\"",
                   static_cast<double>(n));

    auto histogram = [&](const char* name, const char* help, const Histogram PerModel::*which) {
        header(name, "histogram", help);
        const std::string bucket = std::string(name) + "_bucket";
        for (const auto& [model, m] : models_) {
            const Histogram& h = m.*which;
            const std::string ml = "model=\"" + metric_label_escape(model) + "\"";
            uint64_t cum = 0;
            for (size_t i = 0; i < bucket_bounds().size(); i++) {
                cum += h.buckets[i];
                series(bucket.c_str(), ml + ",le=\"" + metric_value(bucket_bounds()[i]) + "\"", static_cast<double>(cum));
            }
            series(bucket.c_str(), ml + ",le=\"+Inf\"", static_cast<double>(h.count));
            series((std::string(name) + "_sum").c_str(), ml, h.sum);
            series((std::string(name) + "_count").c_str(), ml, static_cast<double>(h.count));
        }
    };
    histogram("hearth_time_to_first_token_seconds", "Time from request to first generated token.", &PerModel::ttft);
    histogram("hearth_inter_token_latency_seconds", "Time between consecutive generated tokens.", &PerModel::itl);
    histogram("hearth_request_duration_seconds", "Time from request to the end of its response.", &PerModel::e2e);
    return std::move(w.out);
}

void PromWriter::header(const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void PromWriter::sample(const std::string& name, const std::string& labels, double v) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += metric_value(v);
    out += '\n';
}

void PromWriter::single(const char* name, const char* type, const char* help, double v) {
    header(name, type, help);
    sample(name, "", v);
}

}  // namespace hearth::server
