// Python str semantics on UTF-8 bytes: code-point indexing, whitespace, strip/split, case
// mapping (ASCII), repr, JSON string escaping, float repr, HTML escaping.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tmpl::text {

// Decodes the code point at s[i] and advances i (invalid bytes decode as themselves).
char32_t next_cp(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
size_t cp_count(std::string_view s);
// Byte offsets of every code point start, plus s.size() at the end.
std::vector<size_t> cp_offsets(std::string_view s);

bool is_space(char32_t cp);  // str.isspace()

// str.strip/lstrip/rstrip: `chars` absent strips whitespace, else any of its code points.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit: no separator splits on whitespace runs and drops empty parts.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends = false);
std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);    // str.capitalize()
std::string title_method(std::string_view s);  // str.title()
std::string title_filter(std::string_view s);  // jinja2's |title

// Python repr of a str ('...' or "...").
void repr_string(std::string_view s, std::string& out);
// json.dumps of a str.
void json_string(std::string_view s, bool ensure_ascii, std::string& out);
// Python repr of a float: 1.0, 0.1, 1e+16, inf, nan.
std::string float_repr(double d);
// markupsafe.escape: & < > " ' -> &amp; &lt; &gt; &#34; &#39;
std::string html_escape(std::string_view s);

}  // namespace hearth::tmpl::text
