// Unit tests of the daemon's parsers and checks (no sockets).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/config.h"
#include "server/http_util.h"
#include "server/middleware.h"
#include "server/model_info.h"
#include "server/request_parse.h"

namespace hearth::server {
namespace {

using namespace std::chrono_literals;

TEST(ServerConfig, ParsesHostForms) {
    auto hp = parse_host("0.0.0.0:8080");
    EXPECT_EQ(hp.host, "0.0.0.0");
    EXPECT_EQ(hp.port, 8080);
    hp = parse_host(":9000");
    EXPECT_EQ(hp.host, "127.0.0.1");
    EXPECT_EQ(hp.port, 9000);
    hp = parse_host("example.lan");
    EXPECT_EQ(hp.host, "example.lan");
    EXPECT_EQ(hp.port, 11434);
    hp = parse_host("http://localhost:1234/");
    EXPECT_EQ(hp.host, "localhost");
    EXPECT_EQ(hp.port, 1234);
    hp = parse_host("[::1]:5000");
    EXPECT_EQ(hp.host, "::1");
    EXPECT_EQ(hp.port, 5000);
    // What the CLI client relies on: never brackets, never an empty host.
    EXPECT_EQ(parse_host("").host, "127.0.0.1");
    EXPECT_EQ(parse_host("[]:5000").host, "127.0.0.1");
    EXPECT_EQ(parse_host("http://[::]:5000").host, "::");
    EXPECT_THROW(parse_host("host:99999"), std::invalid_argument);
    EXPECT_THROW(parse_host("host:abc"), std::invalid_argument);
    EXPECT_THROW(parse_host("https://host:1"), std::invalid_argument);
}

TEST(ServerConfig, ParsesDurationsAndSizes) {
    EXPECT_EQ(parse_duration("5m"), std::chrono::nanoseconds(5min));
    EXPECT_EQ(parse_duration("1h30m"), std::chrono::nanoseconds(90min));
    EXPECT_EQ(parse_duration("300"), std::chrono::nanoseconds(300s));
    EXPECT_EQ(parse_duration("250ms"), std::chrono::nanoseconds(250ms));
    EXPECT_EQ(parse_duration("0"), std::chrono::nanoseconds(0));
    EXPECT_LT(parse_duration("-1")->count(), 0);
    EXPECT_LT(parse_duration("-5m")->count(), 0);
    EXPECT_FALSE(parse_duration("5 parsecs"));
    EXPECT_FALSE(parse_duration(""));
    EXPECT_FALSE(seconds_to_duration(std::nan("")));
    EXPECT_EQ(parse_byte_size("32MiB"), 32ull << 20);
    EXPECT_EQ(parse_byte_size("1k"), 1024u);
    EXPECT_EQ(parse_byte_size("100"), 100u);
    EXPECT_FALSE(parse_byte_size("12 parsecs"));
    EXPECT_EQ(split_list(" a, ,b ,"), (std::vector<std::string>{"a", "b"}));
}

TEST(ServerMiddleware, LoopbackHostsAndOrigins) {
    EXPECT_TRUE(is_loopback_host("127.0.0.1"));
    EXPECT_TRUE(is_loopback_host("127.1.2.3"));
    EXPECT_TRUE(is_loopback_host("localhost"));
    EXPECT_TRUE(is_loopback_host("[::1]"));
    EXPECT_FALSE(is_loopback_host("127.0.0.1.evil.com"));
    EXPECT_FALSE(is_loopback_host("0.0.0.0"));
    EXPECT_FALSE(is_loopback_host("128.0.0.1"));
    EXPECT_TRUE(loopback_host_header("localhost:11434"));
    EXPECT_TRUE(loopback_host_header("[::1]:80"));
    EXPECT_TRUE(loopback_host_header("127.0.0.1"));
    EXPECT_FALSE(loopback_host_header("attacker.example:11434"));
    EXPECT_FALSE(loopback_host_header("localhost.attacker.example"));
    EXPECT_TRUE(origin_allowed("http://localhost:3000", {}));
    EXPECT_TRUE(origin_allowed("https://127.0.0.1", {}));
    EXPECT_TRUE(origin_allowed("app://obsidian.md", {}));
    EXPECT_FALSE(origin_allowed("http://evil.example", {}));
    EXPECT_TRUE(origin_allowed("http://evil.example", {"http://evil.example"}));
    EXPECT_TRUE(origin_allowed("https://anything", {"*"}));
}

TEST(ServerMiddleware, ApiKeysCompareInConstantTime) {
    EXPECT_TRUE(constant_time_equal("secret", "secret"));
    EXPECT_FALSE(constant_time_equal("secreT", "secret"));
    EXPECT_FALSE(constant_time_equal("secret-longer", "secret"));
    EXPECT_FALSE(constant_time_equal("sec", "secret"));
    EXPECT_FALSE(constant_time_equal("", ""));  // an empty key never matches
    const std::vector<std::string> keys{"k1", "k2"};
    EXPECT_TRUE(bearer_authorized("Bearer k2", keys));
    EXPECT_FALSE(bearer_authorized("Bearer k3", keys));
    EXPECT_FALSE(bearer_authorized("k1", keys));
    EXPECT_FALSE(bearer_authorized("Bearer ", {""}));
    EXPECT_TRUE(public_route("GET", "/"));
    EXPECT_TRUE(public_route("GET", "/api/version"));
    EXPECT_FALSE(public_route("GET", "/api/tags"));
    EXPECT_FALSE(public_route("POST", "/api/version"));
}

TEST(ServerHttp, JsonDepthCapAndErrorShapes) {
    std::string deep(64, '['), deeper(65, '[');
    deep += std::string(64, ']');
    deeper += std::string(65, ']');
    EXPECT_TRUE(json_depth_ok(deep, 64));
    EXPECT_FALSE(json_depth_ok(deeper, 64));
    EXPECT_TRUE(json_depth_ok("{\"a\": \"[[[[[[\"}", 2));  // brackets inside strings do not count
    try {
        parse_json_object("{\"a\": " + deeper + "}", 64);
        FAIL();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
    }
    EXPECT_THROW(parse_json_object("[1]", 64), ApiError);
    EXPECT_THROW(parse_json_object("{", 64), ApiError);
    EXPECT_EQ(nlohmann::json::parse(error_body("/api/chat", 400, "x")), nlohmann::json({{"error", "x"}}));
    EXPECT_EQ(nlohmann::json::parse(error_body("/v1/chat/completions", 401, "x"))["error"]["type"], "authentication_error");
    const std::string t = rfc3339(std::chrono::system_clock::time_point(std::chrono::nanoseconds(1'700'000'000'123456789)));
    EXPECT_EQ(t, "2023-11-14T22:13:20.123456789Z");
    EXPECT_EQ(human_count(1'100'000'000), "1.1B");
    EXPECT_EQ(human_count(137'000'000), "137M");
    EXPECT_EQ(human_count(260'000), "260K");
}

TEST(ServerRequest, OptionsAreValidatedNamingTheField) {
    auto apply = [](const char* text) {
        GenerateJob job = default_generate_job();
        apply_options(nlohmann::json::parse(text), job, "options.");
        return job;
    };
    auto status_of = [&](const char* text) -> std::string {
        try {
            apply(text);
            return "ok";
        } catch (const ApiError& e) {
            return std::to_string(e.status()) + " " + e.what();
        }
    };
    const GenerateJob j = apply(R"({"temperature": 0, "top_k": 5, "num_predict": 7, "stop": ["a", ""], "seed": 3,
                                    "num_ctx": 128, "num_keep": 4, "mirostat": 0})");
    EXPECT_EQ(j.options.sampling.temperature, 0.0f);
    EXPECT_EQ(j.options.sampling.top_k, 5);
    EXPECT_EQ(j.options.n_predict, 7);
    EXPECT_EQ(j.options.stop, std::vector<std::string>{"a"});
    EXPECT_EQ(j.options.sampling.seed, 3u);
    EXPECT_EQ(j.num_ctx, 128);
    EXPECT_EQ(apply(R"({"num_predict": -2})").options.n_predict, -1);
    EXPECT_EQ(status_of(R"({"temperature": -1})").substr(0, 24), "400 options.temperature ");
    EXPECT_EQ(status_of(R"({"temperature": 1e300})"), "400 options.temperature is out of range");
    EXPECT_EQ(status_of(R"({"temperature": "hot"})"), "400 options.temperature must be a number");
    EXPECT_EQ(status_of(R"({"top_p": 2})").substr(0, 18), "400 options.top_p ");
    EXPECT_EQ(status_of(R"({"num_predict": -5})").substr(0, 24), "400 options.num_predict ");
    EXPECT_EQ(status_of(R"({"num_ctx": 1e12})").substr(0, 20), "400 options.num_ctx ");
    EXPECT_EQ(status_of(R"({"top_k": 1.5})").substr(0, 18), "400 options.top_k ");
    EXPECT_EQ(status_of(R"({"stop": 5})").substr(0, 17), "400 options.stop ");
    EXPECT_EQ(status_of(R"([1])").substr(0, 19), "400 options must be");
}

TEST(ServerRequest, KeepAliveForms) {
    using nlohmann::json;
    EXPECT_EQ(parse_keep_alive(json{{"keep_alive", "10m"}}), std::chrono::nanoseconds(10min));
    EXPECT_EQ(parse_keep_alive(json{{"keep_alive", 30}}), std::chrono::nanoseconds(30s));
    EXPECT_LT(parse_keep_alive(json{{"keep_alive", -1}})->count(), 0);
    EXPECT_EQ(parse_keep_alive(json{{"keep_alive", 0}}), std::chrono::nanoseconds(0));
    EXPECT_FALSE(parse_keep_alive(json::object()));
    EXPECT_THROW(parse_keep_alive(json{{"keep_alive", "soon"}}), ApiError);
    EXPECT_THROW(parse_keep_alive(json{{"keep_alive", true}}), ApiError);
}

TEST(ServerRequest, ModelNameOrLegacyName) {
    using nlohmann::json;
    auto status_of = [](const json& body) -> std::string {
        try {
            return "ok " + get_model_name(body);
        } catch (const ApiError& e) {
            return std::to_string(e.status()) + " " + e.what();
        }
    };
    EXPECT_EQ(status_of({{"model", "a"}, {"name", "b"}}), "ok a");
    EXPECT_EQ(status_of({{"name", "b"}}), "ok b");
    EXPECT_EQ(status_of({{"model", ""}, {"name", "b"}}), "ok b");
    EXPECT_EQ(status_of({{"model", nullptr}, {"name", "b"}}), "ok b");
    EXPECT_EQ(status_of(json::object()), "ok ");
    EXPECT_EQ(status_of({{"model", 5}, {"name", "b"}}), "400 model must be a string");
    EXPECT_EQ(status_of({{"model", ""}, {"name", true}}), "400 name must be a string");
    ModelResolver none;
    try {
        resolve_model(none, json::object());
        ADD_FAILURE();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        EXPECT_STREQ(e.what(), "model is required");
    }
}

}  // namespace
}  // namespace hearth::server
