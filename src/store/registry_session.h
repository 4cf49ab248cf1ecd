// Internal to the registry client: what one pull or push shares across its requests — the
// repository's URL, the credential (token) for its origin, retries with backoff,
// cancellation, progress throttling, and turning registry answers into RegistryErrors.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "store/registry_client.h"
#include "store/registry_http.h"

namespace hearth::store::detail {

// `http[s]://host/v2/<ns>/<name>` (http:// when `insecure`); validates the name first.
std::string repository_url(const ModelName& name, bool insecure);

class Session {
public:
    Session(const ModelName& name, const RegistryOptions& opts, const std::atomic<bool>* cancel);

    const std::string& repo_url() const { return repo_url_; }  // scheme://host/v2/<ns>/<name>
    const RegistryOptions& opts() const { return opts_; }
    bool cancelled() const { return cancel_ && cancel_->load(); }
    void check_cancel() const;  // throws RegistryError(cancelled) when cancelled

    // Sends `req` with the session's credential (to the registry's origin only) and the
    // session's timeouts and cancel flag (or'ed with req.cancelled). A 401 with a Bearer or
    // Basic challenge gets a credential and one more try.
    HttpResponse send(HttpRequest req);

    // Runs `attempt` until it returns; TransportError (not cancelled), and RegistryError with
    // status 5xx or 429, are retried after an exponential backoff (at most max_retries
    // times). `stop` (optional) ends the backoff early. TransportErrors that end the loop
    // become RegistryErrors.
    void retrying(const std::string& what, const std::function<void()>& attempt,
                  const std::function<bool()>& stop = {});

    // Throws RegistryError for an unexpected answer: "<what>: <status text>: <registry's
    // message>", with the status and the registry's error code.
    [[noreturn]] void fail(const std::string& what, const HttpResponse& r) const;

private:
    const RegistryOptions& opts_;
    const std::atomic<bool>* cancel_;
    std::string host_;
    std::string repo_url_;
    std::string origin_;
    std::optional<RegistryCredentials> creds_;
    std::mutex mu_;               // guards authorization_ and token fetches
    std::string authorization_;   // "Bearer ..." / "Basic ..." or ""

    // Handles a 401: true when a new credential is available for a retry.
    bool authenticate(const HttpResponse& r, const std::string& used);
};

// Rate-limits per-blob progress (at most one report per 100 ms, plus the final one).
class Reporter {
public:
    explicit Reporter(const RegistryProgressFn& fn) : fn_(fn) {}
    void status(const std::string& s) {
        if (fn_) fn_(RegistryProgress{s, "", 0, 0});
    }
    void blob(const std::string& status, const Digest& d, uint64_t total, uint64_t completed, bool force = false);

private:
    const RegistryProgressFn& fn_;
    std::chrono::steady_clock::time_point last_{};
};

// The 12-hex-digit form Ollama's progress uses: "pulling 2af3b81862c6".
inline std::string blob_status(const char* verb, const Digest& d) { return std::string(verb) + " " + d.short_id(); }

}  // namespace hearth::store::detail
