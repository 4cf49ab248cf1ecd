#include "server/http_util.h"

#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <random>

#include "server/anthropic/anthropic.h"

namespace hearth::server {

std::string error_body(std::string_view path, int status, const std::string& message) {
    if (path.substr(0, 12) == "/v1/messages") return anthropic::error_json(status, message);
    nlohmann::json body;
    if (path.substr(0, 4) == "/v1/") {
        const char* type = status == 401   ? "authentication_error"
                           : status == 404 ? "not_found_error"
                           : status >= 500 ? "api_error"
                                           : "invalid_request_error";
        body["error"] = {{"message", message}, {"type", type}};
    } else {
        body["error"] = message;
    }
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void send_error(const httplib::Request& req, httplib::Response& res, int status, const std::string& message) {
    res.status = req.path.substr(0, 12) == "/v1/messages" ? anthropic::wire_status(status) : status;
    if (status == 503) res.set_header("Retry-After", "1");
    res.set_content(error_body(req.path, status, message), "application/json; charset=utf-8");
}

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json; charset=utf-8");
}

bool json_depth_ok(std::string_view body, int max_depth) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : body) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth) return false;
        } else if (c == ']' || c == '}') --depth;
    }
    return true;
}

nlohmann::json parse_json_object(std::string_view body, int max_depth) {
    if (!json_depth_ok(body, max_depth))
        throw ApiError(400, "invalid JSON: nested deeper than " + std::to_string(max_depth) + " levels");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(body.begin(), body.end());
    } catch (const nlohmann::json::parse_error& e) {
        throw ApiError(400, body.empty() ? std::string("missing request body") : std::string("invalid JSON: ") + e.what());
    }
    if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
    return j;
}

std::string random_id(std::string_view prefix) {
    static std::atomic<uint64_t> counter{0};
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr std::string_view digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string id(prefix);
    uint64_t a = rng(), b = rng() ^ counter++;
    for (int i = 0; i < 24; ++i) {
        uint64_t& x = i < 12 ? a : b;
        id += digits[x % digits.size()];
        x /= digits.size();
    }
    return id;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
    long frac = static_cast<long>(ns % 1'000'000'000);
    if (frac < 0) {
        frac += 1'000'000'000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

bool constant_time_equal(std::string_view given, std::string_view expected) {
    // Every byte of `expected` is visited whatever `given` holds; lengths are folded in.
    volatile unsigned char diff = static_cast<unsigned char>(given.size() != expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff = static_cast<unsigned char>(diff | (g ^ static_cast<unsigned char>(expected[i])));
    }
    return diff == 0 && !expected.empty();
}

std::optional<Event> await_first(RequestState& st, const httplib::Request& req, httplib::Response& res) {
    Event e = st.events.pop();
    if (e.kind == Event::Kind::Error) {
        send_error(req, res, e.status, e.text);
        return std::nullopt;
    }
    return e;
}

void stream_events(httplib::Response& res, std::shared_ptr<RequestState> st, Event first, const char* content_type,
                   std::function<std::string(const Event&)> render) {
    auto pending = std::make_shared<std::optional<Event>>(std::move(first));
    res.status = 200;
    res.set_chunked_content_provider(
        content_type,
        [st, pending, render = std::move(render)](size_t, httplib::DataSink& sink) {
            std::optional<Event> ev;
            if (*pending) {
                ev = std::move(*pending);
                pending->reset();
            } else {
                ev = st->events.pop_for(std::chrono::milliseconds(100));
            }
            if (!ev) {
                if (!sink.is_writable()) {
                    st->cancelled = true;
                    return false;
                }
                return true;
            }
            const std::string text = render(*ev);
            if (!text.empty() && !sink.write(text.data(), text.size())) {
                st->cancelled = true;
                return false;
            }
            const auto k = ev->kind;
            if (k == Event::Kind::Done || k == Event::Kind::Error || k == Event::Kind::Embeddings) sink.done();
            return true;
        },
        [st](bool success) {
            if (!success) st->cancelled = true;
        });
}

void stream_ndjson(httplib::Response& res, std::shared_ptr<RequestState> st, Event first,
                   std::function<std::string(const Event&)> line) {
    stream_events(res, std::move(st), std::move(first), "application/x-ndjson", std::move(line));
}

}  // namespace hearth::server
