// The write half of a Session: replies framed (Content-Length or chunked), queued and written
// under the write timeout; a write that fails or stalls aborts the exchange.
#include <cstdio>

#include "http/session.h"

namespace hearth::http {

namespace {

std::string chunk_frame(const std::string& data) {
    char size[24];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out;
    out.reserve(data.size() + static_cast<size_t>(n) + 2);
    out.append(size, static_cast<size_t>(n));
    out += data;
    out += "\r\n";
    return out;
}

bool body_allowed(int status) { return status >= 200 && status != 204 && status != 304; }

// Header values must not carry line breaks (response splitting); such characters become spaces.
std::string clean(std::string_view v) {
    std::string s(v);
    for (char& c : s)
        if (c == '\r' || c == '\n' || c == '\0') c = ' ';
    return s;
}

}  // namespace

std::string format_head(int status, const Headers& headers) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
    const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status)));
    out.append(reason.data(), reason.size());
    if (reason.empty()) out += "Unknown";
    out += "\r\n";
    for (const auto& [k, v] : headers) {
        out += clean(k);
        out += ": ";
        out += clean(v);
        out += "\r\n";
    }
    out += "\r\n";
    return out;
}

namespace {

// Headers set before the handler ran (CORS...) join a reply that does not set them itself.
void merge_base(const Exchange& ex, Response& res) {
    for (const auto& [k, v] : ex.base)
        if (!res.has_header(k)) res.set_header(k, v);
}

}  // namespace

void Session::reply_full(const std::shared_ptr<Exchange>& ex, Response res) {
    if (ex != ex_ || closed_) return;
    merge_base(*ex, res);
    ex->status = res.status;
    if (srv_.logger) srv_.logger(*ex->request, res);
    res.headers.erase("Content-Length");
    res.headers.erase("Transfer-Encoding");
    res.headers.erase("Connection");
    if (body_allowed(res.status)) res.set_header("Content-Length", std::to_string(res.body.size()));
    if (!keep_alive_ || srv_.stopped) {
        keep_alive_ = false;
        res.set_header("Connection", "close");
    }
    std::string bytes = format_head(res.status, res.headers);
    if (!ex->head_only && body_allowed(res.status)) bytes += res.body;
    chunked_ = false;
    remaining_.reset();
    end_queued_ = true;
    enqueue(std::move(bytes), 0);
}

void Session::reply_head(const std::shared_ptr<Exchange>& ex, Response head, std::optional<uint64_t> length) {
    if (ex != ex_ || closed_) return;
    merge_base(*ex, head);
    ex->status = head.status;
    head.headers.erase("Content-Length");
    head.headers.erase("Transfer-Encoding");
    head.headers.erase("Connection");
    chunked_ = false;
    remaining_.reset();
    if (!body_allowed(head.status) || ex->head_only) {
        if (length && body_allowed(head.status)) head.set_header("Content-Length", std::to_string(*length));
        remaining_ = 0;  // whatever the producer writes is dropped
    } else if (length) {
        head.set_header("Content-Length", std::to_string(*length));
        remaining_ = *length;
    } else {
        head.set_header("Transfer-Encoding", "chunked");
        chunked_ = true;
    }
    if (!keep_alive_ || srv_.stopped) {
        keep_alive_ = false;
        head.set_header("Connection", "close");
    }
    if (srv_.logger) srv_.logger(*ex->request, head);
    enqueue(format_head(head.status, head.headers), 0);
}

void Session::reply_data(const std::shared_ptr<Exchange>& ex, std::string data) {
    const size_t n = data.size();
    if (ex != ex_ || closed_ || end_queued_) return ex->written(n);
    if (remaining_) {
        if (*remaining_ < n) {  // more than announced: the framing would break
            ex->written(n);
            return close();
        }
        *remaining_ -= n;
        if (ex->head_only || *remaining_ + n == 0) return ex->written(n);
        enqueue(std::move(data), n);
        return;
    }
    if (!chunked_) return ex->written(n);
    enqueue(chunk_frame(data), n);
}

void Session::reply_end(const std::shared_ptr<Exchange>& ex) {
    if (ex != ex_ || closed_ || end_queued_) return;
    end_queued_ = true;
    if (remaining_ && *remaining_ > 0 && !ex->head_only && ex->status != 304 && ex->status != 204) {
        // Fewer bytes than announced: the client must not mistake it for the whole body.
        keep_alive_ = false;
        enqueue("", 0);
        return;
    }
    enqueue(chunked_ && !ex->head_only ? std::string("0\r\n\r\n") : std::string(), 0);
}

void Session::enqueue(std::string bytes, size_t payload) {
    out_.emplace_back(std::move(bytes), payload);
    if (!writing_) do_write();
}

void Session::do_write() {
    if (closed_) return;
    if (out_.empty()) {
        writing_ = false;
        if (end_queued_ && ex_) exchange_complete();
        return;
    }
    writing_ = true;
    in_flight_.clear();
    std::vector<asio::const_buffer> bufs;
    size_t total = 0;
    while (!out_.empty() && bufs.size() < 64 && total < (1u << 20)) {
        in_flight_.push_back(std::move(out_.front()));
        out_.pop_front();
        total += in_flight_.back().first.size();
    }
    for (const auto& [bytes, payload] : in_flight_)
        if (!bytes.empty()) bufs.emplace_back(asio::buffer(bytes));
    stream_.expires_after(srv_.opts.write_timeout);
    asio::async_write(stream_, bufs, [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
}

void Session::on_write(error_code ec) {
    if (ec) {
        if (ec == beast::error::timeout) ++srv_.stats.timeouts;
        for (const auto& [bytes, payload] : in_flight_)
            if (ex_) ex_->written(payload);
        in_flight_.clear();
        return close();
    }
    if (ex_)
        for (const auto& [bytes, payload] : in_flight_) ex_->written(payload);
    in_flight_.clear();
    do_write();
}

void Session::exchange_complete() {
    // The reply is out. The handler's request is done with: read the next one, or close.
    if (ex_) ex_->completed();
    ex_.reset();
    auto hold = std::move(awaiting_reply_);
    end_queued_ = false;
    chunked_ = false;
    remaining_.reset();
    req_.reset();
    const bool upload_pending = upload_parser_.has_value();
    if (upload_pending) {
        upload_->fail("the reply was sent before the body ended");
        upload_parser_.reset();
        keep_alive_ = false;
    }
    upload_.reset();
    if (!keep_alive_ || srv_.stopped) {
        // Half-close, then read until the client closes too (briefly): closing with unread
        // bytes would send a reset that can destroy the reply before the client reads it.
        error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        return linger();
    }
    stream_.expires_never();
    read_request();
}

void Session::linger() {
    if (closed_) return;
    upload_buf_.resize(16u << 10);
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(asio::buffer(upload_buf_), [self = shared_from_this()](error_code ec, size_t) {
        if (ec) return self->close();
        self->linger();
    });
}

void Session::close() {
    if (closed_) return;
    closed_ = true;
    auto hold = std::move(awaiting_reply_);
    if (ex_) ex_->abort();
    if (upload_) upload_->fail("the connection closed");
    error_code ec;
    stream_.socket().close(ec);
}

}  // namespace hearth::http
