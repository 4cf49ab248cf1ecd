#include "http/session.h"

#include <cstdio>

namespace hearth::http {

namespace {

using Clock = std::chrono::steady_clock;

bool has_token(std::string_view list, std::string_view token) {
    // Comma-separated, case-insensitive ("Expect: 100-continue").
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view t = list.substr(0, comma);
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
        if (t.size() == token.size() && !CaseInsensitiveLess{}(t, token) && !CaseInsensitiveLess{}(token, t)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

// ---- BodyPipe

bool BodyPipe::read(const std::function<bool(const char*, size_t)>& sink) {
    for (;;) {
        std::string piece;
        bool drained = false;
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return !q_.empty() || done_ || !error_.empty(); });
            if (q_.empty()) {
                if (!error_.empty()) throw BodyError(error_);
                return true;
            }
            piece = std::move(q_.front());
            q_.pop_front();
            bytes_ -= piece.size();
            drained = paused_ && bytes_ < kHighWater / 2;
            if (drained) paused_ = false;
        }
        if (drained && on_drained) on_drained();
        if (!sink(piece.data(), piece.size())) {
            std::lock_guard<std::mutex> lk(mu_);
            abandoned_ = true;
            q_.clear();
            bytes_ = 0;
            return false;
        }
    }
}

bool BodyPipe::push(std::string piece) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (abandoned_) return false;
        bytes_ += piece.size();
        q_.push_back(std::move(piece));
    }
    cv_.notify_all();
    return true;
}

void BodyPipe::finish() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        done_ = true;
    }
    cv_.notify_all();
}

void BodyPipe::fail(std::string why) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (done_ || !error_.empty()) return;
        error_ = std::move(why);
    }
    cv_.notify_all();
}

bool BodyPipe::full() {
    std::lock_guard<std::mutex> lk(mu_);
    paused_ = bytes_ >= kHighWater;
    return paused_;
}

bool BodyPipe::abandoned() const {
    std::lock_guard<std::mutex> lk(mu_);
    return abandoned_;
}

// ---- Exchange

Exchange::Exchange(std::shared_ptr<Session> s, std::shared_ptr<Request> r, bool head)
    : request(std::move(r)), head_only(head), server_(s->server().shared_from_this()), session_(s), strand_(s->executor()) {}

bool Exchange::on_strand() const {
    const auto* s = strand_.target<asio::strand<asio::io_context::executor_type>>();
    return s != nullptr && s->running_in_this_thread();
}

void Exchange::send(Response res) {
    if (replied.exchange(true)) return;
    auto self = shared_from_this();
    if (on_strand()) {  // an EventFn answering from the loop: no second hop
        if (auto s = session_.lock()) s->reply_full(self, std::move(res));
        return;
    }
    asio::post(strand_, [self, res = std::move(res)]() mutable {
        if (auto s = self->session_.lock()) s->reply_full(self, std::move(res));
    });
}

void Exchange::begin(Response head, std::optional<uint64_t> length) {
    if (replied.exchange(true)) return;
    auto self = shared_from_this();
    if (on_strand()) {
        if (auto s = session_.lock()) s->reply_head(self, std::move(head), length);
        return;
    }
    asio::post(strand_, [self, head = std::move(head), length]() mutable {
        if (auto s = self->session_.lock()) s->reply_head(self, std::move(head), length);
    });
}

bool Exchange::write(std::string data) {
    if (!alive_.load()) return false;
    if (data.empty()) return true;
    {
        std::lock_guard<std::mutex> lk(mu_);
        queued_ += data.size();
    }
    auto self = shared_from_this();
    if (on_strand()) {
        if (auto s = session_.lock()) s->reply_data(self, std::move(data));
        else written(data.size());
        return alive_.load();
    }
    asio::post(strand_, [self, data = std::move(data)]() mutable {
        if (auto s = self->session_.lock()) s->reply_data(self, std::move(data));
    });
    return true;
}

