// A blocking HTTP/1.1 client on Boost.Beast for the CLI, `hearth bench serve` and the tests:
// each call runs its own small event loop with connect, write and read timeouts, so a dead
// daemon is an error, never a hang. Plain http:// only (the daemon serves no TLS).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/message.h"

namespace hearth::http {

enum class Error { Success, Connection, Write, Read, Timeout, Canceled, BadResponse };
std::string to_string(Error e);

struct ClientResponse {
    int status = 0;
    Headers headers;
    std::string body;  // empty when a receiver took the body
    bool has_header(std::string_view key) const { return headers.find(key) != headers.end(); }
    std::string get_header_value(std::string_view key, std::string_view def = "") const {
        return header_value(headers, key, def);
    }
};

// A response or the transport error that prevented one.
class Result {
public:
    Result() = default;
    explicit Result(Error e, std::string detail = "") : error_(e), detail_(std::move(detail)) {}
    explicit Result(ClientResponse r) : res_(std::move(r)) {}
    explicit operator bool() const { return res_.has_value(); }
    const ClientResponse* operator->() const { return &*res_; }
    ClientResponse* operator->() { return &*res_; }
    const ClientResponse& operator*() const { return *res_; }
    ClientResponse& value() { return *res_; }
    Error error() const { return res_ ? Error::Success : error_; }
    // The error and what the system said ("Connection: connection refused").
    std::string error_message() const;

private:
    std::optional<ClientResponse> res_;
    Error error_ = Error::Connection;
    std::string detail_;
};

// Receives body bytes as they arrive; false stops the transfer (Error::Canceled).
using Receiver = std::function<bool(const char* data, size_t size)>;
// Supplies an upload body: appends the next piece to `out`; returns false at the end.
using Provider = std::function<bool(std::string& out)>;

class Client {
public:
    Client(std::string host, int port);
    // "http://host:port" (a trailing path is ignored).
    explicit Client(const std::string& origin);
    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;

    void set_connection_timeout(std::chrono::milliseconds t) { connect_timeout_ = t; }
    void set_read_timeout(std::chrono::milliseconds t) { read_timeout_ = t; }  // between bytes received
    void set_write_timeout(std::chrono::milliseconds t) { write_timeout_ = t; }
    // (seconds, microseconds), as many HTTP clients take them.
    void set_connection_timeout(long sec, long usec = 0) { connect_timeout_ = to_ms(sec, usec); }
    void set_read_timeout(long sec, long usec = 0) { read_timeout_ = to_ms(sec, usec); }
    void set_write_timeout(long sec, long usec = 0) { write_timeout_ = to_ms(sec, usec); }
    // Sent with every request (a request's own headers win).
    void set_default_headers(Headers h) { default_headers_ = std::move(h); }
    // Keeps the connection open between requests (default: one connection per request).
    void set_keep_alive(bool on) { keep_alive_ = on; }

    Result Get(const std::string& path, const Headers& headers = {});
    Result Get(const std::string& path, const Headers& headers, const Receiver& receiver);
    Result Head(const std::string& path, const Headers& headers = {});
    Result Delete(const std::string& path, const std::string& body = "", const std::string& content_type = "");
    Result Post(const std::string& path, const std::string& body, const std::string& content_type);
    Result Post(const std::string& path, const Headers& headers, const std::string& body, const std::string& content_type);
    Result Post(const std::string& path, const Headers& headers, const std::string& body,
                const std::string& content_type, const Receiver& receiver);
    // A body from `provider`, chunked, or of `content_length` bytes when given.
    Result Post(const std::string& path, const Headers& headers, const Provider& provider,
                const std::string& content_type, std::optional<uint64_t> content_length = std::nullopt);
    Result Put(const std::string& path, const std::string& body, const std::string& content_type);
    Result Patch(const std::string& path, const std::string& body, const std::string& content_type);

    // The general form.
    struct Call {
        std::string method = "GET";
        std::string path = "/";
        Headers headers;
        std::string body;
        std::string content_type;
        const Provider* provider = nullptr;
        std::optional<uint64_t> content_length;  // with provider
        const Receiver* receiver = nullptr;
    };
    Result send(const Call& call);

    // Ends the call in flight from another thread (it returns Error::Canceled).
    void stop();

    const std::string& host() const { return host_; }
    int port() const { return port_; }

    struct Conn;

private:
    static std::chrono::milliseconds to_ms(long sec, long usec) {
        return std::chrono::milliseconds(sec * 1000 + usec / 1000);
    }
    std::string host_;
    int port_ = 80;
    std::chrono::milliseconds connect_timeout_{5'000};
    std::chrono::milliseconds read_timeout_{300'000};
    std::chrono::milliseconds write_timeout_{30'000};
    Headers default_headers_;
    bool keep_alive_ = false;
    std::unique_ptr<Conn> conn_;
};

}  // namespace hearth::http
