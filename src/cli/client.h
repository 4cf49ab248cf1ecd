// A small client of the daemon's Ollama API for the CLI commands (run, pull, push, list, ps,
// show, stop, rm, cp, create), talking to it the way Ollama's CLI talks to Ollama:
//  - the address comes from HEARTH_HOST (default 127.0.0.1:11434), a key from HEARTH_API_KEY
//    (sent as `Authorization: Bearer KEY`);
//  - requests and answers are JSON; streamed answers are NDJSON, one callback per object;
//  - an answer `{"error": "…"}` (any status, or a line of a stream) becomes ClientError with
//    that message, which the commands print as `Error: <message>` (exit status 1);
//  - ensure_daemon() starts `hearth serve` in the background when nothing answers on a
//    loopback address. Its output is appended to `logs/server.log` beside the models folder
//    (`~/.hearth/logs/server.log` by default, `$HEARTH_MODELS/../logs/server.log` when
//    HEARTH_MODELS is set), and one line on stderr says so.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::cli {

// An error to show the user as `Error: <message>`. status: the HTTP status, 0 when the
// daemon could not be reached.
class ClientError : public std::runtime_error {
public:
    ClientError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

class DaemonClient {
public:
    // Reads HEARTH_HOST and HEARTH_API_KEY; throws ClientError when HEARTH_HOST is malformed.
    DaemonClient();
    ~DaemonClient();
    DaemonClient(const DaemonClient&) = delete;
    DaemonClient& operator=(const DaemonClient&) = delete;

    const std::string& host() const { return host_; }
    int port() const { return port_; }
    std::string address() const;  // "127.0.0.1:11434" ("[::1]:11434" for IPv6)

    // True when `GET /` answers.
    bool ping();
    // Makes sure a daemon answers: when none does and the address is loopback, starts
    // `hearth serve` detached, waits (up to ~10 s) until it answers and says so on stderr.
    // Throws ClientError when that fails or the address is not loopback.
    void ensure_daemon();

    // GET / DELETE / POST with a JSON body; the answer parsed (null for an empty body).
    nlohmann::json get(const std::string& path);
    nlohmann::json post(const std::string& path, const nlohmann::json& body);
    nlohmann::json del(const std::string& path, const nlohmann::json& body);
    // POST with NDJSON streaming: `on_object` sees each object as it arrives and may return
    // false to stop (the request is then cancelled and stream() returns false). A line
    // holding "error" throws ClientError.
    bool stream(const std::string& path, const nlohmann::json& body,
                const std::function<bool(const nlohmann::json&)>& on_object);
    // HEAD: the status (e.g. 200 / 404 for /api/blobs/<digest>).
    int head(const std::string& path);
    // POST a file's bytes as the body, streamed from disk; `progress(sent, total)` after each
    // chunk. Returns the status on success (2xx); throws ClientError otherwise.
    int upload_file(const std::string& path, const std::string& file, const std::function<void(uint64_t, uint64_t)>& progress);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string host_;
    int port_ = 0;
    std::string api_key_;
};

// The message of an error answer's body: `{"error": "…"}` (Ollama's shape) or
// `{"error": {"message": "…"}}` (OpenAI's); another `error` value as its JSON text. nullopt
// when the body is not such an object.
std::optional<std::string> error_body_message(const std::string& body);

// Where an autostarted daemon's output goes (see the top of this file).
std::string daemon_log_path();

// Runs a daemon command: a ClientError or other exception is printed as `Error: <message>`
// on stderr and turned into exit status 1 (CLI::RuntimeError), as Ollama's CLI does.
void run_client_command(const std::function<void()>& body);

}  // namespace hearth::cli