void Exchange::end() {
    auto self = shared_from_this();
    if (on_strand()) {
        if (auto s = session_.lock()) s->reply_end(self);
        return;
    }
    asio::post(strand_, [self] {
        if (auto s = self->session_.lock()) s->reply_end(self);
    });
}

void Exchange::on_abort(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (completed_) return;  // never aborted now
        if (!aborted_) {
            abort_fns_.push_back(std::move(fn));
            return;
        }
    }
    fn();
}

// The callbacks often hold what holds this exchange (a proxy call keeping its Stream): drop
// them when the reply is complete, so those cycles end.
void Exchange::completed() {
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard<std::mutex> lk(mu_);
        completed_ = true;
        fns.swap(abort_fns_);
    }
}

void Exchange::post(std::function<void()> fn) { asio::post(strand_, std::move(fn)); }

bool Exchange::wait_below(size_t bytes) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return queued_ < bytes || aborted_; });
    return !aborted_;
}

void Exchange::abort() {
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard<std::mutex> lk(mu_);
        alive_ = false;
        if (aborted_) return;
        aborted_ = true;
        fns.swap(abort_fns_);
    }
    cv_.notify_all();
    for (auto& f : fns) f();
}

void Exchange::written(size_t bytes) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        queued_ -= std::min(queued_, bytes);
    }
    cv_.notify_all();
}

// ---- Session: reading

Session::Session(Server::Impl& srv, tcp::socket sock, uint64_t id)
    : srv_(srv), stream_(std::move(sock)), strand_(stream_.get_executor()), id_(id) {
    ++srv_.stats.connections_open;
    ++srv_.stats.connections_total;
}

Session::~Session() {
    if (ex_) ex_->abort();
    if (upload_) upload_->fail("the connection closed");
    --srv_.stats.connections_open;
    std::lock_guard<std::mutex> lk(srv_.sessions_mu);
    srv_.sessions.erase(id_);
}

void Session::start() {
    if (srv_.opts.tcp_nodelay) {
        error_code ec;
        stream_.socket().set_option(tcp::no_delay(true), ec);
    }
    read_request();
}

void Session::abort() {
    asio::post(strand_, [self = shared_from_this()] { self->close(); });
}

void Session::read_request() {
    if (closed_) return;
    header_parser_.emplace();
    header_parser_->header_limit(static_cast<uint32_t>(srv_.opts.max_header_bytes));
    header_parser_->body_limit(boost::none);  // each route's limit is applied once it is known
    if (buf_.size() == 0 && !first_) {
        // Between requests: the idle timeout runs until the next request's first byte.
        stream_.expires_after(srv_.opts.idle_timeout);
        stream_.async_read_some(buf_.prepare(4096), [self = shared_from_this()](error_code ec, size_t n) {
            if (ec) {
                if (ec == beast::error::timeout) ++self->srv_.stats.timeouts;
                return self->close();
            }
            self->buf_.commit(n);
            self->read_header();
        });
        return;
    }
    read_header();
}

