// The CLI's daemon client (see client.h): http::Client requests, NDJSON streaming, error
// messages in Ollama's words, and the background start of `hearth serve`.
#include "cli/client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "http/client.h"
#include "server/config.h"
#include "store/store.h"

namespace hearth::cli {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct DaemonClient::Impl {
    std::unique_ptr<http::Client> http;
};

std::optional<std::string> error_body_message(const std::string& body) {
    try {
        const json j = json::parse(body);
        if (j.is_object() && j.contains("error")) {
            const json& e = j["error"];
            if (e.is_string()) return e.get<std::string>();
            if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
            return e.dump();
        }
    } catch (const json::exception&) {
    }
    return std::nullopt;
}

namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

// The message of an `{"error": …}` body (error_body_message), else the body itself, else the
// status line.
std::string error_message(int status, const std::string& body) {
    if (std::optional<std::string> m = error_body_message(body)) return *m;
    std::string trimmed = body;
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) trimmed.pop_back();
    if (!trimmed.empty() && trimmed.size() < 500) return trimmed;
    return "the daemon answered with status " + std::to_string(status);
}

json parse_body(const std::string& body) {
    if (body.empty()) return nullptr;
    try {
        return json::parse(body);
    } catch (const json::exception& e) {
        throw ClientError(200, std::string("the daemon sent invalid JSON: ") + e.what());
    }
}

}  // namespace

DaemonClient::DaemonClient() : impl_(std::make_unique<Impl>()) {
    try {
        const server::HostPort hp = server::parse_host(env_or("HEARTH_HOST", ""));
        host_ = hp.host;
        port_ = hp.port;
    } catch (const std::exception& e) {
        throw ClientError(0, std::string("HEARTH_HOST: ") + e.what());
    }
    // parse_host drops the brackets of "[v6]:port" and gives 127.0.0.1 for an empty host.
    // A wildcard listen address is reached through loopback.
    if (host_ == "0.0.0.0") host_ = "127.0.0.1";
    if (host_ == "::") host_ = "::1";
    api_key_ = env_or("HEARTH_API_KEY", "");
    impl_->http = std::make_unique<http::Client>(host_, port_);
    impl_->http->set_connection_timeout(std::chrono::seconds(5));
    // Generation, pulls and quantizing stream for as long as they take (Ollama sets no limit).
    impl_->http->set_read_timeout(std::chrono::hours(24));
    impl_->http->set_write_timeout(std::chrono::hours(1));
    http::Headers headers = {{"User-Agent", "hearth-cli"}};
    if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);
    impl_->http->set_default_headers(std::move(headers));
}

DaemonClient::~DaemonClient() = default;

std::string DaemonClient::address() const {
    const std::string h = host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_;
    return h + ":" + std::to_string(port_);
}

namespace {

// `r` holds no response: the transport error as the user should read it.
[[noreturn]] void throw_transport(const DaemonClient& c, const http::Result& r) {
    if (r.error() == http::Error::Connection)
        throw ClientError(0, "could not connect to the hearth daemon at " + c.address() +
                                 ", is it running? (start it with `hearth serve`)");
    if (r.error() == http::Error::Canceled) throw ClientError(0, "cancelled");
    throw ClientError(0, "talking to the hearth daemon at " + c.address() + ": " + r.error_message());
}

json checked(const DaemonClient& c, const http::Result& r) {
    if (!r) throw_transport(c, r);
    if (r->status >= 400) throw ClientError(r->status, error_message(r->status, r->body));
    return parse_body(r->body);
}

}  // namespace

bool DaemonClient::ping() {
    http::Client probe(host_, port_);
    probe.set_connection_timeout(std::chrono::seconds(2));
    probe.set_read_timeout(std::chrono::seconds(5));
    auto r = probe.Get("/");
    return r && r->status == 200;
}

json DaemonClient::get(const std::string& path) { return checked(*this, impl_->http->Get(path)); }

json DaemonClient::post(const std::string& path, const json& body) {
    return checked(*this, impl_->http->Post(path, body.dump(), "application/json"));
}

json DaemonClient::del(const std::string& path, const json& body) {
    return checked(*this, impl_->http->Delete(path, body.dump(), "application/json"));
}

