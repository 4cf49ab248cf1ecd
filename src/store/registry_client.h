// A client for the OCI distribution protocol as Ollama's registry speaks it (pull and push
// of models between a registry and the store; see store/store.h for the folder). Built into
// its own library, hearth_registry (libcurl), so hearth_store stays free of networking.
//
// A name `[host[:port]/][namespace/]name[:tag]` maps to
//   https://host/v2/<namespace>/<name>/manifests/<tag>      (http:// when `insecure`)
//   https://host/v2/<namespace>/<name>/blobs/<digest>
// Pull: the manifest is fetched and validated, missing blobs are downloaded into the store
// (resuming a `-partial` file with Range; blobs above `parallel_threshold` in several ranges
// at once), each verified against its digest before it becomes visible, then the manifest
// bytes are written as received. Push: each blob the registry lacks is uploaded (POST, PATCH
// chunks, PUT ?digest=), then the manifest. Transport errors, 5xx and 429 are retried with
// exponential backoff; other 4xx are not.
//
// Authentication: a 401 carrying `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
// makes the client fetch a token from the realm and retry with `Authorization: Bearer`. The
// token goes only to the registry's own origin (a redirect elsewhere, e.g. a blob on a CDN,
// is followed without it). Basic credentials are used only when configured for the
// registry's host: RegistryOptions::credentials, or the environment variable
//   HEARTH_REGISTRY_AUTH="host[:port]=user:password[,host2=user2:password2...]"
// (sent to that host's token realm, or to the host itself on a `Basic` challenge).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "store/store.h"

namespace hearth::store {

// A failed registry operation. status: the registry's HTTP status (0 for transport errors,
// invalid input or bad data); code: the registry's `errors[0].code` when it sent one.
class RegistryError : public std::runtime_error {
public:
    RegistryError(const std::string& message, int status = 0, std::string code = {}, bool cancelled = false)
        : std::runtime_error(message), status_(status), code_(std::move(code)), cancelled_(cancelled) {}
    int status() const { return status_; }
    const std::string& code() const { return code_; }
    bool cancelled() const { return cancelled_; }

private:
    int status_;
    std::string code_;
    bool cancelled_;
};

struct RegistryCredentials {
    std::string user;
    std::string password;
};

// The credentials HEARTH_REGISTRY_AUTH configures for `host` (`host` or `host:port`, matched
// case-insensitively), if any.
std::optional<RegistryCredentials> credentials_from_env(std::string_view host);

struct RegistryOptions {
    bool insecure = false;  // plain http (and http redirects / token realms)
    int max_retries = 6;    // per request, after the first try
    std::chrono::milliseconds retry_delay{500};      // doubled after each retry ...
    std::chrono::milliseconds max_retry_delay{30000};  // ... up to this
    uint64_t parallel_threshold = 64ull << 20;  // blobs larger than this download in parts
    int max_parts = 8;                          // ranges fetched at once for one blob
    uint64_t min_part_size = 16ull << 20;       // no part smaller than this (except the last)
    uint64_t upload_chunk = 64ull << 20;        // PATCH size when pushing
    size_t max_manifest_bytes = 4u << 20;
    long connect_timeout_s = 30;
    long stall_timeout_s = 120;  // a transfer making no progress this long is retried
    // Basic credentials for the name's host; unset: credentials_from_env(host).
    std::optional<RegistryCredentials> credentials;
    std::string user_agent = "hearth";
};

// One progress report, in the shape of Ollama's pull/push progress objects: status alone
// ("pulling manifest", "verifying sha256 digest", "writing manifest", "success";
// "retrieving manifest", "pushing manifest"), or per blob "pulling <12 hex>" / "pushing <12
// hex>" with digest, total and completed bytes.
struct RegistryProgress {
    std::string status;
    std::string digest;  // "" for status-only reports
    uint64_t total = 0;
    uint64_t completed = 0;
};
// Called on the thread that runs pull()/push(), never concurrently.
using RegistryProgressFn = std::function<void(const RegistryProgress&)>;

struct PullResult {
    Digest manifest_digest;  // sha256 of the manifest bytes
    Manifest manifest;
    uint64_t downloaded = 0;  // bytes fetched (0 when every blob was present)
};

class RegistryClient {
public:
    explicit RegistryClient(Store store, RegistryOptions options = {});

    // Downloads `name` into the store. On failure the store has no new manifest and no
    // blob that did not verify; a partly downloaded blob stays as its resumable partial.
    // Throws RegistryError (cancelled() when `cancel` was set).
    PullResult pull(const ModelName& name, const RegistryProgressFn& progress = {},
                    const std::atomic<bool>* cancel = nullptr) const;
    // Uploads the local model `name` (its blobs, then its manifest bytes as stored).
    // Returns the manifest's digest.
    Digest push(const ModelName& name, const RegistryProgressFn& progress = {},
                const std::atomic<bool>* cancel = nullptr) const;

    // `http[s]://host/v2/<ns>/<name>`
    std::string repository_url(const ModelName& name) const;
    const RegistryOptions& options() const { return opts_; }

private:
    Store store_;
    RegistryOptions opts_;
};

}  // namespace hearth::store
