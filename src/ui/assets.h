// ui/ owns Hearth's chat page: its sources (web/: HTML, CSS, JavaScript modules), the build
// that bundles them with the npm libraries pinned in package.json (build.mjs, esbuild) and
// embeds the result into the binary (ui.cmake, embed.cmake -> generated ui_assets.cpp), a
// fallback page for builds without Node.js, and the HTTP side: GET / for browsers and
// GET /ui/<file> with a strict CSP (routes.h).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace hearth::ui {

// One embedded file of the page.
struct Asset {
    const char* name;            // "index.html", "app.js", ...
    const char* content_type;
    const unsigned char* data;   // the file as built
    std::size_t size;
    const unsigned char* gz;     // its gzip encoding (nullptr: none)
    std::size_t gz_size;
    const char* etag;            // content hash, unquoted
};

// Every embedded file (generated at build time).
const std::vector<Asset>& assets();
// False when the build had no Node.js / npm packages and embedded the fallback page.
bool bundled_page();

inline const Asset* find_asset(std::string_view name) {
    for (const Asset& a : assets())
        if (name == a.name) return &a;
    return nullptr;
}

}  // namespace hearth::ui
