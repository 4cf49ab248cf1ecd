// Python str semantics on UTF-8 bytes (see text.h).
#include "template/text.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace hearth::tmpl::text {

char32_t next_cp(std::string_view s, size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](size_t k) { return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
    auto bits = [&](size_t k) { return char32_t(static_cast<unsigned char>(s[i + k]) & 0x3F); };
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    if (b0 >= 0xC2 && b0 < 0xE0 && cont(1)) {
        char32_t cp = (char32_t(b0 & 0x1F) << 6) | bits(1);
        i += 2;
        return cp;
    }
    if (b0 >= 0xE0 && b0 < 0xF0 && cont(1) && cont(2)) {
        char32_t cp = (char32_t(b0 & 0x0F) << 12) | (bits(1) << 6) | bits(2);
        if (cp >= 0x800) {
            i += 3;
            return cp;
        }
    }
    if (b0 >= 0xF0 && b0 < 0xF5 && cont(1) && cont(2) && cont(3)) {
        char32_t cp = (char32_t(b0 & 0x07) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            i += 4;
            return cp;
        }
    }
    ++i;  // invalid byte: stands for itself
    return b0;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

size_t cp_count(std::string_view s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++n) next_cp(s, i);
    return n;
}

std::vector<size_t> cp_offsets(std::string_view s) {
    std::vector<size_t> offs;
    offs.reserve(s.size() + 1);
    for (size_t i = 0; i < s.size();) {
        offs.push_back(i);
        next_cp(s, i);
    }
    offs.push_back(s.size());
    return offs;
}

bool is_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace {

bool in_set(char32_t cp, const std::optional<std::string>& chars) {
    if (!chars) return is_space(cp);
    for (size_t i = 0; i < chars->size();)
        if (next_cp(*chars, i) == cp) return true;
    return false;
}

// Simple case mapping: ASCII, Latin-1, Greek, Cyrillic basics.
char32_t cp_upper(char32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

char32_t cp_lower(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

bool is_cased(char32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF; }

void append_upper(std::string& out, char32_t c) {
    if (c == 0xDF) {
        out += "SS";
        return;
    }
    append_utf8(out, cp_upper(c));
}

bool printable(char32_t c) {
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) ||
        c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
        return false;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E) return false;
    if ((c >= 0xD800 && c <= 0xF8FF) || c == 0xFFFE || c == 0xFFFF || c >= 0xF0000) return false;
    if (c >= 0xE0000 && c <= 0xE007F) return false;
    return true;
}

void hex_escape(std::string& out, const char* prefix, unsigned value, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, value);
    out += buf;
}

}  // namespace

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
    size_t begin = 0, end = s.size();
    if (left) {
        while (begin < end) {
            size_t j = begin;
            if (!in_set(next_cp(s, j), chars)) break;
            begin = j;
        }
    }
    if (right) {
        while (end > begin) {
            size_t start = end - 1;
            while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
            size_t j = start;
            char32_t cp = next_cp(s, j);
            if (j != end) {  // a stray continuation byte: treat it alone
                start = end - 1;
                cp = static_cast<unsigned char>(s[start]);
            }
            if (!in_set(cp, chars)) break;
            end = start;
        }
    }
    return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep) {
        size_t pos = 0;
        while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
            size_t hit = s.find(*sep, pos);
            if (hit == std::string_view::npos) break;
            out.emplace_back(s.substr(pos, hit - pos));
            pos = hit + sep->size();
        }
        out.emplace_back(s.substr(pos));
        return out;
    }
    size_t i = 0;
    while (i < s.size()) {
        size_t j = i;
        while (j < s.size()) {  // skip whitespace
            size_t k = j;
            if (!is_space(next_cp(s, k))) break;
            j = k;
        }
        if (j >= s.size()) break;
        if (maxsplit >= 0 && int64_t(out.size()) >= maxsplit) {
            out.emplace_back(s.substr(j));
            return out;
        }
        size_t start = j;
        while (j < s.size()) {
            size_t k = j;
            if (is_space(next_cp(s, k))) break;
            j = k;
        }
        out.emplace_back(s.substr(start, j - start));
        i = j;
    }
    return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep) {
        size_t end = s.size();
        while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
            if (end < sep->size()) break;
            size_t hit = s.rfind(*sep, end - sep->size());
            if (hit == std::string_view::npos) break;
            out.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
            end = hit;
        }
        out.emplace_back(s.substr(0, end));
        return {out.rbegin(), out.rend()};
    }
    // Whitespace: work on code points from the right.
    std::vector<size_t> offs = cp_offsets(s);
    size_t n = offs.size() - 1;
    auto space_at = [&](size_t k) {
        size_t b = offs[k];
        return is_space(next_cp(s, b));
    };
    size_t j = n;
    while (true) {
        while (j > 0 && space_at(j - 1)) --j;
        if (j == 0) break;
        if (maxsplit >= 0 && int64_t(out.size()) >= maxsplit) {
            out.emplace_back(s.substr(0, offs[j]));
            break;
        }
        size_t end = j;
        while (j > 0 && !space_at(j - 1)) --j;
        out.emplace_back(s.substr(offs[j], offs[end] - offs[j]));
    }
    return {out.rbegin(), out.rend()};
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
    std::vector<std::string> out;
    size_t start = 0, i = 0;
    while (i < s.size()) {
        size_t at = i;
        char32_t cp = next_cp(s, i);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
                   cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) continue;
        if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
        out.emplace_back(s.substr(start, (keepends ? i : at) - start));
        start = i;
    }
    if (start < s.size()) out.emplace_back(s.substr(start));
    return out;
}

