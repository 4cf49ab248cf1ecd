// The etcd v3 client over the JSON gateway: each unary call is one POST to /v3/... on the
// endpoint that answered last (then the others in turn); the watch is one long POST whose
// chunked body carries `{"result":{...}}` objects.
#include "cluster/etcd.h"

#include <array>
#include <exception>

#include <nlohmann/json.hpp>

#include "http/client.h"

namespace hearth::cluster {

using nlohmann::json;

// ---- Base64

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    const size_t rest = bytes.size() - i;
    if (rest == 1) {
        const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : text) {
        const int v = b64_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xff);
        }
    }
    return out;
}

// ---- Endpoints

std::vector<std::string> parse_etcd_endpoints(std::string_view spec) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= spec.size()) {
        size_t comma = spec.find(',', pos);
        if (comma == std::string_view::npos) comma = spec.size();
        std::string_view e = spec.substr(pos, comma - pos);
        pos = comma + 1;
        while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
        while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
        if (e.empty()) continue;
        for (std::string_view scheme : {"etcd://", "http://"})
            if (e.rfind(scheme, 0) == 0) {
                e.remove_prefix(scheme.size());
                break;
            }
        if (e.find("://") != std::string_view::npos)
            throw std::invalid_argument("etcd endpoint '" + std::string(e) + "': only etcd:// and http:// are supported");
        while (!e.empty() && e.back() == '/') e.remove_suffix(1);
        if (e.find('/') != std::string_view::npos)
            throw std::invalid_argument("etcd endpoint '" + std::string(e) + "' has a path");
        std::string host, port;
        if (!e.empty() && e.front() == '[') {
            const size_t close = e.find(']');
            if (close == std::string_view::npos) throw std::invalid_argument("etcd endpoint '" + std::string(e) + "': unclosed [");
            host = std::string(e.substr(0, close + 1));
            std::string_view rest = e.substr(close + 1);
            if (!rest.empty()) {
                if (rest.front() != ':') throw std::invalid_argument("etcd endpoint '" + std::string(e) + "' is malformed");
                port = std::string(rest.substr(1));
            }
        } else {
            const size_t colon = e.rfind(':');
            host = std::string(e.substr(0, colon));
            if (colon != std::string_view::npos) port = std::string(e.substr(colon + 1));
            if (host.find(':') != std::string::npos)
                throw std::invalid_argument("etcd endpoint '" + std::string(e) + "': write IPv6 addresses as [addr]:port");
        }
        if (host.empty() || host == "[]") throw std::invalid_argument("etcd endpoint '" + std::string(e) + "' has no host");
        if (port.empty()) port = "2379";
        int p = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || p > 65535) throw std::invalid_argument("etcd endpoint '" + std::string(e) + "': bad port");
            p = p * 10 + (c - '0');
        }
        if (p < 1 || p > 65535) throw std::invalid_argument("etcd endpoint '" + std::string(e) + "': bad port");
        out.push_back("http://" + host + ":" + port);
    }
    if (out.empty()) throw std::invalid_argument("no etcd endpoint in '" + std::string(spec) + "'");
    return out;
}

// ---- JSON helpers

namespace {

// int64 fields come as strings ("5"); numbers are accepted too. Absent: 0 (proto3 default).
int64_t i64(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return 0;
    if (it->is_string()) {
        try {
            return std::stoll(it->get<std::string>());
        } catch (const std::exception&) {
            return 0;
        }
    }
    if (it->is_number()) return it->get<int64_t>();
    return 0;
}

std::string b64_field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return {};
    return base64_decode(it->get<std::string>()).value_or(std::string{});
}

KeyValue to_kv(const json& j) {
    KeyValue kv;
    kv.key = b64_field(j, "key");
    kv.value = b64_field(j, "value");
    kv.create_revision = i64(j, "create_revision");
    kv.mod_revision = i64(j, "mod_revision");
    kv.version = i64(j, "version");
    kv.lease = i64(j, "lease");
    return kv;
}

