// The proxy's per-request state machine (Call) on the router's event loop.
#include "cluster/router_proxy.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "server/http_util.h"

namespace hearth::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string stream_error_event(const std::string& path, const std::string& content_type, const std::string& message) {
    const std::string body = server::error_body(path, 502, message);
    if (content_type.find("text/event-stream") == std::string::npos) return body + "\n";  // NDJSON
    if (path.rfind("/v1/messages", 0) == 0) return "event: error\ndata: " + body + "\n\n";
    return "data: " + body + "\n\ndata: [DONE]\n\n";
}

struct Proxy::Impl {
    const RouterOptions& opts;
    WorkerSet& workers;
    Balancer& balancer;
    RouterCounters& counters;
    std::unique_ptr<asio::io_context> own;  // when no loop was given
    asio::io_context& ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    std::vector<std::thread> threads;

    Impl(const RouterOptions& o, WorkerSet& w, Balancer& b, RouterCounters& c, asio::io_context* loop)
        : opts(o), workers(w), balancer(b), counters(c), own(loop ? nullptr : std::make_unique<asio::io_context>(1)),
          ioc(loop ? *loop : *own) {}
};

namespace {

// `lower` (lowercase) equals `name` without case.
bool iequal(std::string_view name, std::string_view lower) {
    return name.size() == lower.size() && std::equal(lower.begin(), lower.end(), name.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
           });
}

// Hop-by-hop and framing headers: never forwarded in either direction.
bool hop_by_hop(std::string_view name) {
    static constexpr std::string_view kNames[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                                  "transfer-encoding", "upgrade", "host", "content-length", "expect"};
    for (std::string_view n : kNames)
        if (iequal(name, n)) return true;
    return false;
}

class Call : public std::enable_shared_from_this<Call> {
public:
    Call(std::shared_ptr<Proxy::Impl> px, std::shared_ptr<ProxyRequest> req)
        : px_(std::move(px)), req_(std::move(req)), strand_(asio::make_strand(px_->ioc)), resolver_(strand_), health_(strand_),
          backoff_(strand_) {}

    void start() {
        px_->counters.requests++;
        // Weak: the exchange keeps its abort callbacks until the reply is out.
        req_->client->on_abort([w = weak_from_this()] {
            if (auto self = w.lock()) asio::post(self->strand_, [self] { self->client_gone(); });
        });
        asio::post(strand_, [self = shared_from_this()] { self->attempt(); });
    }

private:
    using Clock = std::chrono::steady_clock;

    void attempt() {
        if (gone_) return;
        const Choice c = px_->balancer.choose(req_->route, req_->chain, px_->workers.snapshot(), tried_);
        if (!c.worker) return give_up();
        worker_ = c.worker;
        tried_.push_back(worker_->id());
        if (tried_.size() == 1) {
            px_->counters.decided(c.reason);
        } else {
            px_->counters.decided("retry");
            worker_->retries++;
        }
        worker_->requests++;
        worker_->inflight++;
        in_attempt_ = true;
        health_abort_ = false;
        body_.clear();
        // Before the first relayed byte: streams get the first-byte timeout, longer by the
        // worker's queue and the prompt's size; whole replies the request timeout.
        auto budget = px_->opts.request_timeout;
        if (req_->streaming) {
            budget = px_->opts.first_byte_timeout + std::chrono::milliseconds(1000 * worker_->waiting.load()) +
                     std::chrono::milliseconds(req_->body.size() / 2);
            // A worker that has the model only in its store loads it first.
            if (!req_->route.model_key.empty() && !worker_->loaded(req_->route.model_key)) budget += px_->opts.load_allowance;
        }
        deadline_ = Clock::now() + budget;
        stream_.emplace(strand_);
        parser_.emplace();
        parser_->body_limit(boost::none);
        parser_->header_limit(1u << 20);
        if (req_->method == "HEAD") parser_->skip(true);  // a Content-Length and no body
        buf_.clear();
        watch_health();

        error_code ec;
        const auto addr = asio::ip::make_address(worker_->host(), ec);
        if (!ec) return connect({tcp::endpoint(addr, static_cast<unsigned short>(worker_->port()))});
        resolver_.async_resolve(worker_->host(), std::to_string(worker_->port()),
                                [self = shared_from_this()](error_code e, tcp::resolver::results_type r) {
                                    if (self->stale(e)) return;
                                    if (e) return self->retry("cannot resolve " + self->worker_->host() + ": " + e.message(), true);
                                    std::vector<tcp::endpoint> eps;
                                    for (const auto& x : r) eps.push_back(x.endpoint());
                                    self->connect(std::move(eps));
                                });
    }

