#include "server/config.h"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace hearth::server {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

std::optional<double> parse_number(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    const std::string copy(s);
    char* end = nullptr;
    const double v = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

int parse_int_env(const char* name, const std::string& value, int lo, int hi) {
    int v = 0;
    const auto t = trim(value);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size() || v < lo || v > hi)
        throw std::invalid_argument(std::string(name) + "=" + value + ": expected an integer in [" + std::to_string(lo) +
                                    ", " + std::to_string(hi) + "]");
    return v;
}

}  // namespace

std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        const auto item = trim(text.substr(start, comma - start));
        if (!item.empty()) out.emplace_back(item);
        start = comma + 1;
    }
    return out;
}

bool is_loopback_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost" || host == "::1") return true;
    if (host.substr(0, 4) != "127.") return false;
    // A dotted quad inside 127.0.0.0/8.
    int parts = 0;
    size_t i = 0;
    while (i <= host.size()) {
        size_t dot = host.find('.', i);
        if (dot == std::string_view::npos) dot = host.size();
        const auto part = host.substr(i, dot - i);
        int v = -1;
        auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
        if (part.empty() || part.size() > 3 || ec != std::errc() || p != part.data() + part.size() || v > 255) return false;
        ++parts;
        i = dot + 1;
    }
    return parts == 4;
}

HostPort parse_host(std::string_view text) {
    HostPort hp{"127.0.0.1", 11434};
    std::string_view s = trim(text);
    if (s.substr(0, 7) == "http://") s.remove_prefix(7);
    else if (s.find("://") != std::string_view::npos)
        throw std::invalid_argument("HEARTH_HOST=" + std::string(text) + ": only http:// is supported");
    while (!s.empty() && s.back() == '/') s.remove_suffix(1);
    std::string_view host = s, port;
    if (!s.empty() && s.front() == '[') {  // [v6]:port
        const size_t close = s.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("HEARTH_HOST=" + std::string(text) + ": unclosed '['");
        host = s.substr(1, close - 1);
        const auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') throw std::invalid_argument("HEARTH_HOST=" + std::string(text) + ": junk after ']'");
            port = rest.substr(1);
        }
    } else if (const size_t colon = s.rfind(':'); colon != std::string_view::npos && s.find(':') == colon) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (!host.empty()) hp.host = std::string(host);
    if (!port.empty()) {
        int p = -1;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || end != port.data() + port.size() || p < 0 || p > 65535)
            throw std::invalid_argument("HEARTH_HOST=" + std::string(text) + ": bad port '" + std::string(port) + "'");
        hp.port = p;
    }
    return hp;
}