int64_t header_revision(const json& j) {
    auto it = j.find("header");
    return it != j.end() && it->is_object() ? i64(*it, "revision") : 0;
}

// The first JSON object of `text` (the gateway may append trailer text to error bodies).
json parse_first(std::string_view text) {
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (!j.is_discarded()) return j;
    const size_t open = text.find('{');
    if (open == std::string_view::npos) return json();
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = open; i < text.size(); ++i) {
        const char c = text[i];
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && --depth == 0) {
            j = json::parse(text.substr(open, i + 1 - open), nullptr, false);
            return j.is_discarded() ? json() : j;
        }
    }
    return json();
}

// The message of an error reply: {"error":"...","message":"...","code":5} or
// {"error":{"message":"..."}} (streamed calls).
std::string error_message(const json& j, std::string_view fallback) {
    if (j.is_object()) {
        if (auto it = j.find("message"); it != j.end() && it->is_string()) return it->get<std::string>();
        if (auto it = j.find("error"); it != j.end()) {
            if (it->is_string()) return it->get<std::string>();
            if (it->is_object()) {
                if (auto m = it->find("message"); m != it->end() && m->is_string()) return m->get<std::string>();
            }
        }
    }
    return std::string(fallback.substr(0, 200));
}

// The key just past every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        if (uint8_t(end.back()) < 0xff) {
            end.back() = char(uint8_t(end.back()) + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

// Splits a byte stream into top-level JSON objects (newline-separated or not).
class ObjectSplitter {
public:
    // Appends bytes; calls `fn` with each complete object's text.
    template <class Fn>
    void feed(const char* data, size_t size, Fn&& fn) {
        for (size_t i = 0; i < size; ++i) {
            const char c = data[i];
            if (depth_ == 0) {
                if (c != '{') continue;  // newlines and other separators between objects
                cur_.clear();
            }
            cur_ += c;
            if (in_str_) {
                if (esc_) esc_ = false;
                else if (c == '\\') esc_ = true;
                else if (c == '"') in_str_ = false;
            } else if (c == '"') {
                in_str_ = true;
            } else if (c == '{') {
                ++depth_;
            } else if (c == '}' && --depth_ == 0) {
                fn(cur_);
                cur_.clear();
            }
        }
    }

private:
    std::string cur_;
    int depth_ = 0;
    bool in_str_ = false, esc_ = false;
};

}  // namespace

// ---- WatchCancel

void WatchCancel::cancel() {
    cancelled_ = true;
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) stop_();
}

// ---- Etcd

