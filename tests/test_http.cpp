// The HTTP layer on its own (src/http): framing as RFC 9112 asks, per-phase timeouts, the
// connection cap, deferred and streamed replies, streamed uploads, and the faults a daemon
// meets (slow-loris sockets, idle keep-alive sockets, clients that stop reading, half-close)
// — over real loopback sockets.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/server.h"

namespace hearth::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A raw loopback socket for the cases a well-behaved client never produces.
class RawSocket {
public:
    explicit RawSocket(int port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~RawSocket() {
        if (fd_ >= 0) ::close(fd_);
    }
    RawSocket(RawSocket&& o) noexcept : fd_(o.fd_), ok_(o.ok_) { o.fd_ = -1; }
    bool ok() const { return ok_; }
    bool send(std::string_view s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
    void half_close() { ::shutdown(fd_, SHUT_WR); }
    // Everything until the peer closes or `timeout` passes.
    std::string read_all(std::chrono::milliseconds timeout = 5s) {
        std::string out;
        const auto end = Clock::now() + timeout;
        char buf[4096];
        while (Clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
            if (::poll(&p, 1, std::max(left, 1)) <= 0) break;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }
    // Reads until `marker` arrives (or timeout).
    std::string read_until(std::string_view marker, std::chrono::milliseconds timeout = 5s) {
        std::string out;
        const auto end = Clock::now() + timeout;
        char buf[4096];
        while (Clock::now() < end && out.find(marker) == std::string::npos) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }
    // True when the server closed the connection within `timeout`.
    bool closed_within(std::chrono::milliseconds timeout) {
        const auto end = Clock::now() + timeout;
        char buf[4096];
        while (Clock::now() < end) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return true;
        }
        return false;
    }

private:
    int fd_ = -1;
    bool ok_ = false;
};

int status_of(const std::string& reply) {
    if (reply.rfind("HTTP/1.1 ", 0) != 0) return 0;
    return std::atoi(reply.c_str() + 9);
}

class HttpServer {
public:
    explicit HttpServer(ServerOptions o = {}) : srv(std::move(o)) {}
    void start() {
        port = srv.bind("127.0.0.1", 0);
        thread = std::thread([this] { srv.run(); });
        const auto end = Clock::now() + 5s;
        while (!srv.running() && Clock::now() < end) std::this_thread::sleep_for(1ms);
    }
    ~HttpServer() {
        srv.stop();
        if (thread.joinable()) thread.join();
    }
    Client client() const {
        Client c("127.0.0.1", port);
        c.set_read_timeout(10, 0);
        return c;
    }
    Server srv;
    int port = 0;
    std::thread thread;
};

void add_basic_routes(Server& s) {
    s.Get("/hello", [](const Request&, Response& res) { res.set_content("hi", "text/plain"); });
    s.Post("/echo", [](const Request& req, Response& res) { res.set_content(req.body, "application/octet-stream"); });
    s.Get(R"(/item/(\d+))", [](const Request& req, Response& res) {
        res.set_content(req.matches[1].str() + "|" + req.get_param_value("q"), "text/plain");
    });
    s.Get("/stream", [](const Request&, Response& res) {
        auto st = res.defer();
        std::thread([st] {
            Response head;
            head.set_header("Content-Type", "application/x-ndjson");
            st->begin(std::move(head));
            for (int i = 0; i < 5; ++i) {
                st->write("{\"n\":" + std::to_string(i) + "}\n");
                std::this_thread::sleep_for(2ms);
            }
            st->end();
        }).detach();
    });
}

TEST(Http, RoutesQueryKeepAliveAndHead) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.start();
    Client c = h.client();
    c.set_keep_alive(true);
    for (int i = 0; i < 3; ++i) {  // the same connection serves one request after another
        auto r = c.Get("/hello");
        ASSERT_TRUE(r) << r.error_message();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "hi");
        EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain");
    }
    auto r = c.Get("/item/42?q=a%20b+c");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "42|a b c");
    r = c.Head("/hello");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Length"), "2");
    EXPECT_EQ(r->body, "");
    r = c.Get("/nowhere");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    const std::string big(3u << 20, 'x');
    r = c.Post("/echo", big, "application/octet-stream");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->body == big) << r->status << " " << r->body.substr(0, 200);
}

TEST(Http, DeferredStreamIsChunkedAndArrivesInPieces) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.start();
    Client c = h.client();
    std::vector<std::string> pieces;
    auto r = c.Get("/stream", {}, [&](const char* d, size_t n) {
        pieces.emplace_back(d, n);
        return true;
    });
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ(r->get_header_value("Transfer-Encoding"), "chunked");
    std::string all;
    for (auto& p : pieces) all += p;
    EXPECT_EQ(all, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n");
    EXPECT_GE(pieces.size(), 2u);  // streamed, not buffered to the end
}

