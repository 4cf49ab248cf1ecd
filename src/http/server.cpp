#include "http/server.h"

#include <sys/resource.h>

#include <stdexcept>
#include <thread>

#include "http/session.h"

namespace hearth::http {

std::string percent_decode(std::string_view s, bool plus_is_space) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

void parse_query(std::string_view query, Params& out) {
    while (!query.empty()) {
        const size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        if (!kv.empty()) {
            const size_t eq = kv.find('=');
            out.emplace(percent_decode(kv.substr(0, eq), true),
                        eq == std::string_view::npos ? std::string() : percent_decode(kv.substr(eq + 1), true));
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
}

// ---- Impl

const Route* Server::Impl::find_route(const std::string& method, Request& req) const {
    for (const Route& r : routes) {
        if (r.method != method && !(method == "HEAD" && r.method == "GET")) continue;
        if (std::regex_match(req.path, req.matches, r.pattern)) return &r;
    }
    return nullptr;
}

void Server::Impl::fill_error(const Request& req, Response& res, int status) const {
    res.status = status;
    if (status == 503) res.replace_header("Retry-After", "1");
    if (error_handler) error_handler(req, res);
    if (res.body.empty()) res.set_content(std::to_string(status) + " " + std::string(bhttp::obsolete_reason(
                                              bhttp::int_to_status(static_cast<unsigned>(status)))),
                                          "text/plain");
}

void Server::Impl::do_accept() {
    if (stopped) return;
    acceptor->async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket sock) {
        if (stopped || ec == asio::error::operation_aborted) return;
        if (ec) {
            // Out of descriptors (or a transient error): try again shortly instead of spinning.
            accept_retry->expires_after(std::chrono::milliseconds(50));
            accept_retry->async_wait([this](error_code e) {
                if (!e) do_accept();
            });
            return;
        }
        if (stats.connections_open.load() >= opts.max_connections) {
            ++stats.connections_rejected;
            reject(std::move(sock));
        } else {
            std::shared_ptr<Session> s;
            {
                std::lock_guard<std::mutex> lk(sessions_mu);
                const uint64_t id = next_session++;
                s = std::make_shared<Session>(*this, std::move(sock), id);
                sessions.emplace(id, s);
            }
            asio::dispatch(s->executor(), [s] { s->start(); });
        }
        do_accept();
    });
}

void Server::Impl::reject(tcp::socket sock) {
    Request req;
    Response res;
    fill_error(req, res, 503);
    res.set_header("Connection", "close");
    res.set_header("Content-Length", std::to_string(res.body.size()));
    auto bytes = std::make_shared<std::string>(format_head(503, res.headers) + res.body);
    auto s = std::make_shared<tcp::socket>(std::move(sock));
    auto timer = std::make_shared<asio::steady_timer>(s->get_executor());
    timer->expires_after(std::chrono::seconds(2));
    timer->async_wait([s](error_code e) {
        if (!e) {
            error_code ig;
            s->close(ig);
        }
    });
    asio::async_write(*s, asio::buffer(*bytes), [s, bytes, timer](error_code, size_t) {
        error_code ig;
        s->shutdown(tcp::socket::shutdown_send, ig);
        s->close(ig);
        timer->cancel();
    });
}

// ---- Server

Server::Server(ServerOptions opts) : impl_(std::make_shared<Impl>(std::move(opts))) {}

Server::~Server() {
    stop();
    // The posted closes run (aborting open exchanges, which wakes producers waiting on them),
    // then handlers still queued or running finish against aborted exchanges.
    impl_->ioc.restart();
    impl_->ioc.poll();
    impl_->pool.shutdown();
    // Pending operations (and the sessions they hold) go with the loop.
    impl_->ioc.restart();
    impl_->ioc.poll();
}

namespace {
void add(std::vector<Route>& routes, const char* method, const std::string& pattern, Handler h, StreamingHandler s) {
    routes.push_back(Route{method, std::regex(pattern), std::move(h), std::move(s)});
}
}  // namespace

void Server::Get(const std::string& p, Handler h) { add(impl_->routes, "GET", p, std::move(h), nullptr); }
void Server::Post(const std::string& p, Handler h) { add(impl_->routes, "POST", p, std::move(h), nullptr); }
void Server::Post(const std::string& p, StreamingHandler h) { add(impl_->routes, "POST", p, nullptr, std::move(h)); }
void Server::Put(const std::string& p, Handler h) { add(impl_->routes, "PUT", p, std::move(h), nullptr); }
void Server::Patch(const std::string& p, Handler h) { add(impl_->routes, "PATCH", p, std::move(h), nullptr); }
void Server::Delete(const std::string& p, Handler h) { add(impl_->routes, "DELETE", p, std::move(h), nullptr); }
void Server::Options(const std::string& p, Handler h) { add(impl_->routes, "OPTIONS", p, std::move(h), nullptr); }

void Server::set_pre_routing_handler(std::function<bool(const Request&, Response&)> fn) { impl_->pre_routing = std::move(fn); }
void Server::set_error_handler(std::function<void(const Request&, Response&)> fn) { impl_->error_handler = std::move(fn); }
void Server::set_exception_handler(std::function<void(const Request&, Response&, std::exception_ptr)> fn) {
    impl_->exception_handler = std::move(fn);
}
void Server::set_logger(std::function<void(const Request&, const Response&)> fn) { impl_->logger = std::move(fn); }

int Server::bind(const std::string& host, int port) {
    // Every connection is a descriptor: take the hard limit, as Go programs do.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    Impl& s = *impl_;
    error_code ec;
    tcp::resolver resolver(s.ioc);
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    auto results = resolver.resolve(h, std::to_string(port), tcp::resolver::passive, ec);
    if (ec || results.empty()) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
    std::string last;
    for (const auto& entry : results) {
        tcp::acceptor a(s.ioc);
        const auto ep = entry.endpoint();
        a.open(ep.protocol(), ec);
        if (ec) { last = ec.message(); continue; }
        // SO_REUSEADDR only (no SO_REUSEPORT): a second daemon on the same port must fail.
        a.set_option(asio::socket_base::reuse_address(true), ec);
        a.bind(ep, ec);
        if (ec) { last = ec.message(); continue; }
        a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) { last = ec.message(); continue; }
        const int bound = a.local_endpoint().port();
        s.acceptor.emplace(std::move(a));
        s.accept_retry.emplace(s.ioc);
        return bound;
    }
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + last);
}