int DaemonClient::head(const std::string& path) {
    auto r = impl_->http->Head(path);
    if (!r) throw_transport(*this, r);
    return r->status;
}

bool DaemonClient::stream(const std::string& path, const json& body, const std::function<bool(const json&)>& on_object) {
    // The receiver does not learn the status, so every byte is read as NDJSON, and the bytes
    // before the first object handed to on_object are kept: an error answer (4xx/5xx) is one
    // `{"error": …}` object or plain text, never an object to show. After a bad line (an
    // error object, or not JSON) the rest is drained, up to a bound, so that an error
    // answer's status still arrives and decides the message.
    constexpr size_t kMaxKept = 1u << 20;
    std::string pending;     // a partial line
    std::string error_body;  // the bytes before the first object shown (all of an error answer)
    bool delivered = false;  // an object went to on_object
    bool stopped = false;    // on_object asked to stop
    bool invalid = false;    // bad_line is a line that is not JSON (else an error object)
    std::optional<std::string> bad_line;
    size_t drained = 0;  // bytes after the bad line
    // false: the line is bad (bad_line) or on_object asked to stop (stopped).
    auto handle_line = [&](std::string_view line) -> bool {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) return true;
        json obj;
        try {
            obj = json::parse(line);
        } catch (const json::exception& e) {
            invalid = true;
            bad_line = e.what();
            return false;
        }
        if (obj.is_object() && obj.contains("error") && !obj["error"].is_null()) {
            bad_line = std::string(line);
            return false;
        }
        delivered = true;
        if (!on_object(obj)) {
            stopped = true;
            return false;
        }
        return true;
    };
    std::exception_ptr failure;  // thrown by on_object
    const http::Receiver receiver = [&](const char* data, size_t n) -> bool {
        if (!delivered && error_body.size() < kMaxKept) error_body.append(data, std::min(n, kMaxKept - error_body.size()));
        if (bad_line) return (drained += n) < kMaxKept;
        try {
            pending.append(data, n);
            size_t start = 0;
            for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
                if (!handle_line(std::string_view(pending).substr(start, nl - start))) {
                    if (stopped) return false;
                    drained = pending.size() - nl - 1;
                    pending.clear();
                    return drained < kMaxKept;
                }
            }
            pending.erase(0, start);
            return true;
        } catch (...) {
            failure = std::current_exception();
            return false;
        }
    };
    const http::Headers headers = {{"Accept", "application/x-ndjson"}};
    auto r = impl_->http->Post(path, headers, body.dump(), "application/json", receiver);
    if (failure) std::rethrow_exception(failure);
    if (stopped) return false;
    if (r && r->status >= 400) throw ClientError(r->status, error_message(r->status, error_body.empty() ? r->body : error_body));
    if (!r && !bad_line) throw_transport(*this, r);
    if (!bad_line && !pending.empty() && !handle_line(pending) && stopped) return false;  // a last object without a newline
    if (bad_line) {
        const int status = r ? r->status : 200;  // cut short past the bound: it was a 2xx answer
        if (invalid) throw ClientError(status, "the daemon sent an invalid line: " + *bad_line);
        throw ClientError(status, error_message(status, *bad_line));
    }
    return true;
}

int DaemonClient::upload_file(const std::string& path, const std::string& file,
                              const std::function<void(uint64_t, uint64_t)>& progress) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ClientError(0, "cannot open " + file + ": " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        throw ClientError(0, "cannot stat " + file + ": " + std::strerror(e));
    }
    const uint64_t total = static_cast<uint64_t>(st.st_size);
    std::string read_error;
    // Sent with chunked transfer encoding, as Ollama's clients do: the daemon's body-size cap
    // (HEARTH_MAX_BODY, for JSON requests) applies to bodies that declare a Content-Length.
    uint64_t sent = 0;
    // A read error ends the body early: the daemon then refuses the blob (its digest does not
    // match) and the read error is what gets reported.
    const http::Provider provider = [&](std::string& out) -> bool {
        if (!read_error.empty()) return false;
        char buf[1 << 16];
        const ssize_t got = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(sent));
        if (got < 0) {
            read_error = std::strerror(errno);
            return false;
        }
        if (got == 0) {
            if (sent != total) read_error = "the file shrank while uploading";
            return false;
        }
        out.append(buf, static_cast<size_t>(got));
        sent += static_cast<uint64_t>(got);
        if (progress) progress(sent, total);
        return true;
    };
    auto r = impl_->http->Post(path, http::Headers{}, provider, "application/octet-stream");
    ::close(fd);
    if (!read_error.empty()) throw ClientError(0, "reading " + file + ": " + read_error);
    checked(*this, r);
    return r->status;
}

