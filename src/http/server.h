// The event-loop HTTP/1.1 server: a few loop threads multiplex every connection (epoll, via
// Boost.Asio), so idle and slow sockets cost memory, not threads. Headers and bodies are read
// on the loop under per-phase timeouts; handlers run on a pool of handler threads that grows
// while they block (model loads, registry I/O) and shrinks when idle; a deferred reply
// (Response::defer) holds no thread while it waits for tokens.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "http/message.h"

namespace boost::asio {
class io_context;
}

namespace hearth::http {

struct ServerOptions {
    int loop_threads = 2;
    size_t max_body = 32u << 20;          // buffered bodies (JSON routes), sized or chunked: 413 beyond
    size_t max_header_bytes = 64u << 10;  // request line + headers: 431 beyond
    std::chrono::milliseconds header_timeout{10'000};  // a request's headers, from its first byte (and a new connection's first request)
    std::chrono::milliseconds idle_timeout{60'000};    // a keep-alive connection between requests
    std::chrono::milliseconds write_timeout{60'000};   // a write the client does not take
    size_t min_body_rate = 1024;          // bytes/s a body must average once header_timeout has passed
    size_t max_connections = 4096;        // beyond: answered 503 with Retry-After, then closed
    size_t max_handler_threads = 256;     // handler threads at most (requests queue beyond)
    bool tcp_nodelay = true;
};

// Counters for /metrics.
struct ServerStats {
    std::atomic<uint64_t> connections_open{0};
    std::atomic<uint64_t> connections_total{0};
    std::atomic<uint64_t> connections_rejected{0};  // over max_connections
    std::atomic<uint64_t> timeouts{0};              // header, body, idle or write timeouts
    std::atomic<uint64_t> handler_threads{0};
};

class Server {
public:
    explicit Server(ServerOptions opts = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Routes: `pattern` is a regular expression matched against the whole decoded path; its
    // captures are Request::matches. GET routes also answer HEAD (without the body).
    void Get(const std::string& pattern, Handler h);
    void Post(const std::string& pattern, Handler h);
    void Post(const std::string& pattern, StreamingHandler h);  // the body is streamed to the handler
    void Put(const std::string& pattern, Handler h);
    void Patch(const std::string& pattern, Handler h);
    void Delete(const std::string& pattern, Handler h);
    void Options(const std::string& pattern, Handler h);

    // Runs on the loop, after the headers and before the body: true when it answered (the
    // body is then discarded). Must not block.
    void set_pre_routing_handler(std::function<bool(const Request&, Response&)> fn);
    // Fills in the body of a reply the server makes itself (400, 404, 408, 413, 431, 503...).
    void set_error_handler(std::function<void(const Request&, Response&)> fn);
    // A handler threw: fill in the reply (default: 500 with the message as text).
    void set_exception_handler(std::function<void(const Request&, Response&, std::exception_ptr)> fn);
    // Called once an exchange is complete (for deferred replies: when the Stream ends).
    void set_logger(std::function<void(const Request&, const Response&)> fn);

    // Binds host:port (port 0: any free port) and returns the port. Throws std::runtime_error.
    int bind(const std::string& host, int port);
    // Serves on the calling thread and the loop threads until stop().
    void run();
    // Stops accepting, aborts open exchanges (their Streams report !alive()), and makes run()
    // return. Safe from any thread, including a signal-handling one.
    void stop();
    bool running() const;

    const ServerOptions& options() const;
    const ServerStats& stats() const;
    // The loop the connections run on: a proxy (the router) runs its upstream connections
    // here too, so relaying a token to a client is a post within one loop, not a hop between
    // two sets of threads. Valid while the Server lives.
    boost::asio::io_context& io_context();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace hearth::http