void Server::run() {
    Impl& s = *impl_;
    if (!s.acceptor) throw std::runtime_error("http::Server::run before bind");
    if (s.stopped) return;
    auto guard = asio::make_work_guard(s.ioc);
    s.do_accept();
    std::vector<std::thread> loops;
    for (int i = 1; i < s.opts.loop_threads; ++i) loops.emplace_back([&s] { s.ioc.run(); });
    s.running = true;
    s.ioc.run();
    s.running = false;
    for (auto& t : loops) t.join();
}

void Server::stop() {
    Impl& s = *impl_;
    if (s.stopped.exchange(true)) return;
    std::vector<std::shared_ptr<Session>> open;
    {
        std::lock_guard<std::mutex> lk(s.sessions_mu);
        for (auto& [id, w] : s.sessions)
            if (auto p = w.lock()) open.push_back(std::move(p));
    }
    asio::post(s.ioc, [&s] {
        error_code ec;
        if (s.acceptor) s.acceptor->close(ec);
        if (s.accept_retry) s.accept_retry->cancel();
    });
    for (auto& p : open) p->abort();
    // Let the posted closes run, then end the loops.
    asio::post(s.ioc, [&s] { s.ioc.stop(); });
}

bool Server::running() const { return impl_->running.load(); }
const ServerOptions& Server::options() const { return impl_->opts; }
const ServerStats& Server::stats() const {
    impl_->stats.handler_threads = impl_->pool.threads();
    return impl_->stats;
}

boost::asio::io_context& Server::io_context() { return impl_->ioc; }

}  // namespace hearth::http
