// One HTTP exchange over libcurl for the registry client, with redirects followed by hand
// so the Authorization header never leaves its origin (see registry_http.h).
#include "store/registry_http.h"

#include "store/registry_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <mutex>

namespace hearth::store::detail {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlUrl {
    CURLU* u = curl_url();
    ~CurlUrl() { curl_url_cleanup(u); }
    std::string get(CURLUPart part, unsigned flags = 0) const {
        char* out = nullptr;
        if (curl_url_get(u, part, &out, flags) != CURLUE_OK || !out) return {};
        std::string s(out);
        curl_free(out);
        return s;
    }
};

// The state of one exchange, shared with curl's callbacks.
struct Exchange {
    const HttpRequest* req = nullptr;
    HttpResponse resp;
    bool redirecting = false;  // the current answer is a redirect we will follow
    bool started = false;      // on_start was called for the current answer
    bool too_big = false;
    std::exception_ptr error;  // thrown by on_start / sink
    uint64_t sent = 0;         // request body bytes handed to curl

    bool is_redirect() const {
        const long s = resp.status;
        return req->follow_redirects && (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) &&
               !resp.header("location").empty();
    }
};

size_t on_header(char* buf, size_t size, size_t n, void* ud) {
    auto* ex = static_cast<Exchange*>(ud);
    const size_t len = size * n;
    std::string_view line(buf, len);
    if (line.substr(0, 5) == "HTTP/") {
        // A new answer (an interim 100, a redirect, the final one): start over.
        ex->resp.headers.clear();
        ex->resp.body.clear();
        ex->started = false;
        const size_t sp = line.find(' ');
        ex->resp.status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
        return len;
    }
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && colon > 0)
        ex->resp.headers.emplace_back(lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
    return len;
}

size_t on_body(char* data, size_t size, size_t n, void* ud) {
    auto* ex = static_cast<Exchange*>(ud);
    const size_t len = size * n;
    if (ex->is_redirect()) return len;  // a redirect's body: ignored
    const bool ok = ex->resp.status >= 200 && ex->resp.status < 300;
    if (ok && ex->req->sink) {
        try {
            if (!ex->started) {
                ex->started = true;
                if (ex->req->on_start) ex->req->on_start(ex->resp);
            }
            ex->req->sink(data, len);
        } catch (...) {
            ex->error = std::current_exception();
            return 0;  // stops the transfer
        }
        return len;
    }
    if (ex->resp.body.size() + len > ex->req->max_body) {
        ex->too_big = true;
        return 0;
    }
    ex->resp.body.append(data, len);
    return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* ud) {
    auto* ex = static_cast<Exchange*>(ud);
    const HttpRequest& r = *ex->req;
    const uint64_t total = r.body_fd >= 0 ? r.body_size : r.body.size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, total - ex->sent));
    if (want == 0) return 0;
    size_t got = want;
    if (r.body_fd >= 0) {
        ssize_t k;
        do {
            k = ::pread(r.body_fd, buf, want, static_cast<off_t>(r.body_offset + ex->sent));
        } while (k < 0 && errno == EINTR);
        if (k <= 0) return CURL_READFUNC_ABORT;  // the file shrank or failed
        got = static_cast<size_t>(k);
    } else {
        std::copy_n(r.body.data() + ex->sent, want, buf);
    }
    ex->sent += got;
    if (r.on_upload) r.on_upload(ex->sent);
    return got;
}

int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* ex = static_cast<Exchange*>(ud);
    return ex->req->cancelled && ex->req->cancelled() ? 1 : 0;
}

struct EasyDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
    const std::string key = lower(name);
    for (const auto& [k, v] : headers)
        if (k == key) return v;
    return {};
}

