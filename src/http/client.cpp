#include "http/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <mutex>
#include <sstream>

namespace hearth::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::string to_string(Error e) {
    switch (e) {
    case Error::Success: return "Success";
    case Error::Connection: return "Could not establish connection";
    case Error::Write: return "Failed to write connection";
    case Error::Read: return "Failed to read connection";
    case Error::Timeout: return "Connection timed out";
    case Error::Canceled: return "Connection handling canceled";
    case Error::BadResponse: return "Invalid HTTP response";
    }
    return "Unknown";
}

std::string Result::error_message() const {
    std::string s = to_string(error());
    if (!detail_.empty()) s += ": " + detail_;
    return s;
}

// One connection and the loop its operations run on (on the calling thread).
struct Client::Conn {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buf;
    bool open = false;
    std::mutex mu;  // stop() against the call in flight
    bool cancelled = false;

    // Runs one asynchronous operation to its end on this thread.
    template <class Start>
    error_code run(Start&& start) {
        error_code result;
        bool done = false;
        start([&](error_code ec, size_t = 0) {
            result = ec;
            done = true;
        });
        ioc.restart();
        while (!done && ioc.run_one() > 0) {
        }
        if (!done) result = asio::error::operation_aborted;
        return result;
    }
    void close() {
        error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream.socket().close(ec);
        buf.clear();
        open = false;
    }
};

Client::Client(std::string host, int port) : host_(std::move(host)), port_(port), conn_(std::make_unique<Conn>()) {}

Client::Client(const std::string& origin) : conn_(std::make_unique<Conn>()) {
    std::string_view s = origin;
    if (s.rfind("http://", 0) == 0) s.remove_prefix(7);
    const size_t slash = s.find('/');
    if (slash != std::string_view::npos) s = s.substr(0, slash);
    size_t colon = s.rfind(':');
    if (!s.empty() && s.front() == '[') {  // [v6]:port
        const size_t close = s.find(']');
        host_ = std::string(s.substr(1, close - 1));
        colon = s.find(':', close);
    } else {
        host_ = std::string(s.substr(0, colon));
    }
    port_ = colon == std::string_view::npos ? 80 : std::atoi(std::string(s.substr(colon + 1)).c_str());
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

void Client::stop() {
    Conn* c = conn_.get();
    if (c == nullptr) return;
    std::lock_guard<std::mutex> lk(c->mu);
    c->cancelled = true;
    asio::post(c->ioc, [c] { c->close(); });
}

namespace {

Error classify(const error_code& ec, Error otherwise) {
    if (ec == beast::error::timeout) return Error::Timeout;
    return otherwise;
}

}  // namespace

Result Client::send(const Call& call) {
    if (!conn_) conn_ = std::make_unique<Conn>();
    Conn& c = *conn_;
    {
        std::lock_guard<std::mutex> lk(c.mu);
        c.cancelled = false;
    }
    auto cancelled = [&] {
        std::lock_guard<std::mutex> lk(c.mu);
        return c.cancelled;
    };
    const bool reused = c.open;
    if (!c.open) {
        error_code ec;
        tcp::resolver resolver(c.ioc);
        auto results = resolver.resolve(host_, std::to_string(port_), ec);
        if (ec) return Result(Error::Connection, ec.message());
        c.stream.expires_after(connect_timeout_);
        ec = c.run([&](auto done) { c.stream.async_connect(results, [done](error_code e, const tcp::endpoint&) mutable { done(e); }); });
        if (ec) {
            c.close();
            if (cancelled()) return Result(Error::Canceled);
            return Result(classify(ec, Error::Connection), ec.message());
        }
        error_code ig;
        c.stream.socket().set_option(tcp::no_delay(true), ig);
        c.open = true;
        c.buf.clear();
    }

    // The request head.
    bhttp::request<bhttp::empty_body> head{bhttp::string_to_verb(call.method), call.path, 11};
    if (head.method() == bhttp::verb::unknown) head.method_string(call.method);
    for (const auto& [k, v] : default_headers_)
        if (call.headers.find(k) == call.headers.end()) head.insert(k, v);
    for (const auto& [k, v] : call.headers) head.insert(k, v);
    if (head.find(bhttp::field::host) == head.end()) {
        const bool v6 = host_.find(':') != std::string::npos;  // an IPv6 literal goes in brackets
        head.set(bhttp::field::host, (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_));
    }
    if (!call.content_type.empty() && head.find(bhttp::field::content_type) == head.end())
        head.set(bhttp::field::content_type, call.content_type);
    if (!keep_alive_) head.set(bhttp::field::connection, "close");
    if (call.provider) {
        if (call.content_length) head.content_length(*call.content_length);
        else head.chunked(true);
    } else if (!call.body.empty() || call.method == "POST" || call.method == "PUT" || call.method == "PATCH") {
        head.content_length(call.body.size());
    }

    auto fail = [&](Error e, const error_code& ec) {
        c.close();
        if (cancelled()) return Result(Error::Canceled);
        return Result(classify(ec, e), ec.message());
    };
    auto write_all = [&](std::vector<asio::const_buffer> bufs) {
        c.stream.expires_after(write_timeout_);
        return c.run([&](auto done) {
            asio::async_write(c.stream, bufs, [done](error_code e, size_t) mutable { done(e); });
        });
    };

    std::ostringstream os;
    os << head.base();
    const std::string head_bytes = os.str();
    error_code ec;
    if (call.provider) {
        ec = write_all({asio::buffer(head_bytes)});
        std::string piece;
        while (!ec) {
            piece.clear();
            const bool more = (*call.provider)(piece);
            if (!piece.empty()) {
                if (head.chunked()) {
                    char size[24];
                    const int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
                    ec = write_all({asio::buffer(size, static_cast<size_t>(n)), asio::buffer(piece), asio::buffer("\r\n", 2)});
                } else {
                    ec = write_all({asio::buffer(piece)});
                }
            }
            if (!more) break;
            if (cancelled()) return Result(Error::Canceled);
        }
        if (!ec && head.chunked()) ec = write_all({asio::buffer("0\r\n\r\n", 5)});
    } else {
        ec = write_all({asio::buffer(head_bytes), asio::buffer(call.body)});
    }
    if (ec) {
        // A kept-alive connection the server closed meanwhile: once more on a fresh one.
        if (reused && !call.provider && !cancelled()) {
            c.close();
            return send(call);
        }
        return fail(Error::Write, ec);
    }

    // The response.
    std::optional<bhttp::response_parser<bhttp::buffer_body>> p;
    auto read_head = [&] {
        p.emplace();
        p->body_limit(boost::none);
        p->header_limit(1u << 20);
        if (call.method == "HEAD") p->skip(true);
        c.stream.expires_after(read_timeout_);
        return c.run([&](auto done) {
            bhttp::async_read_header(c.stream, c.buf, *p, [done](error_code e, size_t) mutable { done(e); });
        });
    };
    ec = read_head();
    while (!ec && p->get().result_int() == 100) ec = read_head();  // interim 100 Continue
    auto& parser = *p;
    if (ec) {
        if (reused && !call.provider && !cancelled() && (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                                                          ec == asio::error::connection_reset)) {
            c.close();
            return send(call);
        }
        return fail(ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
                            ec == asio::error::connection_reset || ec == asio::error::operation_aborted
                        ? Error::Read
                        : Error::BadResponse,
                    ec);
    }
    ClientResponse res;
    res.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) res.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    std::vector<char> chunk(64u << 10);
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        c.stream.expires_after(read_timeout_);
        ec = c.run([&](auto done) {
            bhttp::async_read_some(c.stream, c.buf, parser, [done](error_code e, size_t) mutable { done(e); });
        });
        if (ec == bhttp::error::need_buffer) ec = {};
        const size_t got = chunk.size() - parser.get().body().size;
        if (got > 0) {
            if (call.receiver) {
                if (!(*call.receiver)(chunk.data(), got)) {
                    c.close();
                    return Result(Error::Canceled);
                }
            } else {
                res.body.append(chunk.data(), got);
            }
        }
        if (ec) return fail(Error::Read, ec);
    }
    if (!keep_alive_ || !parser.keep_alive()) c.close();
    return Result(std::move(res));
}