std::string replace(std::string_view s, std::string_view from, std::string_view to, int64_t count) {
    std::string out;
    if (from.empty()) {
        int64_t done = 0;
        size_t i = 0;
        while (i <= s.size()) {
            if (count < 0 || done < count) {
                out += to;
                ++done;
            }
            if (i == s.size()) break;
            size_t j = i;
            next_cp(s, j);
            out.append(s.substr(i, j - i));
            i = j;
        }
        return out;
    }
    size_t pos = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        size_t hit = s.find(from, pos);
        if (hit == std::string_view::npos) break;
        out.append(s.substr(pos, hit - pos));
        out += to;
        pos = hit + from.size();
        ++done;
    }
    out.append(s.substr(pos));
    return out;
}

std::string upper(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) append_upper(out, next_cp(s, i));
    return out;
}

std::string lower(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) append_utf8(out, cp_lower(next_cp(s, i)));
    return out;
}

std::string capitalize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool first = true;
    for (size_t i = 0; i < s.size();) {
        char32_t cp = next_cp(s, i);
        if (first)
            append_upper(out, cp);
        else
            append_utf8(out, cp_lower(cp));
        first = false;
    }
    return out;
}

std::string title_method(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool prev_cased = false;
    for (size_t i = 0; i < s.size();) {
        char32_t cp = next_cp(s, i);
        if (prev_cased)
            append_utf8(out, cp_lower(cp));
        else
            append_upper(out, cp);
        prev_cased = is_cased(cp);
    }
    return out;
}

std::string title_filter(std::string_view s) {
    // jinja2: split on runs of [-\s({\[<], upper-case the first character of every other piece.
    std::string out;
    out.reserve(s.size());
    bool at_word_start = true;
    for (size_t i = 0; i < s.size();) {
        char32_t cp = next_cp(s, i);
        bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || is_space(cp);
        if (sep) {
            append_utf8(out, cp);
            at_word_start = true;
        } else if (at_word_start) {
            append_upper(out, cp);
            at_word_start = false;
        } else {
            append_utf8(out, cp_lower(cp));
        }
    }
    return out;
}

void repr_string(std::string_view s, std::string& out) {
    const bool has_single = s.find('\'') != std::string_view::npos;
    const bool has_double = s.find('"') != std::string_view::npos;
    const char quote = (has_single && !has_double) ? '"' : '\'';
    out += quote;
    for (size_t i = 0; i < s.size();) {
        size_t at = i;
        char32_t cp = next_cp(s, i);
        if (cp == char32_t(quote) || cp == '\\') {
            out += '\\';
            out += char(cp);
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp >= 0x80 && i - at == 1) {
            hex_escape(out, "\\x", cp, 2);  // an invalid byte
        } else if (!printable(cp)) {
            if (cp < 0x100)
                hex_escape(out, "\\x", cp, 2);
            else if (cp < 0x10000)
                hex_escape(out, "\\u", cp, 4);
            else
                hex_escape(out, "\\U", cp, 8);
        } else {
            out.append(s.substr(at, i - at));
        }
    }
    out += quote;
}

void json_string(std::string_view s, bool ensure_ascii, std::string& out) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        size_t at = i;
        char32_t cp = next_cp(s, i);
        switch (cp) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            case '\b': out += "\\b"; continue;
            case '\f': out += "\\f"; continue;
            default: break;
        }
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
            if (cp >= 0x10000) {
                char32_t v = cp - 0x10000;
                hex_escape(out, "\\u", 0xD800 + (v >> 10), 4);
                hex_escape(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
            } else {
                hex_escape(out, "\\u", cp, 4);
            }
        } else {
            out.append(s.substr(at, i - at));
        }
    }
    out += '"';
}

std::string float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    std::string out;
    size_t p = 0;
    if (sci[0] == '-') {
        out += '-';
        p = 1;
    }
    size_t e = sci.find('e');
    std::string digits;
    for (size_t k = p; k < e; ++k)
        if (sci[k] != '.') digits += sci[k];
    int exp10 = std::stoi(sci.substr(e + 1));
    int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
    if (decpt <= -4 || decpt > 16) {
        out += digits[0];
        if (digits.size() > 1) {
            out += '.';
            out += digits.substr(1);
        }
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        out += eb;
    } else if (decpt <= 0) {
        out += "0.";
        out.append(size_t(-decpt), '0');
        out += digits;
    } else if (size_t(decpt) >= digits.size()) {
        out += digits;
        out.append(size_t(decpt) - digits.size(), '0');
        out += ".0";
    } else {
        out += digits.substr(0, size_t(decpt));
        out += '.';
        out += digits.substr(size_t(decpt));
    }
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace hearth::tmpl::text
