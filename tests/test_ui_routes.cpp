// The chat page's HTTP side (src/ui/routes.*): content negotiation on GET /, the embedded
// files under /ui/ with their content types, gzip as built (not compressed twice), ETags,
// the security headers, and the page staying reachable when API keys are required.
#include <gtest/gtest.h>

#include <string>

#include "http/client.h"
#include "server/server.h"
#include "support/loopback_server.h"
#include "ui/assets.h"
#include "ui/routes.h"

namespace hearth::ui {
namespace {

constexpr const char* kBrowserAccept =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

TEST(UiNegotiation, WantsHtml) {
    EXPECT_TRUE(wants_html(kBrowserAccept));
    EXPECT_TRUE(wants_html("TEXT/HTML"));
    EXPECT_TRUE(wants_html("application/json, text/html;q=0.5"));
    EXPECT_FALSE(wants_html(""));
    EXPECT_FALSE(wants_html("*/*"));  // curl
    EXPECT_FALSE(wants_html("application/json"));
    EXPECT_FALSE(wants_html("text/html;q=0, */*"));
    EXPECT_FALSE(wants_html("text/htmlx"));
}

TEST(UiNegotiation, AcceptsGzip) {
    EXPECT_TRUE(accepts_gzip("gzip, deflate, br, zstd"));
    EXPECT_TRUE(accepts_gzip("br;q=1.0, gzip;q=0.8"));
    EXPECT_TRUE(accepts_gzip("*"));
    EXPECT_FALSE(accepts_gzip(""));
    EXPECT_FALSE(accepts_gzip("identity"));
    EXPECT_FALSE(accepts_gzip("br, gzip;q=0"));
    EXPECT_FALSE(accepts_gzip("x-gzip2"));
}

TEST(UiAssets, EmbeddedFilesAreComplete) {
    const Asset* page = find_asset("index.html");
    ASSERT_NE(page, nullptr);
    EXPECT_GT(page->size, 100u);
    const std::string html(reinterpret_cast<const char*>(page->data), page->size);
    EXPECT_EQ(html.find("<script>"), std::string::npos) << "no inline script";
    if (!bundled_page()) {
        GTEST_SKIP() << "built without Node.js: only the fallback page is embedded";
    }
    EXPECT_NE(html.find("src=\"/ui/app.js\""), std::string::npos);
    for (const char* name : {"app.js", "app.css", "icon.svg"}) {
        const Asset* a = find_asset(name);
        ASSERT_NE(a, nullptr) << name;
        EXPECT_GT(a->size, 0u) << name;
        ASSERT_NE(a->gz, nullptr) << name;
        EXPECT_EQ(a->gz[0], 0x1f) << name;  // gzip magic
        EXPECT_EQ(a->gz[1], 0x8b) << name;
    }
}

class UiRoutes : public ::testing::Test {
protected:
    void start(std::vector<std::string> keys = {}) {
        server::ServerConfig cfg = test::LoopbackServer::test_config();
        cfg.api_keys = std::move(keys);
        loop_.start(cfg, server::directory_resolver(loop_.models_dir()));
    }
    // http::Client never decompresses: the bytes are seen as sent.
    http::Client client() { return loop_.client(); }
    static void expect_security_headers(const http::ClientResponse& r) {
        const std::string csp = r.get_header_value("Content-Security-Policy");
        EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
        EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
        EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
        EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
        EXPECT_EQ(csp.find("unsafe"), std::string::npos) << "no unsafe-inline / unsafe-eval: " << csp;
        EXPECT_EQ(r.get_header_value("X-Content-Type-Options"), "nosniff");
    }

    test::LoopbackServer loop_{{}};
};

TEST_F(UiRoutes, RootIsTextForApiClientsAndThePageForBrowsers) {
    start();
    auto c = client();
    auto r = c.Get("/");  // no Accept, as many API clients send
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "Hearth is running");
    r = c.Get("/", {{"Accept", "*/*"}});  // curl
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "Hearth is running");
    EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
    r = c.Get("/", {{"Accept", "application/json"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "Hearth is running");

    r = c.Get("/", {{"Accept", kBrowserAccept}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_TRUE(r->get_header_value("Content-Encoding").empty());
    expect_security_headers(*r);
    const Asset* page = find_asset("index.html");
    ASSERT_NE(page, nullptr);
    EXPECT_EQ(r->body, std::string(reinterpret_cast<const char*>(page->data), page->size));
    EXPECT_NE(r->get_header_value("Vary").find("Accept"), std::string::npos);

    auto h = c.Head("/", {{"Accept", kBrowserAccept}});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    EXPECT_TRUE(h->body.empty());
}

TEST_F(UiRoutes, GzipAsBuiltAndEtags) {
    start();
    if (!bundled_page()) GTEST_SKIP() << "built without Node.js: only the fallback page is embedded";
    auto c = client();
    const Asset* js = find_asset("app.js");
    ASSERT_NE(js, nullptr);
    auto r = c.Get("/ui/app.js", {{"Accept-Encoding", "gzip, deflate, br"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(r->get_header_value("Content-Encoding"), "gzip");
    EXPECT_EQ(r->body, std::string(reinterpret_cast<const char*>(js->gz), js->gz_size)) << "the build's gzip, once";
    expect_security_headers(*r);
    const std::string etag = r->get_header_value("ETag");
    EXPECT_FALSE(etag.empty());
    auto again = c.Get("/ui/app.js", {{"Accept-Encoding", "gzip"}, {"If-None-Match", etag}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    EXPECT_TRUE(again->body.empty());

    r = c.Get("/ui/app.js");  // no Accept-Encoding: the plain file
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->get_header_value("Content-Encoding").empty());
    EXPECT_EQ(r->body, std::string(reinterpret_cast<const char*>(js->data), js->size));
    EXPECT_NE(r->get_header_value("ETag"), etag);

    r = c.Get("/ui/app.css");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/css; charset=utf-8");
    r = c.Get("/ui/icon.svg");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/svg+xml");
    r = c.Get("/", {{"Accept", kBrowserAccept}, {"Accept-Encoding", "gzip"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Encoding"), "gzip");
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
}

TEST_F(UiRoutes, UnknownFilesAre404) {
    start();
    auto c = client();
    for (const char* path : {"/ui/nope.js", "/ui/index.html", "/ui/", "/ui/../api/tags", "/ui/.hidden"}) {
        auto r = c.Get(path);
        ASSERT_TRUE(r) << path;
        EXPECT_EQ(r->status, 404) << path;
    }
}

TEST_F(UiRoutes, PageLoadsWithoutAKeyWhileTheApiNeedsOne) {
    start({"secret-key"});
    auto c = client();
    auto r = c.Get("/", {{"Accept", kBrowserAccept}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
    if (bundled_page()) {
        r = c.Get("/ui/app.js");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
    }
    r = c.Get("/api/tags");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    r = c.Get("/api/tags", {{"Authorization", "Bearer secret-key"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace hearth::ui
