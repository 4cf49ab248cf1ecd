// GET /metrics: the Prometheus text exposition checked strictly (every line parsed, HELP/TYPE
// before samples, families contiguous, histograms cumulative and ending in +Inf == _count),
// Metrics::render() unit tests, and the route over real loopback HTTP (API keys apply).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "server/metrics_route.h"
#include "server/server.h"
#include "support/loopback_server.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct Exposition {
    std::map<std::string, std::string> type;  // family -> counter / gauge / histogram / ...
    std::vector<Sample> samples;

    // The value of the sample with exactly these labels; NaN when absent.
    double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
        for (const Sample& s : samples)
            if (s.name == name && s.labels == labels) return s.value;
        return std::nan("");
    }
};

// `{a="x",b="y\"z"}` -> labels; false when malformed.
bool parse_labels(const std::string& text, std::map<std::string, std::string>& out) {
    static const std::regex name_re("[a-zA-Z_][a-zA-Z0-9_]*");
    size_t i = 0;
    while (i < text.size()) {
        const size_t eq = text.find('=', i);
        if (eq == std::string::npos) return false;
        const std::string name = text.substr(i, eq - i);
        if (!std::regex_match(name, name_re) || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
        std::string value;
        size_t j = eq + 2;
        for (; j < text.size() && text[j] != '"'; ++j) {
            if (text[j] == '\\') {
                if (++j >= text.size()) return false;
                if (text[j] == 'n') value += '\n';
                else if (text[j] == '\\' || text[j] == '"') value += text[j];
                else return false;
            } else {
                if (text[j] == '\n') return false;
                value += text[j];
            }
        }
        if (j >= text.size()) return false;  // unterminated
        if (!out.emplace(name, value).second) return false;  // duplicate label
        i = j + 1;
        if (i < text.size()) {
            if (text[i] != ',') return false;
            ++i;
        }
    }
    return true;
}

bool parse_value(const std::string& s, double& v) {
    if (s == "NaN") v = std::nan("");
    else if (s == "+Inf") v = INFINITY;
    else if (s == "-Inf") v = -INFINITY;
    else {
        static const std::regex num_re(R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)");
        if (!std::regex_match(s, num_re)) return false;
        v = std::stod(s);
    }
    return true;
}

// The family a sample belongs to: histogram samples carry _bucket / _sum / _count.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& type) {
    if (type.count(name)) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string sfx = suffix;
        if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
            const std::string base = name.substr(0, name.size() - sfx.size());
            auto it = type.find(base);
            if (it != type.end() && (it->second == "histogram" || it->second == "summary")) return base;
        }
    }
    return "";
}

// Parses and checks the whole text into `e`; every problem is a test failure naming the line.
void check_exposition(const std::string& text, Exposition& e) {
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n') << "the exposition ends with a newline";
    static const std::regex help_re(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*))");
    static const std::regex type_re(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
    static const std::regex sample_re(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?)");
    std::set<std::string> helped, series;
    std::string current;  // family whose samples are being read
    size_t start = 0;
    int line_no = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + ": " + line;
        std::smatch m;
        if (line.rfind("# HELP ", 0) == 0) {
            EXPECT_TRUE(std::regex_match(line, m, help_re)) << where;
            if (m.size() > 1) {
                EXPECT_TRUE(helped.insert(m[1]).second) << "HELP twice, " << where;
                EXPECT_FALSE(e.type.count(m[1])) << "HELP after TYPE or samples, " << where;
            }
        } else if (line.rfind("# TYPE ", 0) == 0) {
            EXPECT_TRUE(std::regex_match(line, m, type_re)) << where;
            if (m.size() > 2) {
                EXPECT_FALSE(e.type.count(m[1])) << "TYPE twice, " << where;
                e.type[m[1]] = m[2];
                current = m[1];
            }
        } else if (!line.empty() && line[0] == '#') {
            continue;  // other comments are allowed
        } else {
            ASSERT_TRUE(std::regex_match(line, m, sample_re)) << where;
            Sample s;
            s.name = m[1];
            EXPECT_TRUE(parse_labels(m[3], s.labels)) << where;
            EXPECT_TRUE(parse_value(m[4], s.value)) << where;
            const std::string fam = family_of(s.name, e.type);
            EXPECT_FALSE(fam.empty()) << "sample before its TYPE line, " << where;
            EXPECT_EQ(fam, current) << "samples of a family must follow its TYPE line together, " << where;
            std::string key = s.name;
            for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
            EXPECT_TRUE(series.insert(key).second) << "duplicate series, " << where;
            if (!fam.empty() && e.type[fam] == "counter") {
                EXPECT_GE(s.value, 0) << where;
            }
            e.samples.push_back(std::move(s));
        }
    }
}