    void connect(std::vector<tcp::endpoint> eps) {
        stream_->expires_after(px_->opts.connect_timeout);
        stream_->async_connect(eps, [self = shared_from_this()](error_code e, const tcp::endpoint&) {
            if (self->stale(e)) return;
            if (e) return self->retry("cannot connect to worker " + self->worker_->id() + ": " + e.message(), true);
            self->send_request();
        });
    }

    void send_request() {
        error_code nodelay_ec;
        stream_->socket().set_option(tcp::no_delay(true), nodelay_ec);
        auto r = std::make_shared<bhttp::request<bhttp::string_body>>();
        r->method_string(req_->method);
        r->target(req_->target);
        r->version(11);
        for (const auto& [k, v] : req_->headers)
            if (!hop_by_hop(k) && !(iequal(k, "authorization") && !px_->opts.worker_key.empty())) r->insert(k, v);
        if (!px_->opts.worker_key.empty()) r->set(bhttp::field::authorization, "Bearer " + px_->opts.worker_key);
        const std::string& h = worker_->host();
        r->set(bhttp::field::host, (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(worker_->port()));
        const std::string xff = http::header_value(req_->headers, "X-Forwarded-For");
        r->set("X-Forwarded-For", xff.empty() ? req_->remote_addr : xff + ", " + req_->remote_addr);
        r->keep_alive(false);
        r->body() = req_->body;
        r->prepare_payload();
        stream_->expires_at(deadline_);
        bhttp::async_write(*stream_, *r, [self = shared_from_this(), r](error_code e, size_t) {
            if (self->stale(e)) return;
            if (e) return self->retry("cannot send to worker " + self->worker_->id() + ": " + e.message(), true);
            self->read_head();
        });
    }

    void read_head() {
        stream_->expires_at(deadline_);
        bhttp::async_read_header(*stream_, buf_, *parser_, [self = shared_from_this()](error_code e, size_t) {
            if (self->stale(e)) return;
            if (e) return self->retry(self->why(e, "before answering"), true);
            self->on_head();
        });
    }

    void on_head() {
        const int status = static_cast<int>(parser_->get().result_int());
        if ((status == 502 || status == 503) && can_retry()) {
            // Busy or failing behind: another worker may answer (no breaker count for 503).
            if (status == 502) worker_->on_failure();
            return retry("worker " + worker_->id() + " answered " + std::to_string(status), false);
        }
        // This worker serves it: its cache now (likely) holds the request's text.
        if (status < 400) px_->balancer.routed(req_->route, req_->chain, worker_->id());
        head_ = http::Response{};
        head_.status = status;
        for (const auto& f : parser_->get())
            if (!hop_by_hop(f.name_string())) head_.headers.emplace(std::string(f.name_string()), std::string(f.value()));
        head_.replace_header("X-Hearth-Node", worker_->id());
        chunked_ = parser_->chunked();
        read_body();
    }

    void read_body() {
        if (parser_->is_done()) return done();
        parser_->get().body().data = chunk_;
        parser_->get().body().size = sizeof chunk_;
        // Once bytes flow, the watch timer checks for silence (a timer re-armed per token
        // would cost a system call per token).
        if (!relayed_) stream_->expires_at(deadline_);
        bhttp::async_read_some(*stream_, buf_, *parser_, [self = shared_from_this()](error_code e, size_t) {
            if (self->stale(e)) return;
            if (e == bhttp::error::need_buffer) e = {};
            const size_t got = sizeof self->chunk_ - self->parser_->get().body().size;
            if (got > 0) {
                self->last_activity_ = Clock::now();
                self->on_bytes(std::string_view(self->chunk_, got));
            }
            if (self->gone_) return self->end_attempt();
            if (e) return self->body_error(e);
            self->read_body();
        });
    }

    void on_bytes(std::string_view bytes) {
        if (!chunked_) {  // a whole reply: sent when complete
            body_.append(bytes);
            return;
        }
        if (!relayed_) {
            relayed_ = true;
            stream_->expires_never();
            req_->client->begin(head_);
        }
        last_byte_ = bytes.back();
        if (!req_->client->write(std::string(bytes))) client_gone();
    }

    void body_error(error_code e) {
        if (!relayed_) return retry(why(e, "mid-reply"), true);
        // Tokens were relayed: no retry. The client gets the API's error event.
        const bool stalled = stalled_ || e == beast::error::timeout;
        if (stalled) worker_->trip();
        else worker_->on_failure();
        px_->counters.stream_errors++;
        const std::string msg = stalled ? "worker " + worker_->id() + " stopped sending for " +
                                              std::to_string(px_->opts.inter_token_timeout.count()) + " ms: the stream was ended"
                                        : "worker " + worker_->id() + " went away mid-stream (" + e.message() + ")";
        std::fprintf(stderr, "hearth: router: %s %s: %s\n", req_->method.c_str(), req_->path.c_str(), msg.c_str());
        close();
        end_attempt();
        end_with_error(msg);
    }

    // After relayed bytes: the API's error event (on a line of its own), then the end.
    void end_with_error(const std::string& msg) {
        finished_ = true;
        const std::string type = head_.get_header_value("Content-Type");
        std::string ev = stream_error_event(req_->path, type, msg);
        if (last_byte_ != '\n') ev.insert(0, type.find("text/event-stream") != std::string::npos ? "\n\n" : "\n");
        req_->client->write(std::move(ev));
        req_->client->end();
    }

    void done() {
        worker_->on_success();
        close();
        end_attempt();  // before the reply: a client's next request must see the load gone
        finished_ = true;
        if (!chunked_) {
            http::Response res = std::move(head_);
            res.body = std::move(body_);
            req_->client->send(std::move(res));
        } else {
            if (!relayed_) req_->client->begin(head_);  // an empty chunked body
            req_->client->end();
        }
    }

    // A failed attempt before anything reached the client: another worker, or the error.
    void retry(const std::string& why, bool worker_fault) {
        last_error_ = why;
        if (worker_fault && !gone_) worker_->on_failure();
        close();
        end_attempt();
        if (gone_) return;
        if (!can_retry()) return give_up();
        static thread_local std::mt19937 rng{std::random_device{}()};
        const double base = 25.0 * double(1 << (tried_.size() - 1));
        const auto wait = std::chrono::milliseconds(int(base * std::uniform_real_distribution<double>(0.5, 1.5)(rng)));
        backoff_.expires_after(wait);
        backoff_.async_wait([self = shared_from_this()](error_code e) {
            if (!e) self->attempt();
        });
    }

    bool can_retry() const { return int(tried_.size()) <= px_->opts.max_retries; }

    void give_up() {
        if (gone_ || finished_) return;
        if (relayed_) return end_with_error("the worker failed mid-stream: " + last_error_);
        finished_ = true;
        const bool none = tried_.empty();
        if (none) px_->counters.no_worker++;
        else px_->counters.failed++;
        std::string msg;
        if (none) {
            msg = "no worker can take the request now";
            if (!req_->model.empty()) msg += " for model \"" + req_->model + "\"";
            if (px_->workers.size() == 0) msg = "no worker has joined the cluster";
        } else {
            msg = "no worker answered (" + std::to_string(tried_.size()) + " tried; last: " + last_error_ + ")";
        }
        http::Response res;
        server::send_error(req_->path, res, none ? 503 : 502, msg);
        res.replace_header("X-Hearth-Node", tried_.empty() ? std::string("router") : tried_.back());
        req_->client->send(std::move(res));
    }

    // A few times a second while the attempt lasts. Before the first relayed byte: a worker
    // whose probe failed meanwhile (a stopped or wedged process) loses the request to another
    // worker. After it: a worker silent for the inter-token timeout has stalled.
    void watch_health() {
        const auto period = std::clamp(px_->opts.inter_token_timeout / 4, std::chrono::milliseconds(50),
                                       std::chrono::milliseconds(500));
        health_.expires_after(period);
        health_.async_wait([self = shared_from_this()](error_code e) {
            if (e || !self->in_attempt_ || self->gone_) return;
            if (self->relayed_) {
                if (Clock::now() - self->last_activity_ >= self->px_->opts.inter_token_timeout) {
                    self->stalled_ = true;
                    self->close();  // the pending read ends; body_error reports the stall
                    return;
                }
            } else if (!self->worker_->probe_up()) {
                self->health_abort_ = true;
                self->close();  // the pending operation ends with operation_aborted
                return;
            }
            self->watch_health();
        });
    }

    // True when the handler must do nothing more: the client left, or the health watch
    // aborted the attempt (then it retries).
    bool stale(error_code) {
        if (gone_) {
            end_attempt();
            return true;
        }
        if (health_abort_ && !relayed_) {
            retry("worker " + worker_->id() + " stopped answering its probe", false);
            return true;
        }
        return false;
    }

    std::string why(error_code e, const char* when) const {
        if (e == beast::error::timeout)
            return "worker " + worker_->id() + " sent nothing in time (" + when + ")";
        return "worker " + worker_->id() + " failed " + when + ": " + e.message();
    }

    void client_gone() {
        if (gone_) return;
        gone_ = true;
        backoff_.cancel();
        resolver_.cancel();
        close();
    }

    void close() {
        health_.cancel();
        if (!stream_) return;
        error_code ec;
        stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_->socket().close(ec);
    }

    void end_attempt() {
        if (!in_attempt_) return;
        in_attempt_ = false;
        worker_->inflight--;
    }

    std::shared_ptr<Proxy::Impl> px_;
    std::shared_ptr<ProxyRequest> req_;
    asio::strand<asio::io_context::executor_type> strand_;
    tcp::resolver resolver_;
    asio::steady_timer health_, backoff_;
    std::optional<beast::tcp_stream> stream_;
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser_;
    beast::flat_buffer buf_;
    char chunk_[16384];

    std::shared_ptr<Worker> worker_;
    std::vector<std::string> tried_;
    std::string last_error_;
    Clock::time_point deadline_;
    http::Response head_;
    std::string body_;
    char last_byte_ = '\n';
    Clock::time_point last_activity_{};
    bool chunked_ = false, relayed_ = false, in_attempt_ = false, health_abort_ = false, stalled_ = false;
    bool gone_ = false, finished_ = false;
};

}  // namespace

Proxy::Proxy(const RouterOptions& opts, WorkerSet& workers, Balancer& balancer, RouterCounters& counters, asio::io_context* loop)
    : impl_(std::make_shared<Impl>(opts, workers, balancer, counters, loop)) {
    if (loop) return;
    impl_->guard.emplace(asio::make_work_guard(impl_->ioc));
    impl_->threads.emplace_back([px = impl_.get()] { px->ioc.run(); });
}

Proxy::~Proxy() { stop(); }

void Proxy::stop() {
    if (impl_->threads.empty()) return;
    impl_->guard.reset();
    impl_->ioc.stop();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
}

void Proxy::forward(std::shared_ptr<ProxyRequest> req) { std::make_shared<Call>(impl_, std::move(req))->start(); }

}  // namespace hearth::cluster