std::optional<std::chrono::nanoseconds> seconds_to_duration(double seconds) {
    if (!std::isfinite(seconds)) return std::nullopt;
    if (seconds < 0) return std::chrono::nanoseconds(-1);
    if (seconds > 1e11) return std::chrono::nanoseconds(-1);  // ~3000 years: forever
    return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
    std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    if (auto n = parse_number(s)) return seconds_to_duration(*n);
    bool negative = false;
    if (s.front() == '-' || s.front() == '+') {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    double total = 0;  // seconds
    while (!s.empty()) {
        size_t i = 0;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
        if (i == 0) return std::nullopt;
        const auto value = parse_number(s.substr(0, i));
        if (!value) return std::nullopt;
        s.remove_prefix(i);
        size_t j = 0;
        while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
        const auto unit = s.substr(0, j);
        s.remove_prefix(j);
        double scale;
        if (unit == "ns") scale = 1e-9;
        else if (unit == "us" || unit == "µs") scale = 1e-6;
        else if (unit == "ms") scale = 1e-3;
        else if (unit == "s") scale = 1;
        else if (unit == "m") scale = 60;
        else if (unit == "h") scale = 3600;
        else return std::nullopt;
        total += *value * scale;
    }
    return seconds_to_duration(negative ? -total : total);
}

std::optional<uint64_t> parse_byte_size(std::string_view text) {
    std::string_view s = trim(text);
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    const auto value = parse_number(s.substr(0, i));
    if (!value || *value < 0) return std::nullopt;
    std::string unit;
    for (char c : trim(s.substr(i))) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    double scale;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k" || unit == "kb" || unit == "kib") scale = 1024.0;
    else if (unit == "m" || unit == "mb" || unit == "mib") scale = 1024.0 * 1024;
    else if (unit == "g" || unit == "gb" || unit == "gib") scale = 1024.0 * 1024 * 1024;
    else return std::nullopt;
    const double bytes = *value * scale;
    if (bytes > 1.8e19) return std::nullopt;
    return static_cast<uint64_t>(bytes);
}

uint64_t total_ram_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 0;
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

uint64_t default_memory_budget() {
    const uint64_t ram = total_ram_bytes();
    return ram ? ram / 10 * 8 : (8ull << 30);
}

ServerConfig ServerConfig::from_env() {
    ServerConfig c;
    if (auto v = env("HEARTH_HOST")) {
        const HostPort hp = parse_host(*v);
        c.host = hp.host;
        c.port = hp.port;
    }
    if (auto v = env("HEARTH_API_KEYS")) c.api_keys = split_list(*v);
    if (auto v = env("HEARTH_ALLOW_INSECURE")) c.allow_insecure = (*v == "1" || *v == "true");
    if (auto v = env("HEARTH_ORIGINS")) c.origins = split_list(*v);
    if (auto v = env("HEARTH_MAX_BODY")) {
        auto b = parse_byte_size(*v);
        if (!b || *b == 0) throw std::invalid_argument("HEARTH_MAX_BODY=" + *v + ": expected a size such as 32MiB");
        c.max_body = static_cast<size_t>(*b);
    }
    auto timeout = [](const char* name, std::chrono::milliseconds& out) {
        if (auto v = env(name)) {
            auto d = parse_duration(*v);
            if (!d || d->count() <= 0)
                throw std::invalid_argument(std::string(name) + "=" + *v + ": expected a positive duration such as 10s or 1m");
            out = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
            if (out.count() == 0) out = std::chrono::milliseconds(1);
        }
    };
    timeout("HEARTH_HEADER_TIMEOUT", c.header_timeout);
    timeout("HEARTH_IDLE_TIMEOUT", c.idle_timeout);
    timeout("HEARTH_WRITE_TIMEOUT", c.write_timeout);
    if (auto v = env("HEARTH_MAX_CONNECTIONS"))
        c.max_connections = static_cast<size_t>(parse_int_env("HEARTH_MAX_CONNECTIONS", *v, 1, 1 << 24));
    if (auto v = env("HEARTH_KEEP_ALIVE")) {
        auto d = parse_duration(*v);
        if (!d) throw std::invalid_argument("HEARTH_KEEP_ALIVE=" + *v + ": expected a duration such as 5m, 1h or 300");
        c.manager.keep_alive = *d;
    }
    if (auto v = env("HEARTH_MAX_LOADED_MODELS")) c.manager.max_loaded = parse_int_env("HEARTH_MAX_LOADED_MODELS", *v, 1, 1024);
    if (auto v = env("HEARTH_MAX_QUEUE")) c.manager.max_queue = static_cast<size_t>(parse_int_env("HEARTH_MAX_QUEUE", *v, 1, 1 << 20));
    if (auto v = env("HEARTH_NUM_PARALLEL")) c.manager.num_parallel = parse_int_env("HEARTH_NUM_PARALLEL", *v, 1, 256);
    if (auto v = env("HEARTH_KV_BLOCKS")) c.manager.kv_blocks = parse_int_env("HEARTH_KV_BLOCKS", *v, 1, 1 << 24);
    // Compute threads per model (each rank's, with serve --pipeline); default: physical cores.
    if (auto v = env("HEARTH_NUM_THREADS")) c.manager.n_threads = parse_int_env("HEARTH_NUM_THREADS", *v, 1, 1024);
    // Testing aid (the cluster fault tests): a pause after each engine step, so a stream is
    // slow enough to be caught mid-flight. Milliseconds.
    if (auto v = env("HEARTH_DEBUG_TOKEN_DELAY"))
        c.manager.debug_token_delay = std::chrono::milliseconds(parse_int_env("HEARTH_DEBUG_TOKEN_DELAY", *v, 0, 60'000));
    if (auto v = env("HEARTH_MAX_MEMORY")) {
        auto b = parse_byte_size(*v);
        if (!b || *b == 0) throw std::invalid_argument("HEARTH_MAX_MEMORY=" + *v + ": expected a size such as 16GiB");
        c.manager.max_memory = *b;
    }
    return c;
}

}  // namespace hearth::server