// Histograms: per label set, buckets with increasing `le`, cumulative counts, +Inf last and
// equal to _count; _sum present.
void check_histograms(const Exposition& e) {
    for (const auto& [fam, type] : e.type) {
        if (type != "histogram") continue;
        std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
        for (const Sample& s : e.samples) {
            if (s.name != fam + "_bucket") continue;
            auto labels = s.labels;
            auto le = labels.find("le");
            ASSERT_NE(le, labels.end()) << fam << " bucket without le";
            double bound = 0;
            EXPECT_TRUE(parse_value(le->second, bound)) << fam << " le=" << le->second;
            labels.erase(le);
            buckets[labels].push_back({bound, s.value});
        }
        for (const auto& [labels, bs] : buckets) {
            ASSERT_FALSE(bs.empty());
            for (size_t i = 1; i < bs.size(); ++i) {
                EXPECT_LT(bs[i - 1].first, bs[i].first) << fam << ": le must increase";
                EXPECT_LE(bs[i - 1].second, bs[i].second) << fam << ": buckets must be cumulative";
            }
            EXPECT_TRUE(std::isinf(bs.back().first)) << fam << ": the last bucket is le=\"+Inf\"";
            EXPECT_EQ(bs.back().second, e.value(fam + "_count", labels)) << fam << ": +Inf bucket == _count";
            EXPECT_TRUE(std::any_of(e.samples.begin(), e.samples.end(),
                                    [&](const Sample& s) { return s.name == fam + "_sum" && s.labels == labels; }))
                << fam << ": _sum missing";
        }
    }
}

Exposition parse_exposition(const std::string& text) {
    Exposition e;
    check_exposition(text, e);
    check_histograms(e);
    return e;
}

// The checker itself rejects what Prometheus would.
TEST(MetricsChecker, RejectsMalformedExpositions) {
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n"), "duplicate series");
    EXPECT_NONFATAL_FAILURE(parse_exposition("x 1\n"), "sample before its TYPE line");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE x gauge\n# TYPE y gauge\nx 1\n"), "follow its TYPE line");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE x gauge\nx{a=\"1} 1\n"), "line 2");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE x gauge\nx 1.2.3\n"), "line 2");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                                             "h_sum 1\nh_count 1\n"),
                            "cumulative");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"), "+Inf");
    EXPECT_NONFATAL_FAILURE(parse_exposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"),
                            "_count");
    EXPECT_FATAL_FAILURE(parse_exposition("# TYPE x gauge\nx  1\n"), "line 2");
}

TEST(MetricsRender, EmptyRegistryIsValid) {
    Metrics m;
    const Exposition e = parse_exposition(m.render());
    EXPECT_EQ(e.type.at("hearth_requests_total"), "counter");
    EXPECT_EQ(e.type.at("hearth_time_to_first_token_seconds"), "histogram");
    EXPECT_TRUE(e.samples.empty());
}