void Session::read_header() {
    stream_.expires_after(srv_.opts.header_timeout);
    bhttp::async_read_header(stream_, buf_, *header_parser_,
                             [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
}

void Session::on_header(error_code ec) {
    first_ = false;
    if (ec == beast::error::timeout) {
        ++srv_.stats.timeouts;
        return close();
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)
        return close();
    req_ = std::make_shared<Request>();
    if (ec == bhttp::error::header_limit) return fail(431);
    if (ec) return fail(400);

    auto& h = header_parser_->get();
    Request& r = *req_;
    r.method = std::string(h.method_string());
    r.target = std::string(h.target());
    for (const auto& f : h) r.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    error_code ep_ec;
    const auto ep = stream_.socket().remote_endpoint(ep_ec);
    if (!ep_ec) {
        r.remote_addr = ep.address().to_string();
        r.remote_port = ep.port();
    }
    std::string_view target = r.target;
    if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {  // absolute-form
        const size_t slash = target.find('/', target.find("//") + 2);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    const size_t q = target.find('?');
    r.path = percent_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) parse_query(target.substr(q + 1), r.params);
    keep_alive_ = header_parser_->keep_alive();

    // RFC 9112 6.3: framing a proxy and this server could read differently is refused outright.
    const bool has_te = h.find(bhttp::field::transfer_encoding) != h.end();
    if (h.count(bhttp::field::content_length) > 1) return fail(400);
    if (has_te && (!header_parser_->chunked() || h.version() < 11)) return fail(400);
    if (r.target.empty() || (r.target[0] != '/' && r.target != "*" && target == r.target)) return fail(400);

    pre_ = Response{};
    if (srv_.pre_routing && srv_.pre_routing(r, pre_)) {
        // Answered before the body: a body it did not read ends the connection.
        const bool body = header_parser_->chunked() || header_parser_->content_length().value_or(0) > 0;
        if (body) keep_alive_ = false;
        auto ex = std::make_shared<Exchange>(shared_from_this(), req_, r.method == "HEAD");
        ex->replied = true;
        ex_ = ex;
        reply_full(ex, std::move(pre_));
        return;
    }
    const Route* route = srv_.find_route(r.method, r);
    if (route == nullptr) return fail(404, header_parser_->chunked() || header_parser_->content_length().value_or(0) > 0);

    const bool has_body = header_parser_->chunked() || header_parser_->content_length().value_or(0) > 0;
    if (!route->streaming && header_parser_->content_length().value_or(0) > srv_.opts.max_body) return fail(413);
    if (has_body && has_token(r.get_header_value("Expect"), "100-continue") && h.version() >= 11)
        enqueue("HTTP/1.1 100 Continue\r\n\r\n", 0);
    body_start_ = Clock::now();
    body_bytes_ = 0;
    if (route->streaming) {
        upload_ = std::make_shared<BodyPipe>();
        if (auto n = header_parser_->content_length()) upload_->length = *n;
        upload_parser_.emplace(std::move(*header_parser_));
        upload_parser_->body_limit(boost::none);
        header_parser_.reset();
        std::weak_ptr<Session> weak = shared_from_this();
        upload_->on_drained = [weak] {
            if (auto s = weak.lock()) asio::post(s->strand_, [s] {
                if (s->upload_paused_) {
                    s->upload_paused_ = false;
                    s->pump_upload();
                }
            });
        };
        auto pipe = upload_;
        dispatch(route, pipe);
        if (has_body) pump_upload();
        else upload_->finish();
        return;
    }
    if (!has_body) return dispatch(route, nullptr);
    body_parser_.emplace(std::move(*header_parser_));
    header_parser_.reset();
    body_parser_->body_limit(srv_.opts.max_body);
    route_ = route;
    read_body();
}

bool Session::body_too_slow() const {
    const auto elapsed = Clock::now() - body_start_;
    if (elapsed < srv_.opts.header_timeout) return false;
    const double secs = std::chrono::duration<double>(elapsed).count();
    return static_cast<double>(body_bytes_) / secs < static_cast<double>(srv_.opts.min_body_rate);
}

void Session::read_body() {
    stream_.expires_after(srv_.opts.header_timeout);  // no progress for this long: too slow
    bhttp::async_read_some(stream_, buf_, *body_parser_, [self = shared_from_this()](error_code ec, size_t n) {
        self->body_bytes_ += n;
        self->on_body(ec);
    });
}

void Session::on_body(error_code ec) {
    if (ec == beast::error::timeout) {
        ++srv_.stats.timeouts;
        return close();
    }
    if (ec == bhttp::error::body_limit) return fail(413);
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)
        return close();
    if (ec) return fail(400);
    if (!body_parser_->is_done()) {
        if (body_too_slow()) {
            ++srv_.stats.timeouts;
            return fail(408);
        }
        return read_body();
    }
    req_->body = std::move(body_parser_->get().body());
    body_parser_.reset();
    dispatch(route_, nullptr);
}

void Session::pump_upload() {
    if (closed_ || !upload_parser_ || upload_paused_) return;
    if (upload_parser_->is_done()) {
        upload_->finish();
        upload_parser_.reset();
        return;
    }
    if (upload_->abandoned()) {  // the handler stopped reading: the rest is not wanted
        keep_alive_ = false;
        upload_parser_.reset();
        return;
    }
    if (upload_->full()) {
        upload_paused_ = true;
        return;
    }
    upload_buf_.resize(64u << 10);
    upload_parser_->get().body().data = upload_buf_.data();
    upload_parser_->get().body().size = upload_buf_.size();
    stream_.expires_after(srv_.opts.header_timeout);
    bhttp::async_read_some(stream_, buf_, *upload_parser_, [self = shared_from_this()](error_code ec, size_t) {
        self->on_upload(ec, self->upload_parser_ ? self->upload_parser_->get().body().size : 0);
    });
}

void Session::on_upload(error_code ec, size_t room) {
    if (!upload_parser_) return;
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t got = upload_buf_.size() - room;
    body_bytes_ += got;
    if (got > 0) upload_->push(std::string(upload_buf_.data(), got));
    if (ec) {
        if (ec == beast::error::timeout) ++srv_.stats.timeouts;
        upload_->fail(ec == beast::error::timeout ? "the client sent the body too slowly"
                      : ec == bhttp::error::end_of_stream || ec == asio::error::eof
                          ? "the client closed the connection before the body ended"
                          : "reading the body: " + ec.message());
        upload_parser_.reset();
        keep_alive_ = false;
        if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == asio::error::eof) close();
        return;
    }
    if (body_too_slow()) {
        ++srv_.stats.timeouts;
        upload_->fail("the client sent the body too slowly");
        upload_parser_.reset();
        keep_alive_ = false;
        return close();
    }
    pump_upload();
}

