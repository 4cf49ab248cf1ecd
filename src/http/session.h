// Internal to http/: one connection (Session) and one request/reply on it (Exchange, the
// Stream a handler holds). A session lives on its own strand: every read, write and state
// change of the connection happens there; other threads reach it only by posting.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/handler_pool.h"
#include "http/server.h"

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class Session;

struct Route {
    std::string method;
    std::regex pattern;
    Handler handler;
    StreamingHandler streaming;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    explicit Impl(ServerOptions o) : opts(std::move(o)), pool(opts.max_handler_threads) {}

    ServerOptions opts;
    ServerStats stats;
    std::vector<Route> routes;
    std::function<bool(const Request&, Response&)> pre_routing;
    std::function<void(const Request&, Response&)> error_handler;
    std::function<void(const Request&, Response&, std::exception_ptr)> exception_handler;
    std::function<void(const Request&, const Response&)> logger;

    std::mutex sessions_mu;
    std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
    uint64_t next_session = 0;

    HandlerPool pool;
    asio::io_context ioc;  // after stats: sessions touch stats while ioc tears down
    std::optional<tcp::acceptor> acceptor;
    std::optional<asio::steady_timer> accept_retry;
    std::atomic<bool> running{false};
    std::atomic<bool> stopped{false};

    const Route* find_route(const std::string& method, Request& req) const;
    void do_accept();
    void reject(tcp::socket sock);  // over max_connections: 503 then close
    void fill_error(const Request& req, Response& res, int status) const;
};

// A streamed request body on its way from the loop to a handler thread.
class BodyPipe : public BodyReader {
public:
    static constexpr size_t kHighWater = 1u << 20;  // the loop stops reading past this much queued

    bool read(const std::function<bool(const char*, size_t)>& sink) override;
    std::optional<uint64_t> content_length() const override { return length; }

    // Loop side. push() returns false when the handler is no longer reading.
    bool push(std::string piece);
    void finish();
    void fail(std::string why);
    bool full();  // true: the loop pauses until the reader calls on_drained
    bool abandoned() const;
    std::function<void()> on_drained;  // called by the reader (any thread) when the pipe emptied below half

    std::optional<uint64_t> length;

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> q_;
    size_t bytes_ = 0;
    bool done_ = false, abandoned_ = false, paused_ = false;
    std::string error_;
};

// One request and its reply: the Stream the handler (or whoever it hands the Stream to) uses.
class Exchange : public Stream, public std::enable_shared_from_this<Exchange> {
public:
    Exchange(std::shared_ptr<Session> s, std::shared_ptr<Request> r, bool head_only);

    void send(Response res) override;
    void begin(Response head, std::optional<uint64_t> content_length) override;
    bool write(std::string data) override;
    void end() override;
    bool alive() const override { return alive_.load(); }
    void on_abort(std::function<void()> fn) override;
    void post(std::function<void()> fn) override;
    bool wait_below(size_t bytes) override;

    void set_base_headers(const Headers& h) override { base = h; }

    // Loop side.
    void abort();                // fires the abort callbacks once
    void completed();            // the reply is out: the abort callbacks are dropped (never run)
    void written(size_t bytes);  // payload bytes left the queue

    std::shared_ptr<Request> request;
    Headers base;  // set before the handler ran (CORS...): merged into deferred replies
    const bool head_only;
    int status = 0;  // for the log
    std::atomic<bool> replied{false};  // send() or begin() was called

private:
    bool on_strand() const;  // called from the session's strand (an EventFn, a posted drain)

    std::shared_ptr<Server::Impl> server_;  // its loop outlives every Stream a handler kept
    std::weak_ptr<Session> session_;
    asio::any_io_executor strand_;
    std::atomic<bool> alive_{true};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    size_t queued_ = 0;
    bool aborted_ = false;
    bool completed_ = false;
    std::vector<std::function<void()>> abort_fns_;
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Server::Impl& srv, tcp::socket sock, uint64_t id);
    ~Session();

    void start();
    void abort();  // posts the close to the strand
    const asio::any_io_executor& executor() { return strand_; }
    Server::Impl& server() { return srv_; }

    // Called on the strand by the Exchange.
    void reply_full(const std::shared_ptr<Exchange>& ex, Response res);
    void reply_head(const std::shared_ptr<Exchange>& ex, Response head, std::optional<uint64_t> length);
    void reply_data(const std::shared_ptr<Exchange>& ex, std::string data);
    void reply_end(const std::shared_ptr<Exchange>& ex);

private:
    void read_request();
    void read_header();
    void on_header(error_code ec);
    void read_body();
    void on_body(error_code ec);
    void pump_upload();
    void on_upload(error_code ec, size_t room);
    void dispatch(const Route* route, std::shared_ptr<BodyPipe> pipe);
    bool body_too_slow() const;
    // A reply the server makes itself (status + error body), then the connection closes.
    void fail(int status, bool close = true);
    void enqueue(std::string bytes, size_t payload);
    void do_write();
    void on_write(error_code ec);
    void exchange_complete();
    void linger();
    void close();

    Server::Impl& srv_;
    beast::tcp_stream stream_;
    asio::any_io_executor strand_;
    uint64_t id_;
    beast::flat_buffer buf_;
    std::optional<bhttp::request_parser<bhttp::empty_body>> header_parser_;
    std::optional<bhttp::request_parser<bhttp::string_body>> body_parser_;
    std::optional<bhttp::request_parser<bhttp::buffer_body>> upload_parser_;
    std::shared_ptr<BodyPipe> upload_;
    std::vector<char> upload_buf_;
    bool upload_paused_ = false;
    std::shared_ptr<Request> req_;  // the request being read
    const Route* route_ = nullptr;
    Response pre_;                  // headers the pre-routing handler set
    std::chrono::steady_clock::time_point body_start_;
    size_t body_bytes_ = 0;
    bool first_ = true;
    bool keep_alive_ = true;
    bool closed_ = false;

    std::shared_ptr<Exchange> ex_;  // the exchange being answered
    // While a handler owes a reply no operation of ours is pending: this keeps the session
    // alive until the reply is out or the connection closes.
    std::shared_ptr<Session> awaiting_reply_;
    bool chunked_ = false;
    std::optional<uint64_t> remaining_;  // Content-Length mode: bytes still owed
    bool end_queued_ = false;
    std::deque<std::pair<std::string, size_t>> out_;  // framed bytes, payload bytes
    std::vector<std::pair<std::string, size_t>> in_flight_;
    bool writing_ = false;
};

std::string percent_decode(std::string_view s, bool plus_is_space);
void parse_query(std::string_view query, Params& out);
std::string format_head(int status, const Headers& headers);

}  // namespace hearth::http