Result Client::Get(const std::string& path, const Headers& headers) {
    Call c;
    c.path = path;
    c.headers = headers;
    return send(c);
}

Result Client::Get(const std::string& path, const Headers& headers, const Receiver& receiver) {
    Call c;
    c.path = path;
    c.headers = headers;
    c.receiver = &receiver;
    return send(c);
}

Result Client::Head(const std::string& path, const Headers& headers) {
    Call c;
    c.method = "HEAD";
    c.path = path;
    c.headers = headers;
    return send(c);
}

Result Client::Delete(const std::string& path, const std::string& body, const std::string& content_type) {
    Call c;
    c.method = "DELETE";
    c.path = path;
    c.body = body;
    c.content_type = content_type;
    return send(c);
}

Result Client::Post(const std::string& path, const std::string& body, const std::string& content_type) {
    return Post(path, Headers{}, body, content_type);
}

Result Client::Post(const std::string& path, const Headers& headers, const std::string& body,
                    const std::string& content_type) {
    Call c;
    c.method = "POST";
    c.path = path;
    c.headers = headers;
    c.body = body;
    c.content_type = content_type;
    return send(c);
}

Result Client::Post(const std::string& path, const Headers& headers, const std::string& body,
                    const std::string& content_type, const Receiver& receiver) {
    Call c;
    c.method = "POST";
    c.path = path;
    c.headers = headers;
    c.body = body;
    c.content_type = content_type;
    c.receiver = &receiver;
    return send(c);
}

Result Client::Post(const std::string& path, const Headers& headers, const Provider& provider,
                    const std::string& content_type, std::optional<uint64_t> content_length) {
    Call c;
    c.method = "POST";
    c.path = path;
    c.headers = headers;
    c.content_type = content_type;
    c.provider = &provider;
    c.content_length = content_length;
    return send(c);
}

Result Client::Put(const std::string& path, const std::string& body, const std::string& content_type) {
    Call c;
    c.method = "PUT";
    c.path = path;
    c.body = body;
    c.content_type = content_type;
    return send(c);
}

Result Client::Patch(const std::string& path, const std::string& body, const std::string& content_type) {
    Call c;
    c.method = "PATCH";
    c.path = path;
    c.body = body;
    c.content_type = content_type;
    return send(c);
}

}  // namespace hearth::http
