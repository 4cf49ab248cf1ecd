// http/ owns Hearth's HTTP/1.1 layer, on Boost.Beast over Boost.Asio: the event-loop server
// the daemon (and the router) serve on, and the client the CLI, the benchmarks and the tests
// talk through. This file: the request and response a route handler sees.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <stdexcept>
#include <string_view>

namespace hearth::http {

// Header names compare without case (RFC 9110 5.1).
struct CaseInsensitiveLess {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const;
};
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;
using Params = std::multimap<std::string, std::string, std::less<>>;

// The first value of `key`, or `def`.
std::string header_value(const Headers& h, std::string_view key, std::string_view def = "");

struct Request {
    std::string method;       // "GET", "POST", ...
    std::string target;       // as sent: path and query
    std::string path;         // the target's path, percent-decoded
    Params params;            // the query's parameters, decoded
    Headers headers;
    std::string body;         // the whole body (empty for routes that stream theirs)
    std::smatch matches;      // the route pattern's captures over `path`
    std::string remote_addr;  // the peer's address
    int remote_port = 0;
    std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();  // headers read

    Request() = default;
    Request(const Request&) = delete;  // `matches` points into `path`
    Request& operator=(const Request&) = delete;

    bool has_header(std::string_view key) const { return headers.find(key) != headers.end(); }
    std::string get_header_value(std::string_view key, std::string_view def = "") const {
        return header_value(headers, key, def);
    }
    bool has_param(std::string_view key) const { return params.find(key) != params.end(); }
    std::string get_param_value(std::string_view key) const;
};

class Stream;

struct Response {
    int status = 200;
    Headers headers;
    std::string body;

    // Adds a header (a name may repeat, as Vary and Set-Cookie do).
    void set_header(std::string key, std::string value) { headers.emplace(std::move(key), std::move(value)); }
    // Replaces every header of that name.
    void replace_header(const std::string& key, std::string value);
    bool has_header(std::string_view key) const { return headers.find(key) != headers.end(); }
    std::string get_header_value(std::string_view key, std::string_view def = "") const {
        return header_value(headers, key, def);
    }
    // The body and its Content-Type.
    void set_content(std::string content, std::string_view content_type);

    // Turns this reply into one produced later, by any thread, without holding one: the handler
    // may return at once and the connection waits (asynchronously) for the Stream to be given a
    // reply. Headers set on this Response before defer() (the middleware's among them) are sent
    // with whatever the Stream sends, unless that reply sets the same name. Calling it again
    // returns the same Stream.
    std::shared_ptr<Stream> defer();
    bool is_deferred() const { return deferred_; }
    // The server gives each exchange its Stream before the handler runs.
    void attach(std::shared_ptr<Stream> s) { stream_ = std::move(s); }

private:
    std::shared_ptr<Stream> stream_;
    bool deferred_ = false;
};

// A reply produced after the handler returned, from any thread. Exactly one of send() or
// begin() (then write()* and end()) is used. Every member is safe to call from any thread.
class Stream {
public:
    virtual ~Stream() = default;

    // The whole reply at once (status, headers, body).
    virtual void send(Response res) = 0;
    // The status and headers of a streamed body: chunked, or exactly `content_length` bytes.
    virtual void begin(Response head, std::optional<uint64_t> content_length = std::nullopt) = 0;
    // Queues body bytes; false once the client is gone or stopped reading (the bytes are dropped).
    virtual bool write(std::string data) = 0;
    // The body is complete.
    virtual void end() = 0;

    // False once the client went away, a write failed or stalled past the write timeout, or
    // the server stopped.
    virtual bool alive() const = 0;
    // `fn` runs once if the exchange is aborted (client gone, write stalled, server stopping)
    // before end(); at once when already aborted. It runs on a loop thread: keep it short.
    virtual void on_abort(std::function<void()> fn) = 0;
    // Runs `fn` on a loop thread, serialized with every other post() of this stream: for
    // consumers that drain a queue when told that it has items (never blocking work).
    virtual void post(std::function<void()> fn) = 0;
    // For producer threads that can outrun the client (file downloads): blocks until fewer than
    // `bytes` are queued. False when the client is gone.
    virtual bool wait_below(size_t bytes) = 0;

protected:
    friend struct Response;
    // The headers the Response carried when it was deferred.
    virtual void set_base_headers(const Headers& h) = 0;
};

// A streamed request body, read by a handler thread as it arrives (blob uploads). The loop
// reads ahead a bounded amount, so a slow handler slows the client rather than filling memory.
class BodyReader {
public:
    virtual ~BodyReader() = default;
    // Calls `sink` with each piece until the body ends (true) or `sink` returns false (false).
    // Throws BodyError when the client goes away or sends too slowly.
    virtual bool read(const std::function<bool(const char* data, size_t size)>& sink) = 0;
    // The declared Content-Length, if any.
    virtual std::optional<uint64_t> content_length() const = 0;
};

struct BodyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using Handler = std::function<void(const Request&, Response&)>;
using StreamingHandler = std::function<void(const Request&, Response&, BodyReader&)>;

}  // namespace hearth::http
