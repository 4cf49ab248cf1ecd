// The chat page over HTTP: GET / gives browsers (Accept: text/html) the page and everyone
// else "Hearth is running"; GET /ui/<file> serves the embedded assets. Every page reply
// carries a strict Content-Security-Policy (scripts and styles from this origin only, no
// inline script, no eval, connect-src 'self', frame-ancestors 'none') and nosniff; a client
// that accepts gzip gets the build-time gzip body.
#pragma once

#include <string_view>

namespace hearth::http {
class Server;
}

namespace hearth::ui {

// The page's Content-Security-Policy header value.
extern const char* const kContentSecurityPolicy;

// True when an Accept header asks for HTML (a text/html media range with q > 0).
bool wants_html(std::string_view accept);
// True when an Accept-Encoding header allows gzip (gzip or *, with q > 0).
bool accepts_gzip(std::string_view accept_encoding);

// Registers GET / and GET /ui/<file>. Call before other routes that match "/".
void register_routes(http::Server& http);

}  // namespace hearth::ui
