#include "ui/routes.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "http/server.h"
#include "ui/assets.h"

namespace hearth::ui {

const char* const kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// True when the comma-separated header lists one of `tokens` without "q=0".
bool lists_token(std::string_view header, std::initializer_list<std::string_view> tokens) {
    while (!header.empty()) {
        const size_t comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
        const size_t semi = item.find(';');
        const std::string_view value = trim(item.substr(0, semi));
        if (std::none_of(tokens.begin(), tokens.end(), [&](std::string_view t) { return iequals(value, t); })) continue;
        double q = 1.0;
        std::string_view params = semi == std::string_view::npos ? std::string_view{} : item.substr(semi + 1);
        while (!params.empty()) {
            const size_t next = params.find(';');
            const std::string_view p = trim(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
            if (p.size() > 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') q = std::strtod(std::string(p.substr(2)).c_str(), nullptr);
        }
        if (q > 0) return true;
    }
    return false;
}

void set_page_headers(http::Response& res) {
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cross-Origin-Opener-Policy", "same-origin");
    res.set_header("Cross-Origin-Resource-Policy", "same-origin");
}

// Sends an embedded file: 304 when If-None-Match names it, the gzip body when the client
// takes gzip.
void send_asset(const http::Request& req, http::Response& res, const Asset& a, const char* vary) {
    const bool gz = a.gz != nullptr && accepts_gzip(req.get_header_value("Accept-Encoding"));
    const std::string etag = std::string("\"") + a.etag + (gz ? "-gz\"" : "\"");
    set_page_headers(res);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", etag);
    res.set_header("Vary", vary);
    const std::string inm = req.get_header_value("If-None-Match");
    if (!inm.empty() && (inm == etag || inm == "*" || inm.find(etag) != std::string::npos)) {
        res.status = 304;
        return;
    }
    if (gz) res.set_header("Content-Encoding", "gzip");
    const unsigned char* data = gz ? a.gz : a.data;
    const size_t size = gz ? a.gz_size : a.size;
    res.set_content(std::string(reinterpret_cast<const char*>(data), size), a.content_type);
}

}  // namespace

bool wants_html(std::string_view accept) { return lists_token(accept, {"text/html", "application/xhtml+xml"}); }

bool accepts_gzip(std::string_view accept_encoding) { return lists_token(accept_encoding, {"gzip", "*"}); }

void register_routes(http::Server& http) {
    http.Get("/", [](const http::Request& req, http::Response& res) {
        if (!wants_html(req.get_header_value("Accept"))) {
            res.set_header("Vary", "Accept");
            res.set_content("Hearth is running", "text/plain");
            return;
        }
        const Asset* page = find_asset("index.html");
        if (page == nullptr) {
            res.set_content("Hearth is running", "text/plain");
            return;
        }
        send_asset(req, res, *page, "Accept, Accept-Encoding");
    });
    http.Get(R"(/ui/([A-Za-z0-9_-][A-Za-z0-9._-]*))", [](const http::Request& req, http::Response& res) {
        const Asset* a = find_asset(req.matches[1].str());
        if (a == nullptr || std::string_view(a->name) == "index.html") {
            res.status = 404;
            res.set_header("X-Content-Type-Options", "nosniff");
            res.set_content("404 page not found", "text/plain");
            return;
        }
        send_asset(req, res, *a, "Accept-Encoding");
    });
}

}  // namespace hearth::ui