// ---- Autostart

std::string daemon_log_path() {
    const fs::path models = store::default_models_root();
    fs::path base = models.lexically_normal();
    if (!base.has_filename()) base = base.parent_path();  // a trailing slash
    return (base.parent_path() / "logs" / "server.log").string();
}

namespace {

// Starts `<this binary> serve` in a new session, detached from us (double fork, so init
// reaps it), stdin from /dev/null, stdout and stderr appended to `log`. Returns its pid.
pid_t spawn_daemon(const std::string& log) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw ClientError(0, std::string("pipe: ") + std::strerror(errno));
    const pid_t child = fork();
    if (child < 0) throw ClientError(0, std::string("fork: ") + std::strerror(errno));
    if (child == 0) {
        ::close(fds[0]);
        setsid();
        const pid_t grandchild = fork();
        if (grandchild != 0) {  // the intermediate: report the daemon's pid (or -1) and leave
            const pid_t v = grandchild;
            (void)!::write(fds[1], &v, sizeof v);
            _exit(0);
        }
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0) {
            const int e = errno;
            (void)!::write(fds[1], &e, sizeof e);
            _exit(127);
        }
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        char self[] = "/proc/self/exe";
        char arg0[] = "hearth";
        char arg1[] = "serve";
        char* argv[] = {arg0, arg1, nullptr};
        execv(self, argv);
        const int e = errno;
        (void)!::write(fds[1], &e, sizeof e);
        _exit(127);
    }
    ::close(fds[1]);
    int st = 0;
    waitpid(child, &st, 0);
    pid_t pid = -1;
    const bool got_pid = ::read(fds[0], &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid) && pid > 0;
    int exec_errno = 0;
    const ssize_t n = ::read(fds[0], &exec_errno, sizeof exec_errno);  // EOF: exec succeeded
    ::close(fds[0]);
    if (!got_pid) throw ClientError(0, "could not start the hearth daemon (fork failed)");
    if (n == static_cast<ssize_t>(sizeof exec_errno))
        throw ClientError(0, std::string("could not start the hearth daemon: ") + std::strerror(exec_errno) + " (log: " + log + ")");
    return pid;
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

void DaemonClient::ensure_daemon() {
    {
        http::Client probe(host_, port_);
        probe.set_connection_timeout(std::chrono::seconds(2));
        probe.set_read_timeout(std::chrono::seconds(10));
        auto r = probe.Get("/");
        if (r) return;  // something answers: the requests themselves say what it thinks
        if (r.error() != http::Error::Connection) throw_transport(*this, r);
    }
    if (!server::is_loopback_host(host_))
        throw ClientError(0, "could not connect to the hearth daemon at " + address() +
                                 " (only a daemon on a loopback address is started automatically)");
    const std::string log = daemon_log_path();
    std::error_code ec;
    fs::create_directories(fs::path(log).parent_path(), ec);
    if (ec) throw ClientError(0, "cannot create " + fs::path(log).parent_path().string() + ": " + ec.message());
    const pid_t pid = spawn_daemon(log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        if (ping()) break;
        if (!process_alive(pid))
            throw ClientError(0, "the hearth daemon stopped while starting; see " + log);
        if (std::chrono::steady_clock::now() > deadline)
            throw ClientError(0, "the hearth daemon (pid " + std::to_string(pid) + ") did not answer on " + address() +
                                     " within 10 s; see " + log);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "hearth: started a daemon on %s (pid %d, log: %s)\n", address().c_str(), static_cast<int>(pid), log.c_str());
}

void run_client_command(const std::function<void()>& body) {
    try {
        body();
    } catch (const CLI::Error&) {
        throw;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "Error: %s\n", e.what());
        throw CLI::RuntimeError(1);
    }
}

}  // namespace hearth::cli