TEST(MetricsRender, ReportsAreRenderedPerModel) {
    Metrics m;
    m.request_started("a", 100, 40);
    m.request_started("a", 50, 0);
    m.request_started("we\"ird\\name\n", 7, 0);
    for (int i = 0; i < 5; ++i) m.token_generated("a");
    m.observe_ttft("a", 0.004);
    m.observe_ttft("a", 0.3);
    m.observe_ttft("a", 1000.0);  // beyond the last bound: only +Inf
    m.observe_itl("a", 0.02);
    m.observe_e2e("a", std::nan(""));
    m.request_finished("a", "stop");
    m.request_finished("a", "stop");
    m.request_finished("a", "length");
    m.preempted("a");
    m.set_gauges("a", EngineGauges{.running = 2, .waiting = 3, .kv_blocks_used = 10, .kv_blocks_total = 64, .kv_blocks_cached = 4});

    const Exposition e = parse_exposition(m.render());
    const std::map<std::string, std::string> a = {{"model", "a"}};
    EXPECT_EQ(e.value("hearth_requests_total", a), 2);
    EXPECT_EQ(e.value("hearth_requests_total", {{"model", "we\"ird\\name\n"}}), 1);  // escaped and read back
    EXPECT_EQ(e.value("hearth_prompt_tokens_total", a), 150);
    EXPECT_EQ(e.value("hearth_prompt_cached_tokens_total", a), 40);
    EXPECT_DOUBLE_EQ(e.value("hearth_prefix_cache_hit_ratio", a), 40.0 / 150.0);
    EXPECT_EQ(e.value("hearth_generation_tokens_total", a), 5);
    EXPECT_EQ(e.value("hearth_preemptions_total", a), 1);
    EXPECT_EQ(e.value("hearth_requests_finished_total", {{"model", "a"}, {"reason", "stop"}}), 2);
    EXPECT_EQ(e.value("hearth_requests_finished_total", {{"model", "a"}, {"reason", "length"}}), 1);
    EXPECT_EQ(e.value("hearth_requests_running", a), 2);
    EXPECT_EQ(e.value("hearth_requests_waiting", a), 3);
    EXPECT_EQ(e.value("hearth_kv_blocks_used", a), 10);
    EXPECT_EQ(e.value("hearth_kv_blocks_total", a), 64);
    EXPECT_EQ(e.value("hearth_kv_blocks_cached", a), 4);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_count", a), 3);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_bucket", {{"model", "a"}, {"le", "0.005"}}), 1);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_bucket", {{"model", "a"}, {"le", "0.3"}}), 2);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_bucket", {{"model", "a"}, {"le", "120"}}), 2);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_bucket", {{"model", "a"}, {"le", "+Inf"}}), 3);
    EXPECT_DOUBLE_EQ(e.value("hearth_time_to_first_token_seconds_sum", a), 1000.304);
    EXPECT_EQ(e.value("hearth_inter_token_latency_seconds_bucket", {{"model", "a"}, {"le", "0.01"}}), 0);
    EXPECT_EQ(e.value("hearth_inter_token_latency_seconds_bucket", {{"model", "a"}, {"le", "0.025"}}), 1);
    EXPECT_TRUE(std::isnan(e.value("hearth_request_duration_seconds_sum", a)));  // NaN is spelled "NaN"

    m.model_unloaded("a");  // gauges drop, counters stay
    const Exposition after = parse_exposition(m.render());
    EXPECT_EQ(after.value("hearth_requests_running", a), 0);
    EXPECT_EQ(after.value("hearth_kv_blocks_total", a), 0);
    EXPECT_EQ(after.value("hearth_requests_total", a), 2);
}