std::string url_origin(const std::string& url) {
    CurlUrl u;
    if (curl_url_set(u.u, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        throw std::invalid_argument("invalid URL: " + url.substr(0, 200));
    const std::string scheme = lower(u.get(CURLUPART_SCHEME));
    if (scheme != "http" && scheme != "https") throw std::invalid_argument("not an http(s) URL: " + url.substr(0, 200));
    return scheme + "://" + lower(u.get(CURLUPART_HOST)) + ":" + u.get(CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

std::string resolve_url(const std::string& base, const std::string& ref) {
    CurlUrl u;
    if (curl_url_set(u.u, CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
        curl_url_set(u.u, CURLUPART_URL, ref.c_str(), 0) != CURLUE_OK)
        throw std::invalid_argument("invalid URL: " + ref.substr(0, 200));
    std::string out = u.get(CURLUPART_URL);
    if (out.empty()) throw std::invalid_argument("invalid URL: " + ref.substr(0, 200));
    return out;
}

std::string url_escape(std::string_view s) {
    char* e = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
    if (!e) throw std::bad_alloc();
    std::string out(e);
    curl_free(e);
    return out;
}

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string AuthChallenge::param(std::string_view key) const {
    for (const auto& [k, v] : params)
        if (k == key) return v;
    return {};
}

AuthChallenge parse_auth_challenge(std::string_view h) {
    AuthChallenge c;
    h = trim(h);
    const size_t sp = h.find(' ');
    c.scheme = lower(h.substr(0, sp));
    if (sp == std::string_view::npos) return c;
    size_t i = sp + 1;
    while (i < h.size()) {
        while (i < h.size() && (h[i] == ' ' || h[i] == ',' || h[i] == '\t')) ++i;
        const size_t eq = h.find('=', i);
        if (eq == std::string_view::npos) break;
        std::string key = lower(trim(h.substr(i, eq - i)));
        i = eq + 1;
        std::string value;
        if (i < h.size() && h[i] == '"') {
            for (++i; i < h.size() && h[i] != '"'; ++i) {
                if (h[i] == '\\' && i + 1 < h.size()) ++i;
                value += h[i];
            }
            ++i;  // the closing quote
        } else {
            const size_t end = std::min(h.find(',', i), h.size());
            value = std::string(trim(h.substr(i, end - i)));
            i = end;
        }
        c.params.emplace_back(std::move(key), std::move(value));
    }
    return c;
}

HttpResponse http_send(const HttpRequest& req) {
    global_init();
    std::string url = req.url;
    const bool has_body = req.body_fd >= 0 || !req.body.empty() || req.method == "POST" || req.method == "PUT" ||
                          req.method == "PATCH";
    for (int hop = 0;; ++hop) {
        std::string origin;
        try {
            origin = url_origin(url);
        } catch (const std::invalid_argument& e) {
            throw TransportError(e.what());
        }
        std::unique_ptr<CURL, EasyDeleter> h(curl_easy_init());
        if (!h) throw TransportError("cannot create a curl handle");
        Exchange ex;
        ex.req = &req;
        char errbuf[CURL_ERROR_SIZE] = {0};
        CURL* c = h.get();
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, req.connect_timeout_s);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, req.stall_timeout_s);
        curl_easy_setopt(c, CURLOPT_USERAGENT, req.user_agent.c_str());
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ex);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

        std::unique_ptr<curl_slist, SlistDeleter> headers;
        auto add_header = [&](const std::string& line) {
            curl_slist* l = curl_slist_append(headers.get(), line.c_str());
            if (!l) throw std::bad_alloc();
            (void)headers.release();
            headers.reset(l);
        };
        for (const std::string& line : req.headers) add_header(line);
        // The credential belongs to one origin; anything else (a CDN, another host, a
        // downgraded scheme) never sees it.
        if (!req.authorization.empty() && origin == req.auth_origin) add_header("Authorization: " + req.authorization);
        add_header("Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

        const uint64_t body_size = req.body_fd >= 0 ? req.body_size : req.body.size();
        if (req.method == "HEAD") {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (req.method == "POST") {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_size));
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &ex);
        } else if (has_body && req.method != "GET") {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &ex);
            if (req.method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        } else if (req.method != "GET") {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
        }

        const CURLcode rc = curl_easy_perform(c);
        if (ex.error) std::rethrow_exception(ex.error);
        if (rc != CURLE_OK) {
            if (rc == CURLE_ABORTED_BY_CALLBACK && req.cancelled && req.cancelled())
                throw TransportError("cancelled", true);
            if (ex.too_big)  // not worth a retry
                throw RegistryError(req.method + " " + url + ": the answer is larger than " +
                                        std::to_string(req.max_body) + " bytes",
                                    static_cast<int>(ex.resp.status));
            std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
            throw TransportError(req.method + " " + url + ": " + detail);
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        ex.resp.status = status;
        if (ex.is_redirect()) {
            if (hop >= 10) throw TransportError(req.method + " " + req.url + ": more than 10 redirects");
            std::string next;
            try {
                next = resolve_url(url, ex.resp.header("location"));
                const std::string next_origin = url_origin(next);
                if (!req.allow_http && next_origin.rfind("http://", 0) == 0)
                    throw TransportError(req.method + " " + req.url + ": refusing a redirect to plain http (" +
                                         next.substr(0, 200) + ")");
            } catch (const std::invalid_argument& e) {
                throw TransportError(req.method + " " + req.url + ": bad redirect: " + e.what());
            }
            url = std::move(next);
            continue;
        }
        if (status >= 200 && status < 300 && !ex.started && req.on_start) req.on_start(ex.resp);
        ex.resp.url = url;
        return std::move(ex.resp);
    }
}

}  // namespace hearth::store::detail
