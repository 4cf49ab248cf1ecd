// The daemon's settings: HEARTH_* environment variables parsed and checked once at start-up
// (errors name the variable), plus the value parsers they share with request parsing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {
class StageGroup;
}

namespace hearth::server {

struct ManagerOptions {
    std::chrono::nanoseconds keep_alive = std::chrono::minutes(5);  // negative: forever
    int max_loaded = 3;        // models loaded at once
    uint64_t max_memory = 0;   // bytes for weights + KV caches; 0: 80% of RAM
    size_t max_queue = 8192;   // waiting requests per model (a waiting request holds no thread)
    int n_threads = 0;         // compute threads per model; 0: physical cores
    int num_parallel = 4;      // sequences decoded together per model (HEARTH_NUM_PARALLEL)
    int kv_blocks = 0;         // KV-cache blocks per model (HEARTH_KV_BLOCKS); 0: derived
    // Testing aid: a pause after each generated token so a test can act mid-generation.
    std::chrono::microseconds debug_token_delay{0};
    // `hearth serve --pipeline` (rank 0 of an mpirun group): every model is split between the
    // group's processes (one model at a time; no prefix cache). Null: models load whole.
    std::shared_ptr<StageGroup> pipeline;
};

struct ServerConfig {
    std::string host = "127.0.0.1";
    int port = 11434;  // 0: any free port (tests)
    std::vector<std::string> api_keys;  // empty: no authentication
    bool allow_insecure = false;        // listen on a non-loopback address without a key
    std::vector<std::string> origins;   // CORS origins beside the localhost ones ("*" allowed)
    size_t max_body = 32u << 20;
    int max_json_depth = 64;
    // The HTTP layer (http::ServerOptions): per-phase timeouts and the connection cap.
    std::chrono::milliseconds header_timeout{10'000};  // HEARTH_HEADER_TIMEOUT
    std::chrono::milliseconds idle_timeout{60'000};    // HEARTH_IDLE_TIMEOUT
    std::chrono::milliseconds write_timeout{60'000};   // HEARTH_WRITE_TIMEOUT
    size_t max_connections = 4096;                     // HEARTH_MAX_CONNECTIONS
    int http_threads = 2;                              // event-loop threads
    bool log_requests = true;
    std::string version;
    ManagerOptions manager;
    // The model store (HEARTH_MODELS, default ~/.hearth/models); empty: no store (tests that
    // serve plain .gguf files). Store-backed routes then answer 500 "no model store".
    std::string models_root;
    // Legacy: a folder of .gguf files also served by file name (`serve --models-dir`).
    std::string models_dir;

    // Reads HEARTH_HOST, HEARTH_API_KEYS, HEARTH_ALLOW_INSECURE, HEARTH_ORIGINS,
    // HEARTH_MAX_BODY, HEARTH_HEADER_TIMEOUT, HEARTH_IDLE_TIMEOUT, HEARTH_WRITE_TIMEOUT,
    // HEARTH_MAX_CONNECTIONS, HEARTH_KEEP_ALIVE, HEARTH_MAX_LOADED_MODELS, HEARTH_MAX_MEMORY,
    // HEARTH_MAX_QUEUE, HEARTH_NUM_PARALLEL, HEARTH_KV_BLOCKS. models_root is left to the
    // caller (`hearth serve` sets it from HEARTH_MODELS). Throws std::invalid_argument naming the variable.
    static ServerConfig from_env();
};

struct HostPort {
    std::string host;
    int port;
};
// "host:port", ":port", "host", "http://host:port", "[::1]:port". Missing parts take the
// defaults (127.0.0.1, 11434). Throws std::invalid_argument.
HostPort parse_host(std::string_view text);

// "5m", "1h30m", "300ms", "2.5s", or a plain number of seconds ("300", "-1"). Negative
// values mean forever (returned as -1ns). nullopt when malformed.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);
// The same for a number of seconds (JSON numbers); nullopt for NaN/infinite.
std::optional<std::chrono::nanoseconds> seconds_to_duration(double seconds);

// "32MiB", "512k", "1G", "1048576" -> bytes. nullopt when malformed.
std::optional<uint64_t> parse_byte_size(std::string_view text);

// The comma-separated list, items trimmed, empty items dropped.
std::vector<std::string> split_list(std::string_view text);

// True for "localhost", "127.x.y.z", "::1" (optionally bracketed).
bool is_loopback_host(std::string_view host);

// Physical memory in bytes (0 when unknown).
uint64_t total_ram_bytes();
// The model memory budget when HEARTH_MAX_MEMORY is not set: 80% of RAM (8 GiB if unknown).
uint64_t default_memory_budget();

}  // namespace hearth::server
