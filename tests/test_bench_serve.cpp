// `hearth bench serve` end to end: the real binary drives an in-process daemon on a loopback
// port (stories260K) over both APIs; its JSON and table reports, prompt-length calibration
// and error exits are checked. Also checks that `hearth bench -m FILE` still parses.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "support/loopback_server.h"
#include "support/paths.h"

namespace hearth::server {
namespace {

using json = nlohmann::json;

struct CliRun {
    int code = -1;
    std::string out, err;
};

CliRun hearth(const std::string& args) {
    test::TempDir dir;
    const std::string err_file = dir.file("stderr");
    const std::string cmd = std::string(HEARTH_BINARY) + " " + args + " 2>" + err_file;
    CliRun r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    const int st = pclose(p);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream f(err_file);
    r.err.assign(std::istreambuf_iterator<char>(f), {});
    return r;
}

class BenchServe : public ::testing::Test {
protected:
    void SetUp() override {
        ServerConfig cfg = test::LoopbackServer::test_config();
        cfg.api_keys = keys_;
        loop_.start(cfg, directory_resolver(loop_.models_dir()));
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(loop_.port()); }

    std::vector<std::string> keys_;
    test::LoopbackServer loop_{{{"stories260K.gguf", "models/stories260K.gguf"}}};
};

void expect_level(const json& j, int concurrency, int requests, int prompt_len, bool exact_prompt) {
    SCOPED_TRACE(j.dump());
    EXPECT_EQ(j.at("concurrency"), concurrency);
    EXPECT_EQ(j.at("requests"), requests);
    EXPECT_EQ(j.at("completed"), requests);
    EXPECT_EQ(j.at("failed"), 0);
    for (const char* key : {"duration_s", "request_throughput", "output_tokens_per_s", "total_tokens_per_s", "mean_ttft_ms",
                            "p50_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p50_tpot_ms", "p99_tpot_ms", "mean_e2el_ms",
                            "mean_output_tokens"})
        EXPECT_GT(j.at(key).get<double>(), 0) << key;
    // Gaps between chunks can be 0 when several tokens arrive in one read; never negative,
    // never longer than a whole request.
    for (const char* key : {"mean_itl_ms", "p50_itl_ms", "p99_itl_ms"}) {
        EXPECT_GE(j.at(key).get<double>(), 0) << key;
        EXPECT_LE(j.at(key).get<double>(), j.at("p99_e2el_ms").get<double>()) << key;
    }
    EXPECT_LE(j.at("mean_ttft_ms").get<double>(), j.at("mean_e2el_ms").get<double>());
    for (const char* m : {"ttft", "tpot", "itl", "e2el"}) {
        const std::string s = m;
        EXPECT_LE(j.at("p50_" + s + "_ms").get<double>(), j.at("p90_" + s + "_ms").get<double>()) << m;
        EXPECT_LE(j.at("p90_" + s + "_ms").get<double>(), j.at("p99_" + s + "_ms").get<double>()) << m;
    }
    // A request's first token comes before its last one.
    EXPECT_LE(j.at("p50_ttft_ms").get<double>(), j.at("p99_e2el_ms").get<double>());
    EXPECT_LE(j.at("mean_output_tokens").get<double>(), 8.0);  // --gen-len 8
    if (exact_prompt) EXPECT_EQ(j.at("mean_input_tokens").get<double>(), prompt_len);
    else EXPECT_NEAR(j.at("mean_input_tokens").get<double>(), prompt_len, prompt_len * 0.25);
    EXPECT_EQ(j.at("total_input_tokens").get<double>(), j.at("mean_input_tokens").get<double>() * requests);
    EXPECT_NEAR(j.at("request_throughput").get<double>() * j.at("duration_s").get<double>(), requests, 1e-6);
}

TEST_F(BenchServe, OllamaJsonReportsEachLevel) {
    const CliRun r = hearth("bench serve --url " + url() +
                         " --model stories260K --concurrency 1,2 --requests 4 --prompt-len 16 --gen-len 8 -o json");
    ASSERT_EQ(r.code, 0) << r.err;
    const json arr = json::parse(r.out);
    ASSERT_TRUE(arr.is_array());
    ASSERT_EQ(arr.size(), 2u);
    // Prompts go as token ids: the daemon counts exactly --prompt-len tokens.
    expect_level(arr[0], 1, 4, 16, /*exact_prompt=*/true);
    expect_level(arr[1], 2, 4, 16, /*exact_prompt=*/true);
    EXPECT_EQ(arr[0].at("model"), "stories260K");
    EXPECT_EQ(arr[0].at("api"), "ollama");
}

TEST_F(BenchServe, OpenAiApiWithSharedPrefix) {
    const CliRun r = hearth("bench serve --url " + url() +
                         " --model stories260K --api openai --concurrency 2 --requests 4 --prompt-len 24 --gen-len 8"
                         " --shared-prefix 8 --seed 3 -o json");
    ASSERT_EQ(r.code, 0) << r.err;
    const json arr = json::parse(r.out);
    ASSERT_EQ(arr.size(), 1u);
    expect_level(arr[0], 2, 4, 24, /*exact_prompt=*/false);
    // End-of-text is biased away, so every request generates the full --gen-len.
    EXPECT_EQ(arr[0].at("mean_output_tokens").get<double>(), 8.0);
    EXPECT_EQ(arr[0].at("shared_prefix"), 8);
}

// --shared-prefix sends the same leading tokens in every request: the daemon's prefix cache
// (read back through /metrics) serves them from the second request on.
TEST_F(BenchServe, SharedPrefixIsReusedByTheDaemon) {
    const CliRun r = hearth("bench serve --url " + url() +
                            " --model stories260K --concurrency 1 --requests 3 --prompt-len 80 --gen-len 4 --shared-prefix 64 -o json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(json::parse(r.out).at(0).at("mean_input_tokens"), 80.0);
    auto m = loop_.client().Get("/metrics");
    ASSERT_TRUE(m);
    const std::string needle = "hearth_prompt_cached_tokens_total{model=\"stories260K\"} ";
    const size_t at = m->body.find(needle);
    ASSERT_NE(at, std::string::npos) << m->body;
    // Requests 2 and 3 reuse at least the whole 32-token blocks of the 64 shared tokens.
    EXPECT_GE(std::stod(m->body.substr(at + needle.size())), 2 * 32);
}

TEST_F(BenchServe, TablePrintsAHeaderAndOneRowPerLevel) {
    const CliRun r = hearth("bench serve --url " + url() + " -m stories260K --concurrency 1,3 --requests 3 --prompt-len 8 --gen-len 4");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("| concurrency | requests | completed | failed |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("TTFT p99 ms"), std::string::npos);
    // Rows: a header, a rule and one per level, all as wide as the header.
    std::vector<std::string> rows;
    size_t pos = 0;
    while ((pos = r.out.find("\n|", pos)) != std::string::npos) {
        const size_t end = r.out.find('\n', pos + 1);
        rows.push_back(r.out.substr(pos + 1, end - pos - 1));
        pos = end;
    }
    ASSERT_EQ(rows.size(), 4u) << r.out;
    for (const auto& row : rows) EXPECT_EQ(row.size(), rows[0].size()) << row;
    EXPECT_EQ(rows[2].rfind("|           1 |        3 |         3 |      0 |", 0), 0u) << rows[2];
    EXPECT_EQ(rows[3].rfind("|           3 |        3 |         3 |      0 |", 0), 0u) << rows[3];
}

TEST_F(BenchServe, UnknownModelFailsWithAMessage) {
    const CliRun r = hearth("bench serve --url " + url() + " --model no-such-model --requests 1 --concurrency 1 -o json");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("model \"no-such-model\" not found"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    const CliRun o = hearth("bench serve --url " + url() + " --api openai --model no-such-model --requests 1 --concurrency 1");
    EXPECT_EQ(o.code, 1);
    EXPECT_NE(o.err.find("model \"no-such-model\" not found"), std::string::npos) << o.err;
}

TEST_F(BenchServe, DaemonDownFailsWithAMessage) {
    const int port = loop_.port();
    loop_.stop();
    const CliRun r = hearth("bench serve --url http://127.0.0.1:" + std::to_string(port) + " --model stories260K --requests 1");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot reach the daemon at http://127.0.0.1:" + std::to_string(port)), std::string::npos) << r.err;
}

class BenchServeKeys : public BenchServe {
protected:
    BenchServeKeys() { keys_ = {"sesame"}; }
};

TEST_F(BenchServeKeys, UsesTheApiKey) {
    const std::string args = " --model stories260K --concurrency 1 --requests 2 --prompt-len 8 --gen-len 4 -o json";
    const CliRun denied = hearth("bench serve --url " + url() + args);
    EXPECT_EQ(denied.code, 1);
    EXPECT_NE(denied.err.find("HTTP 401"), std::string::npos) << denied.err;
    const CliRun ok = hearth("bench serve --url " + url() + args + " --api-key sesame");
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_EQ(json::parse(ok.out).at(0).at("completed"), 2);
}

TEST(BenchCli, InProcessBenchStillNeedsAModel) {
    const CliRun r = hearth("bench -p 8 -n 0 -r 1");
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
    const CliRun ok = hearth("bench -m " + test::shared_path("models/stories260K.gguf") + " -p 8 -n 4 -r 1 -t 1 -o json");
    ASSERT_EQ(ok.code, 0) << ok.err;
    EXPECT_EQ(json::parse(ok.out).size(), 2u);
}

}  // namespace
}  // namespace hearth::server