void Session::dispatch(const Route* route, std::shared_ptr<BodyPipe> pipe) {
    auto req = req_;
    auto ex = std::make_shared<Exchange>(shared_from_this(), req, req->method == "HEAD");
    ex_ = ex;
    awaiting_reply_ = shared_from_this();
    Response base = std::move(pre_);
    pre_ = Response{};
    Server::Impl* srv = &srv_;
    srv_.pool.post([srv, route, req, ex, pipe, base = std::move(base)]() mutable {
        const Headers pre = base.headers;  // the middleware's (CORS...): kept on an error reply
        Response res = std::move(base);
        res.attach(ex);
        try {
            if (route->streaming) route->streaming(*req, res, *pipe);
            else route->handler(*req, res);
        } catch (...) {
            Response err;
            err.headers = pre;
            err.status = 500;
            if (srv->exception_handler) srv->exception_handler(*req, err, std::current_exception());
            else err.set_content("internal error", "text/plain");
            if (res.is_deferred()) ex->send(std::move(err));  // ignored when the reply has begun
            else res = std::move(err);
        }
        if (!res.is_deferred()) {
            // Headers the handler set before a reply from an error handler survive it.
            ex->send(std::move(res));
        }
    });
}

void Session::fail(int status, bool close_after) {
    if (!req_) req_ = std::make_shared<Request>();
    if (close_after) keep_alive_ = false;
    if (upload_) upload_->fail("the request was refused");
    Response res;
    res.status = status;
    srv_.fill_error(*req_, res, status);
    auto ex = std::make_shared<Exchange>(shared_from_this(), req_, req_->method == "HEAD");
    ex->replied = true;
    ex_ = ex;
    reply_full(ex, std::move(res));
}

}  // namespace hearth::http
