// Internal to the registry client (store/registry_client.h): one HTTP exchange over libcurl.
// Redirects are followed here, not by curl, so that an Authorization header only ever goes
// to the origin (scheme, host, port) it was issued for: a blob GET that the registry
// redirects to a CDN reaches the CDN without it. Bodies of 2xx answers can be streamed to a
// sink; other bodies are kept (capped) so errors can quote the registry's message.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::store::detail {

// A transport failure (connection refused, reset, timeout, a truncated body...): no HTTP
// status to go by. `cancelled` when the caller's cancel check stopped it.
class TransportError : public std::runtime_error {
public:
    TransportError(const std::string& message, bool cancelled = false)
        : std::runtime_error(message), cancelled_(cancelled) {}
    bool cancelled() const { return cancelled_; }

private:
    bool cancelled_;
};

struct HttpResponse {
    long status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
    std::string body;  // non-2xx bodies, or 2xx bodies when the request had no sink (capped)
    std::string url;   // the URL that answered (after redirects)

    // The first header of this name (case-insensitive), or "".
    std::string header(std::string_view name) const;
};

struct HttpRequest {
    std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
    // Sent as the Authorization header, but only to URLs whose origin is `auth_origin`.
    std::string authorization;
    std::string auth_origin;
    // The body: `body`, or `body_size` bytes of file `body_fd` from `body_offset`.
    std::string body;
    int body_fd = -1;
    uint64_t body_offset = 0;
    uint64_t body_size = 0;
    // GET/HEAD follow redirects (up to 10); https -> http only when allow_http.
    bool follow_redirects = true;
    bool allow_http = false;
    // Gets the status and headers of the final answer once, before any of its body bytes
    // (only when its status is 2xx); may throw to stop the exchange.
    std::function<void(const HttpResponse&)> on_start;
    // Gets the body bytes of a 2xx answer; may throw to stop the exchange.
    std::function<void(const char*, size_t)> sink;
    // Polled during the exchange; true stops it (TransportError with cancelled()).
    std::function<bool()> cancelled;
    // Bytes of the request body sent so far (uploads).
    std::function<void(uint64_t)> on_upload;
    size_t max_body = 4u << 20;  // non-sink bodies beyond this are an error
    long connect_timeout_s = 30;
    long stall_timeout_s = 120;  // less than 1 byte/s for this long is a transport error
    std::string user_agent = "hearth";
};

// Performs the exchange. Throws TransportError, RegistryError (a body over max_body), or
// rethrows what on_start / sink threw.
HttpResponse http_send(const HttpRequest& req);

// `scheme://host:port` of an http(s) URL, lowercased, default ports filled in. Throws
// std::invalid_argument for anything else.
std::string url_origin(const std::string& url);
// `ref` (absolute, or relative such as "/v2/...") resolved against `base`.
std::string resolve_url(const std::string& base, const std::string& ref);
// Percent-encodes a query parameter value.
std::string url_escape(std::string_view s);

// `Bearer realm="...",service="...",scope="..."` -> scheme ("bearer", lowercased) and the
// parameters (keys lowercased, quoted values unescaped).
struct AuthChallenge {
    std::string scheme;
    std::vector<std::pair<std::string, std::string>> params;
    std::string param(std::string_view key) const;
};
AuthChallenge parse_auth_challenge(std::string_view header);

std::string base64(std::string_view bytes);

}  // namespace hearth::store::detail
