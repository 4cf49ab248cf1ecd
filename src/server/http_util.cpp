#include "server/http_util.h"

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

void send_error(std::string_view path, http::Response& res, int status, const std::string& message) {
    res.status = path.substr(0, 12) == "/v1/messages" ? anthropic::wire_status(status) : status;
    if (status == 503) res.replace_header("Retry-After", "1");
    res.set_content(error_body(path, status, message), "application/json; charset=utf-8");
}

void send_error(const http::Request& req, http::Response& res, int status, const std::string& message) {
    send_error(req.path, res, status, message);
}

void send_json(http::Response& res, const nlohmann::json& body, int status) {
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
    } catch (const nlohmann::json::out_of_range& e) {  // a number beyond double's range: 1e999
        throw ApiError(400, std::string("invalid JSON: ") + e.what());
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

namespace {

// Carries one request's events to its deferred reply. Owned by the channel's listener and the
// closures posted to the stream; the link is cut when the reply is complete or aborted.
struct EventDriver : std::enable_shared_from_this<EventDriver> {
    std::shared_ptr<RequestState> st;
    std::shared_ptr<http::Stream> stream;
    ErrorFn error;
    std::function<EventFn(const Event&)> start;
    EventFn fn;
    bool done = false;  // touched only in drain(), which the stream serializes

    void drain() {
        while (!done) {
            std::optional<Event> e = st->events.try_pop();
            if (!e) return;
            if (!fn) {
                if (e->kind == Event::Kind::Error) {
                    http::Response r;
                    error(r, e->status, e->text);
                    stream->send(std::move(r));
                    finish();
                    return;
                }
                fn = start(*e);
                start = nullptr;
            }
            if (!fn(*e, *stream)) finish();
        }
    }
    void finish() {
        done = true;
        st->events.set_listener({});  // breaks the channel -> listener -> driver cycle
    }
};

}  // namespace

void reply_from_events(http::Response& res, std::shared_ptr<RequestState> st, ErrorFn error,
                       std::function<EventFn(const Event& first)> start) {
    auto d = std::make_shared<EventDriver>();
    d->st = st;
    d->stream = res.defer();
    d->error = std::move(error);
    d->start = std::move(start);
    d->stream->on_abort([st] { st->cancelled = true; });
    st->events.set_listener([d] {
        d->stream->post([d] {
            try {
                d->drain();
            } catch (const std::exception& e) {  // a render failed: the reply ends here
                d->st->cancelled = true;
                d->finish();
                http::Response r;
                d->error(r, 500, e.what());
                d->stream->send(std::move(r));  // ignored when the head already went out
                d->stream->end();
            }
        });
    });
}

void reply_from_events(http::Response& res, std::shared_ptr<RequestState> st, std::string path,
                       std::function<EventFn(const Event& first)> start) {
    reply_from_events(
        res, std::move(st),
        [path = std::move(path)](http::Response& r, int status, const std::string& message) {
            send_error(path, r, status, message);
        },
        std::move(start));
}

EventFn stream_rendered(std::string content_type, std::function<std::string(const Event&)> render,
                        http::Response head) {
    auto started = std::make_shared<bool>(false);
    auto h = std::make_shared<http::Response>(std::move(head));
    return [started, h, content_type = std::move(content_type), render = std::move(render)](const Event& e,
                                                                                               http::Stream& s) {
        if (!*started) {
            *started = true;
            http::Response r = std::move(*h);
            r.status = 200;
            r.replace_header("Content-Type", content_type);
            s.begin(std::move(r));
        }
        const std::string text = render(e);
        if (!text.empty()) s.write(text);
        if (final_event(e)) {
            s.end();
            return false;
        }
        return s.alive();
    };
}

EventFn reply_at_done(std::function<void(const Event&)> on_token,
                      std::function<void(const Event& done, http::Response&)> finish, ErrorFn error) {
    return [on_token = std::move(on_token), finish = std::move(finish), error = std::move(error)](const Event& e,
                                                                                                   http::Stream& s) {
        http::Response r;
        try {
            switch (e.kind) {
            case Event::Kind::Token: on_token(e); return true;
            case Event::Kind::Error: error(r, e.status, e.text); break;
            case Event::Kind::Done: finish(e, r); break;
            default: return true;
            }
        } catch (const ApiError& ex) {
            r = http::Response{};
            error(r, ex.status(), ex.what());
        } catch (const std::exception& ex) {
            r = http::Response{};
            error(r, 500, ex.what());
        }
        s.send(std::move(r));
        return false;
    };
}

EventFn reply_once(std::function<void(const Event&, http::Response&)> make) {
    return [make = std::move(make)](const Event& e, http::Stream& s) {
        http::Response r;
        make(e, r);
        s.send(std::move(r));
        return false;
    };
}

}  // namespace hearth::server