TEST(Http, FramingErrorsAreRefusedAtOnce) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.start();
    const std::vector<std::string> bad = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",  // conflicting
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",   // duplicate
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",                           // negative
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",  // bad chunk size
        "GARBAGE\r\n\r\n",
    };
    for (const std::string& req : bad) {
        RawSocket s(h.port);
        ASSERT_TRUE(s.ok());
        const auto t0 = Clock::now();
        ASSERT_TRUE(s.send(req));
        const std::string reply = s.read_all(3s);
        EXPECT_EQ(status_of(reply), 400) << req << "\n--> " << reply;
        EXPECT_LT(Clock::now() - t0, 2s) << req;  // answered and closed, not left to a timeout
    }
}

TEST(Http, OversizedHeadersGet431) {
    ServerOptions o;
    o.max_header_bytes = 8192;
    HttpServer h(o);
    add_basic_routes(h.srv);
    h.start();
    RawSocket s(h.port);
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"));
    EXPECT_EQ(status_of(s.read_all(3s)), 431);
}

TEST(Http, ChunkedBodiesAreCappedLikeSizedOnes) {
    ServerOptions o;
    o.max_body = 1000;
    HttpServer h(o);
    add_basic_routes(h.srv);
    h.start();
    {
        RawSocket s(h.port);
        std::string req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 5; ++i) req += "12c\r\n" + std::string(300, 'a') + "\r\n";
        req += "0\r\n\r\n";
        ASSERT_TRUE(s.send(req));
        EXPECT_EQ(status_of(s.read_all(3s)), 413);
    }
    {
        RawSocket s(h.port);
        ASSERT_TRUE(s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"));
        EXPECT_EQ(status_of(s.read_all(3s)), 413);
    }
    Client c = h.client();
    auto r = c.Post("/echo", std::string(999, 'b'), "text/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST(Http, HalfClosedClientStillGetsItsAnswer) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.start();
    RawSocket s(h.port);
    ASSERT_TRUE(s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    s.half_close();
    const std::string reply = s.read_all(3s);
    EXPECT_EQ(status_of(reply), 200) << reply;
    EXPECT_NE(reply.find("\r\n\r\nhello"), std::string::npos) << reply;
}

TEST(Http, SlowLorisAndIdleSocketsDoNotBlockNewClients) {
    ServerOptions o;
    o.header_timeout = 1500ms;
    o.idle_timeout = 60s;
    HttpServer h(o);
    add_basic_routes(h.srv);
    h.start();
    std::vector<RawSocket> loris, idle;
    for (int i = 0; i < 300; ++i) {
        loris.emplace_back(h.port);
        loris.back().send("GET /hel");  // half a request line, never finished
    }
    for (int i = 0; i < 300; ++i) {
        idle.emplace_back(h.port);
        idle.back().send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");  // answered, then kept open
    }
    for (auto& s : idle) ASSERT_NE(s.read_until("hi", 5s).find("hi"), std::string::npos);
    std::vector<double> ms;
    for (int i = 0; i < 50; ++i) {
        const auto t0 = Clock::now();
        auto r = h.client().Get("/hello");
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        ASSERT_TRUE(r) << r.error_message();
        EXPECT_EQ(r->status, 200);
    }
    std::sort(ms.begin(), ms.end());
    EXPECT_LT(ms[ms.size() * 99 / 100], 100.0) << "p99 of a new client's request with 600 bad sockets open";
    // The slow-loris sockets are closed by the header timeout; the idle ones stay.
    EXPECT_TRUE(loris.front().closed_within(3s));
    EXPECT_FALSE(idle.front().closed_within(200ms));
}

TEST(Http, IdleKeepAliveConnectionsCloseAfterTheIdleTimeout) {
    ServerOptions o;
    o.idle_timeout = 300ms;
    HttpServer h(o);
    add_basic_routes(h.srv);
    h.start();
    RawSocket s(h.port);
    ASSERT_TRUE(s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_NE(s.read_until("hi").find("hi"), std::string::npos);
    EXPECT_TRUE(s.closed_within(3s));
}

TEST(Http, ConnectionsBeyondTheCapGet503WithRetryAfter) {
    ServerOptions o;
    o.max_connections = 5;
    HttpServer h(o);
    add_basic_routes(h.srv);
    h.start();
    std::vector<RawSocket> held;
    for (int i = 0; i < 5; ++i) {
        held.emplace_back(h.port);
        held.back().send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        held.back().read_until("hi");
    }
    RawSocket extra(h.port);
    const std::string reply = extra.read_all(3s);
    EXPECT_EQ(status_of(reply), 503) << reply;
    EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos);
    held.clear();
    const auto end = Clock::now() + 3s;
    int status = 0;
    while (Clock::now() < end && status != 200) {  // once the others closed, it serves again
        auto r = h.client().Get("/hello");
        status = r ? r->status : 0;
        if (status != 200) std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(status, 200);
}

TEST(Http, AClientThatStopsReadingAbortsTheStreamAfterTheWriteTimeout) {
    ServerOptions o;
    o.write_timeout = 500ms;
    HttpServer h(o);
    std::atomic<bool> aborted{false};
    std::atomic<size_t> written{0};
    h.srv.Get("/flood", [&](const Request&, Response& res) {
        auto st = res.defer();
        st->on_abort([&] { aborted = true; });
        Response head;
        head.set_header("Content-Type", "application/octet-stream");
        st->begin(std::move(head));
        const std::string piece(64u << 10, 'z');
        while (st->write(piece)) {
            written += piece.size();
            if (!st->wait_below(1u << 20)) break;
        }
    });
    h.start();
    RawSocket s(h.port, 4096);
    ASSERT_TRUE(s.send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto t0 = Clock::now();
    while (!aborted && Clock::now() - t0 < 10s) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(aborted.load());
    EXPECT_LT(Clock::now() - t0, 5s);
    EXPECT_LT(written.load(), 64u << 20);  // backpressure held the producer back
}

TEST(Http, StreamedUploadArrivesInPiecesAndDisconnectIsAnError) {
    HttpServer h;
    std::atomic<size_t> got{0};
    std::atomic<int> errors{0};
    h.srv.Post("/upload", [&](const Request&, Response& res, BodyReader& body) {
        try {
            body.read([&](const char*, size_t n) {
                got += n;
                return true;
            });
            res.set_content(std::to_string(got.load()), "text/plain");
        } catch (const BodyError& e) {
            ++errors;
            res.status = 400;
        }
    });
    h.start();
    Client c = h.client();
    size_t sent = 0;
    const size_t total = 20u << 20;
    Provider p = [&](std::string& out) {
        const size_t n = std::min<size_t>(1u << 20, total - sent);
        out.assign(n, 'q');
        sent += n;
        return sent < total;
    };
    auto r = c.Post("/upload", {}, p, "application/octet-stream", total);
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ(r->body, std::to_string(total));
    // Chunked too.
    got = 0;
    sent = 0;
    r = c.Post("/upload", {}, p, "application/octet-stream");
    ASSERT_TRUE(r) << r.error_message();
    EXPECT_EQ(r->body, std::to_string(total));
    // A client that goes away mid-body: the handler hears of it.
    {
        RawSocket s(h.port);
        s.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + std::string(1000, 'a'));
    }
    const auto end = Clock::now() + 5s;
    while (errors == 0 && Clock::now() < end) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(errors.load(), 1);
}

TEST(Http, ExpectContinueIsHonoured) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.start();
    RawSocket s(h.port);
    ASSERT_TRUE(s.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
    EXPECT_EQ(status_of(s.read_until("\r\n\r\n", 2s)), 100);
    ASSERT_TRUE(s.send("abc"));
    const std::string reply = s.read_until("abc", 2s);
    EXPECT_EQ(status_of(reply), 200);
}

TEST(Http, ClientReportsRefusedConnectionsAndTimeouts) {
    int port;
    {
        HttpServer h;
        h.start();
        port = h.port;
    }
    Client c("127.0.0.1", port);
    auto r = c.Get("/x");
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), Error::Connection);

    HttpServer slow;
    slow.srv.Get("/slow", [](const Request&, Response& res) {
        std::this_thread::sleep_for(800ms);
        res.set_content("late", "text/plain");
    });
    slow.start();
    Client d("http://127.0.0.1:" + std::to_string(slow.port));
    d.set_read_timeout(200ms);
    r = d.Get("/slow");
    EXPECT_FALSE(r);
    EXPECT_EQ(r.error(), Error::Timeout);
}

}  // namespace
}  // namespace hearth::http

namespace hearth::http {
namespace {

TEST(Http, BlockedHandlersDoNotHoldUpOthers) {
    HttpServer h;
    add_basic_routes(h.srv);
    h.srv.Get("/block", [](const Request&, Response& res) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a model load, a registry transfer
        res.set_content("done", "text/plain");
    });
    h.start();
    std::vector<std::thread> blockers;
    for (int i = 0; i < 8; ++i) blockers.emplace_back([&] { h.client().Get("/block"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = h.client().Get("/hello");
    const auto waited = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "hi");
    EXPECT_LT(waited, std::chrono::milliseconds(700)) << "the pool grows when every handler thread is blocked";
    for (auto& t : blockers) t.join();
}

}  // namespace
}  // namespace hearth::http