Etcd::Etcd(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {
    if (endpoints_.empty()) throw std::invalid_argument("etcd: no endpoint");
}

std::string Etcd::current_endpoint() const {
    std::lock_guard<std::mutex> lk(mu_);
    return ever_ok_ ? endpoints_[current_] : std::string{};
}

size_t Etcd::first_endpoint() const {
    std::lock_guard<std::mutex> lk(mu_);
    return current_;
}

void Etcd::mark_good(size_t idx) {
    std::lock_guard<std::mutex> lk(mu_);
    current_ = idx;
    ever_ok_ = true;
}

Etcd::Reply Etcd::request(const std::string& path, const std::string& body) {
    const size_t n = endpoints_.size();
    const size_t start = first_endpoint();
    std::string failures;
    for (size_t i = 0; i < n; ++i) {
        const size_t idx = (start + i) % n;
        http::Client client(endpoints_[idx]);
        client.set_connection_timeout(timeout_);
        client.set_read_timeout(timeout_);
        client.set_write_timeout(timeout_);
        http::Result res = client.Post(path, body, "application/json");
        std::string why;
        if (!res) {
            why = res.error_message();
        } else if (res->status >= 500) {
            why = "HTTP " + std::to_string(res->status) + ": " + error_message(parse_first(res->body), res->body);
        } else {
            mark_good(idx);
            return Reply{res->status, std::move(res->body)};
        }
        if (!failures.empty()) failures += "; ";
        failures += endpoints_[idx] + ": " + why;
    }
    throw EtcdError("etcd unreachable (" + failures + ")");
}

std::string Etcd::call(const std::string& path, const std::string& body) {
    Reply r = request(path, body);
    if (r.status != 200) {
        throw EtcdError("etcd " + path + ": HTTP " + std::to_string(r.status) + ": " + error_message(parse_first(r.body), r.body));
    }
    return std::move(r.body);
}

namespace {

json parse_reply(const std::string& path, const std::string& body) {
    json j = parse_first(body);
    if (!j.is_object()) throw EtcdError("etcd " + path + ": the reply is not JSON");
    if (j.contains("error")) throw EtcdError("etcd " + path + ": " + error_message(j, body));
    return j;
}

}  // namespace

int64_t Etcd::grant(int64_t ttl_seconds) {
    const json j = parse_reply("/v3/lease/grant", call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_seconds)}}.dump()));
    const int64_t id = i64(j, "ID");
    if (id == 0) throw EtcdError("etcd /v3/lease/grant: no lease id in the reply");
    return id;
}

int64_t Etcd::keep_alive(int64_t lease) {
    // A stream in gRPC; one request in the body gives one {"result":{...}} object back.
    json j = parse_reply("/v3/lease/keepalive", call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump()));
    if (auto it = j.find("result"); it != j.end() && it->is_object()) j = *it;
    return i64(j, "TTL");  // absent (0) when the lease is gone
}

void Etcd::revoke(int64_t lease) {
    const Reply r = request("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump());
    if (r.status == 200 || r.status == 404) return;  // 404: "requested lease not found"
    throw EtcdError("etcd /v3/lease/revoke: HTTP " + std::to_string(r.status) + ": " + error_message(parse_first(r.body), r.body));
}

int64_t Etcd::put(const std::string& key, const std::string& value, int64_t lease) {
    json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (lease != 0) body["lease"] = std::to_string(lease);
    return header_revision(parse_reply("/v3/kv/put", call("/v3/kv/put", body.dump())));
}

int64_t Etcd::del(const std::string& key) {
    return header_revision(parse_reply("/v3/kv/deleterange", call("/v3/kv/deleterange", json{{"key", base64_encode(key)}}.dump())));
}

std::optional<KeyValue> Etcd::get(const std::string& key) {
    const json j = parse_reply("/v3/kv/range", call("/v3/kv/range", json{{"key", base64_encode(key)}}.dump()));
    auto it = j.find("kvs");
    if (it == j.end() || !it->is_array() || it->empty()) return std::nullopt;
    return to_kv((*it)[0]);
}

Etcd::Range Etcd::get_prefix(const std::string& prefix) {
    const json body = {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}};
    const json j = parse_reply("/v3/kv/range", call("/v3/kv/range", body.dump()));
    Range r;
    r.revision = header_revision(j);
    if (auto it = j.find("kvs"); it != j.end() && it->is_array())
        for (const json& kv : *it) r.kvs.push_back(to_kv(kv));
    return r;
}