TEST(MetricsRender, ValuesAreExactAndShort) {
    EXPECT_EQ(metric_value(0), "0");
    EXPECT_EQ(metric_value(1234567891234.0), "1234567891234");
    EXPECT_EQ(metric_value(0.1), "0.1");
    EXPECT_EQ(metric_value(0.0025), "0.0025");
    EXPECT_EQ(metric_value(INFINITY), "+Inf");
    EXPECT_EQ(metric_value(-INFINITY), "-Inf");
    EXPECT_EQ(metric_value(std::nan("")), "NaN");
    EXPECT_EQ(std::stod(metric_value(1.0 / 3.0)), 1.0 / 3.0);
    EXPECT_EQ(metric_label_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(MetricsRender, VllmGaugesPerModelAndTheDrainFlag) {
    ModelManager mgr(ManagerOptions{});
    mgr.metrics().set_gauges("a", EngineGauges{.running = 2, .waiting = 3, .kv_blocks_used = 10, .kv_blocks_total = 64, .kv_blocks_cached = 4});
    mgr.metrics().set_gauges("b\"q", EngineGauges{.running = 1, .waiting = 0, .kv_blocks_used = 64, .kv_blocks_total = 64});
    const ServerConfig cfg;
    const ModelResolver resolver;
    std::atomic<bool> draining{true};
    ApiEnv env{cfg, resolver, mgr, nullptr, nullptr, &draining};
    const Exposition e = parse_exposition(render_metrics(env));
    EXPECT_EQ(e.value("vllm:num_requests_running", {{"model_name", "a"}}), 2);
    EXPECT_EQ(e.value("vllm:num_requests_waiting", {{"model_name", "a"}}), 3);
    EXPECT_DOUBLE_EQ(e.value("vllm:kv_cache_usage_perc", {{"model_name", "a"}}), 6.0 / 64.0);  // prefix-cache-only blocks are free
    EXPECT_EQ(e.value("vllm:num_requests_running", {{"model_name", "b\"q"}}), 1);
    EXPECT_EQ(e.value("vllm:kv_cache_usage_perc", {{"model_name", "b\"q"}}), 1);
    EXPECT_EQ(e.value("hearth_node_draining"), 1);
    env.draining = nullptr;  // no drain state (unit tests): no series
    EXPECT_TRUE(std::isnan(parse_exposition(render_metrics(env)).value("hearth_node_draining")));
}

class MetricsRoute : public ::testing::Test {
protected:
    void start(const std::vector<std::string>& keys = {}) {
        ServerConfig cfg = test::LoopbackServer::test_config();
        cfg.api_keys = keys;
        loop_.start(cfg, directory_resolver(loop_.models_dir()));
    }
    test::LoopbackServer loop_{{{"stories260K.gguf", "models/stories260K.gguf"}}};
};

TEST_F(MetricsRoute, ServesTheExpositionWithLoadedModelsAndCounters) {
    start();
    auto cli = loop_.client();
    // Before any model: valid, nothing loaded.
    auto r0 = cli.Get("/metrics");
    ASSERT_TRUE(r0);
    EXPECT_EQ(r0->status, 200);
    EXPECT_EQ(r0->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    const Exposition e0 = parse_exposition(r0->body);
    EXPECT_EQ(e0.value("hearth_models_loaded"), 0);
    EXPECT_EQ(e0.value("hearth_manager_requests_completed_total"), 0);
    // vLLM's gauges have a sample before any model (an unlabelled 0); the drain flag is 0.
    EXPECT_EQ(e0.value("vllm:num_requests_running"), 0);
    EXPECT_EQ(e0.value("vllm:num_requests_waiting"), 0);
    EXPECT_EQ(e0.value("vllm:kv_cache_usage_perc"), 0);
    EXPECT_EQ(e0.value("hearth_node_draining"), 0);

    for (int i = 0; i < 2; ++i) {
        const json body = {{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"stream", false},
                           {"options", {{"num_predict", 4}, {"temperature", 0}}}};
        auto g = cli.Post("/api/generate", body.dump(), "application/json");
        ASSERT_TRUE(g);
        ASSERT_EQ(g->status, 200) << g->body;
    }
    // The engine records a request's end just after sending its last event, and its gauges
    // after each step: scrape until both have caught up (no timing is asserted).
    const std::map<std::string, std::string> model = {{"model", "stories260K"}};
    Exposition e;
    for (int attempt = 0; attempt < 500; ++attempt) {
        auto r = cli.Get("/metrics");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200);
        e = parse_exposition(r->body);
        if (e.value("hearth_request_duration_seconds_count", model) == 2 && e.value("hearth_manager_requests_completed_total") == 2 &&
            e.value("hearth_requests_running", model) == 0)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(e.value("hearth_models_loaded"), 1);
    EXPECT_GT(e.value("hearth_model_memory_bytes", model), 1000000);  // the 1.2 MB weights file at least
    EXPECT_EQ(e.value("hearth_model_context_length", model), 512);
    EXPECT_EQ(e.value("hearth_model_loads_total"), 1);
    EXPECT_EQ(e.value("hearth_manager_requests_completed_total"), 2);
    EXPECT_GT(e.value("hearth_memory_budget_bytes"), 0);
    // What the serving engine reported for the two requests (4 tokens each).
    EXPECT_EQ(e.value("hearth_requests_total", model), 2);
    EXPECT_GT(e.value("hearth_prompt_tokens_total", model), 2);
    EXPECT_EQ(e.value("hearth_generation_tokens_total", model), 8);
    EXPECT_EQ(e.value("hearth_requests_finished_total", {{"model", "stories260K"}, {"reason", "length"}}), 2);
    EXPECT_EQ(e.value("hearth_time_to_first_token_seconds_count", model), 2);
    EXPECT_EQ(e.value("hearth_inter_token_latency_seconds_count", model), 6);
    EXPECT_EQ(e.value("hearth_request_duration_seconds_count", model), 2);
    EXPECT_EQ(e.value("hearth_requests_running", model), 0);
    EXPECT_GT(e.value("hearth_kv_blocks_total", model), 0);
    // The same gauges under vLLM's names, labelled model_name as vLLM labels them.
    const std::map<std::string, std::string> vllm_model = {{"model_name", "stories260K"}};
    EXPECT_EQ(e.type.at("vllm:num_requests_running"), "gauge");
    EXPECT_EQ(e.value("vllm:num_requests_running", vllm_model), 0);
    EXPECT_EQ(e.value("vllm:num_requests_waiting", vllm_model), 0);
    const double usage = e.value("vllm:kv_cache_usage_perc", vllm_model);
    EXPECT_GE(usage, 0);  // the prefix cache holds blocks, but they are reusable: not in use
    EXPECT_LE(usage, 1);
    EXPECT_TRUE(std::isnan(e.value("vllm:num_requests_running")));  // no unlabelled sample once a model reported
    EXPECT_EQ(e.value("hearth_node_draining"), 0);
    EXPECT_EQ(e.value("hearth_build_info", {{"version", "9.9.9-test"}}), 1);
    EXPECT_GT(e.value("process_resident_memory_bytes"), 0);
    EXPECT_GT(e.value("process_open_fds"), 0);
    EXPECT_GT(e.value("process_start_time_seconds"), 1.6e9);
    EXPECT_EQ(e.type.at("process_cpu_seconds_total"), "counter");
}

TEST_F(MetricsRoute, NeedsTheApiKeyWhenKeysAreSet) {
    start({"sesame"});
    auto cli = loop_.client();
    auto denied = cli.Get("/metrics");
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401);
    EXPECT_EQ(json::parse(denied->body).value("error", ""), "unauthorized: a valid API key is required (Authorization: Bearer <key>)");
    auto wrong = cli.Get("/metrics", {{"Authorization", "Bearer nope"}});
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
    auto ok = cli.Get("/metrics", {{"Authorization", "Bearer sesame"}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200);
    parse_exposition(ok->body);
}

}  // namespace
}  // namespace hearth::server