void Etcd::watch_prefix(const std::string& prefix, int64_t start_revision,
                        const std::function<void(const std::vector<WatchEvent>&, int64_t revision)>& on_events,
                        WatchCancel& cancel, const std::function<void()>& on_created) {
    json create = {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_end(prefix))}};
    if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
    const std::string body = json{{"create_request", create}}.dump();

    const size_t n = endpoints_.size();
    const size_t start = first_endpoint();
    std::string failures;
    for (size_t i = 0; i < n; ++i) {
        if (cancel.cancelled()) return;
        const size_t idx = (start + i) % n;
        http::Client client(endpoints_[idx]);
        client.set_connection_timeout(timeout_);
        client.set_read_timeout(std::chrono::hours(24 * 365));  // a quiet watch is normal
        client.set_write_timeout(timeout_);
        {
            std::lock_guard<std::mutex> lk(cancel.mu_);
            cancel.stop_ = [&client] { client.stop(); };
        }
        struct Clear {
            WatchCancel& c;
            ~Clear() {
                std::lock_guard<std::mutex> lk(c.mu_);
                c.stop_ = nullptr;
            }
        } clear{cancel};
        if (cancel.cancelled()) return;

        bool created = false;
        std::string stream_error;
        int64_t compacted = 0;
        std::exception_ptr thrown;
        std::string head;  // the first bytes, for a non-200 reply's message
        ObjectSplitter split;
        const http::Receiver receiver = [&](const char* data, size_t size) {
            if (!created && head.size() < 4096) head.append(data, std::min<size_t>(size, 4096 - head.size()));
            bool go_on = true;
            split.feed(data, size, [&](const std::string& text) {
                if (!go_on) return;
                const json j = json::parse(text, nullptr, false);
                if (!j.is_object()) return;
                if (j.contains("error")) {
                    stream_error = error_message(j, text);
                    go_on = false;
                    return;
                }
                auto rit = j.find("result");
                if (rit == j.end() || !rit->is_object()) return;
                const json& r = *rit;
                if (const int64_t c = i64(r, "compact_revision"); c > 0) {
                    compacted = c;
                    go_on = false;
                    return;
                }
                if (r.value("canceled", false)) {
                    stream_error = "etcd canceled the watch" + (r.contains("cancel_reason") ? ": " + r["cancel_reason"].dump() : "");
                    go_on = false;
                    return;
                }
                try {
                    if (r.value("created", false) && !created) {
                        created = true;
                        mark_good(idx);
                        if (on_created) on_created();
                    }
                    auto evs = r.find("events");
                    if (evs != r.end() && evs->is_array() && !evs->empty()) {
                        std::vector<WatchEvent> events;
                        for (const json& e : *evs) {
                            WatchEvent ev;
                            ev.type = e.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::Delete : WatchEvent::Type::Put;
                            if (auto kv = e.find("kv"); kv != e.end() && kv->is_object()) ev.kv = to_kv(*kv);
                            events.push_back(std::move(ev));
                        }
                        int64_t rev = header_revision(r);
                        for (const WatchEvent& ev : events) rev = std::max(rev, ev.kv.mod_revision);
                        on_events(events, rev);
                    }
                } catch (...) {
                    thrown = std::current_exception();
                    go_on = false;
                }
            });
            return go_on && !cancel.cancelled();
        };
        http::Result res = client.Post("/v3/watch", {}, body, "application/json", receiver);
        if (cancel.cancelled()) return;
        if (thrown) std::rethrow_exception(thrown);
        if (compacted > 0)
            throw EtcdCompacted("etcd: revision " + std::to_string(start_revision) + " was compacted (now " +
                                    std::to_string(compacted) + ")",
                                compacted);
        if (!stream_error.empty()) throw EtcdError("etcd watch: " + stream_error);
        if (created) throw EtcdError("etcd watch: the stream ended (" + (res ? std::string("closed by etcd") : res.error_message()) + ")");
        // Never established: try the next endpoint.
        std::string why;
        if (!res) why = res.error_message();
        else if (res->status != 200) why = "HTTP " + std::to_string(res->status) + ": " + error_message(parse_first(head), head);
        else why = "the stream ended before etcd confirmed the watch";
        if (res && res->status >= 400 && res->status < 500) throw EtcdError("etcd watch: " + why);
        if (!failures.empty()) failures += "; ";
        failures += endpoints_[idx] + ": " + why;
    }
    throw EtcdError("etcd unreachable (" + failures + ")");
}

}  // namespace hearth::cluster
