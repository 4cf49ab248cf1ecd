// Template lexer (see lexer.h). Mirrors jinja2.lexer: text is split at `{{`, `{%` and `{#`;
// inside a tag whitespace is skipped and end tags only count while brackets are balanced.
#include "template/lexer.h"

#include <algorithm>
#include <optional>

#include "template/text.h"
#include "template/value.h"

namespace hearth::tmpl {

void LexResult::position(uint32_t offset, int& line, int& column) const {
    auto it = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
    const size_t idx = size_t(it - line_starts.begin()) - 1;
    line = int(idx) + 1;
    column = int(offset - line_starts[idx]) + 1;
}

namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    explicit Lexer(LexResult& r) : r_(r), s_(r.source) {}

    void run() {
        size_t pos = 0;
        bool line_starting = true;
        while (pos < s_.size()) {
            size_t m = find_tag(pos);
            if (m == std::string_view::npos) {
                push_data(std::string(s_.substr(pos)), uint32_t(pos));
                break;
            }
            const char kind = s_[m + 1];
            const char sign = (m + 2 < s_.size() && (s_[m + 2] == '-' || s_[m + 2] == '+')) ? s_[m + 2] : 0;
            std::string text(s_.substr(pos, m - pos));
            strip_before(text, sign, kind != '{', line_starting);
            push_data(std::move(text), uint32_t(pos));
            size_t p = m + 2 + (sign ? 1 : 0);
            if (kind == '#') {
                pos = comment(m, p);
            } else if (size_t raw_end = raw_begin(p); kind == '%' && raw_end) {
                pos = raw(raw_end);
            } else {
                pos = tag(m, p, kind == '%');
            }
            line_starting = pos > 0 && s_[pos - 1] == '\n';
        }
        r_.tokens.push_back(Token{Tok::Eof, "", 0, 0, uint32_t(s_.size())});
    }

private:
    LexResult& r_;
    std::string_view s_;

    [[noreturn]] void error(size_t offset, const std::string& msg) {
        Failure f{TemplateErrorKind::Syntax, msg};
        r_.position(uint32_t(offset), f.line, f.column);
        throw f;
    }

    size_t find_tag(size_t pos) const {
        while (true) {
            size_t m = s_.find('{', pos);
            if (m == std::string_view::npos || m + 1 >= s_.size()) return std::string_view::npos;
            const char c = s_[m + 1];
            if (c == '{' || c == '%' || c == '#') return m;
            pos = m + 1;
        }
    }

    void push_data(std::string text, uint32_t offset) {
        if (!text.empty()) r_.tokens.push_back(Token{Tok::Data, std::move(text), 0, 0, offset});
    }

    // `-` strips all whitespace before the tag; lstrip_blocks strips spaces and tabs from the
    // start of the line up to a block or comment tag.
    void strip_before(std::string& text, char sign, bool block_or_comment, bool line_starting) {
        if (sign == '-') {
            text = text::strip(text, std::nullopt, false, true);
            return;
        }
        if (sign == '+' || !block_or_comment) return;
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos == 0 && !line_starting) return;
        if (l_pos == text.size()) return;
        for (size_t i = l_pos; i < text.size();)
            if (!text::is_space(text::next_cp(text, i))) return;
        text.resize(l_pos);
    }

    size_t skip_space(size_t p) const {
        while (p < s_.size()) {
            size_t q = p;
            if (!text::is_space(text::next_cp(s_, q))) break;
            p = q;
        }
        return p;
    }

    // After an end tag: `-` eats all whitespace, `+` nothing, plain eats one newline (trim_blocks).
    size_t after_end(size_t p, char mod, bool trim_newline) const {
        if (mod == '-') return skip_space(p);
        if (mod == 0 && trim_newline && p < s_.size() && s_[p] == '\n') return p + 1;
        return p;
    }

    size_t comment(size_t begin, size_t p) {
        if (p >= s_.size()) return p;  // jinja2 quirk: `{#` as the very last token ends the template
        size_t end = s_.find("#}", p);
        if (end == std::string_view::npos) error(begin, "missing end of comment tag");
        char mod = 0;
        if (end > p && (s_[end - 1] == '-' || s_[end - 1] == '+')) mod = s_[end - 1];
        return after_end(end + 2, mod, true);
    }

    // Returns the offset after `{% raw %}` when the tag at p (past `{%` and sign) is one.
    size_t raw_begin(size_t p) const {
        size_t q = skip_space(p);
        if (s_.compare(q, 3, "raw") != 0 || (q + 3 < s_.size() && name_char(s_[q + 3]))) return 0;
        q = skip_space(q + 3);
        if (s_.compare(q, 3, "-%}") == 0) return skip_space(q + 3);
        if (s_.compare(q, 2, "%}") == 0) return q + 2;
        return 0;
    }

    size_t raw(size_t body) {
        size_t search = body;
        while (true) {
            size_t m = s_.find("{%", search);
            if (m == std::string_view::npos) error(body, "missing end of raw directive");
            size_t q = m + 2;
            const char sign = (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ? s_[q] : 0;
            if (sign) ++q;
            q = skip_space(q);
            if (s_.compare(q, 6, "endraw") != 0) {
                search = m + 2;
                continue;
            }
            q = skip_space(q + 6);
            char mod = 0;
            if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) mod = s_[q++];
            if (s_.compare(q, 2, "%}") != 0) {
                search = m + 2;
                continue;
            }
            std::string text(s_.substr(body, m - body));
            strip_before(text, sign, true, false);
            push_data(std::move(text), uint32_t(body));
            return after_end(q + 2, mod, true);
        }
    }

    size_t tag(size_t begin, size_t p, bool block) {
        r_.tokens.push_back(Token{block ? Tok::BlockBegin : Tok::VarBegin, "", 0, 0, uint32_t(begin)});
        std::vector<char> balance;
        while (true) {
            p = skip_space(p);
            if (p >= s_.size()) error(begin, block ? "missing end of block tag '%}'" : "missing end of print tag '}}'");
            if (balance.empty()) {
                const char* close = block ? "%}" : "}}";
                char mod = 0;
                size_t q = p;
                if ((s_[q] == '-' || (block && s_[q] == '+')) && s_.compare(q + 1, 2, close) == 0) mod = s_[q++];
                if (s_.compare(q, 2, close) == 0) {
                    r_.tokens.push_back(Token{block ? Tok::BlockEnd : Tok::VarEnd, "", 0, 0, uint32_t(p)});
                    return after_end(q + 2, mod, block);
                }
            }
            const char c = s_[p];
            if (digit(c)) {
                p = number(p);
            } else if (name_start(c)) {
                size_t q = p;
                while (q < s_.size() && name_char(s_[q])) ++q;
                r_.tokens.push_back(Token{Tok::Name, std::string(s_.substr(p, q - p)), 0, 0, uint32_t(p)});
                p = q;
            } else if (c == '\'' || c == '"') {
                p = string_literal(p);
            } else {
                p = op(p, balance);
            }
        }
    }

    size_t op(size_t p, std::vector<char>& balance) {
        static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
        for (const char* t : two)
            if (s_.compare(p, 2, t) == 0) {
                r_.tokens.push_back(Token{Tok::Op, t, 0, 0, uint32_t(p)});
                return p + 2;
            }
        const char c = s_[p];
        static const std::string_view singles = "+-/*%~[](){}<>=.:|,;";
        if (singles.find(c) == std::string_view::npos) {
            std::string shown;
            size_t q = p;
            text::append_utf8(shown, text::next_cp(s_, q));
            error(p, "unexpected char '" + shown + "'");
        }
        if (c == '(' || c == '[' || c == '{') {
            if (balance.size() >= 256) error(p, "brackets nested too deeply");
            balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
        } else if (c == ')' || c == ']' || c == '}') {
            if (balance.empty()) error(p, std::string("unexpected '") + c + "'");
            if (balance.back() != c) error(p, std::string("unexpected '") + c + "', expected '" + balance.back() + "'");
            balance.pop_back();
        }
        r_.tokens.push_back(Token{Tok::Op, std::string(1, c), 0, 0, uint32_t(p)});
        return p + 1;
    }

    size_t number(size_t p) {
        const size_t start = p;
        auto digits = [&](size_t q, auto ok) {
            while (q < s_.size() && (ok(s_[q]) || (s_[q] == '_' && q + 1 < s_.size() && ok(s_[q + 1])))) ++q;
            return q;
        };
        auto is_dec = [](char c) { return digit(c); };
        if (s_[p] == '0' && p + 1 < s_.size() && std::string_view("xXoObB").find(s_[p + 1]) != std::string_view::npos) {
            const char base_c = char(s_[p + 1] | 0x20);
            const int base = base_c == 'x' ? 16 : base_c == 'o' ? 8 : 2;
            auto ok = [base](char c) {
                int v = hex_value(c);
                return v >= 0 && v < base;
            };
            size_t q = p + 2;
            if (q < s_.size() && s_[q] == '_') ++q;
            size_t end = digits(q, ok);
            if (end == q) error(p, "invalid integer literal");
            int64_t v = 0;
            for (size_t k = q; k < end; ++k) {
                if (s_[k] == '_') continue;
                if (v > (INT64_MAX - hex_value(s_[k])) / base) error(start, "integer literal too large");
                v = v * base + hex_value(s_[k]);
            }
            r_.tokens.push_back(Token{Tok::Int, std::string(s_.substr(p, end - p)), v, 0, uint32_t(start)});
            return end;
        }
        size_t q = digits(p, is_dec);
        bool is_float = false;
        if (q + 1 < s_.size() && s_[q] == '.' && digit(s_[q + 1])) {
            q = digits(q + 1, is_dec);
            is_float = true;
        }
        if (q < s_.size() && (s_[q] == 'e' || s_[q] == 'E')) {
            size_t e = q + 1;
            if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
            if (e < s_.size() && digit(s_[e])) {
                q = digits(e, is_dec);
                is_float = true;
            }
        }
        std::string lit;
        for (size_t k = p; k < q; ++k)
            if (s_[k] != '_') lit += s_[k];
        Token t{is_float ? Tok::Float : Tok::Int, lit, 0, 0, uint32_t(start)};
        if (is_float) {
            t.fval = std::strtod(lit.c_str(), nullptr);
        } else {
            for (char d : lit) {
                if (t.ival > (INT64_MAX - (d - '0')) / 10) error(start, "integer literal too large");
                t.ival = t.ival * 10 + (d - '0');
            }
        }
        r_.tokens.push_back(std::move(t));
        return q;
    }

    size_t string_literal(size_t p) {
        const char quote = s_[p];
        std::string out;
        size_t q = p + 1;
        while (true) {
            if (q >= s_.size()) error(p, std::string("unexpected char '") + quote + "'");
            const char c = s_[q];
            if (c == quote) break;
            if (c != '\\') {
                out += c;
                ++q;
                continue;
            }
            if (q + 1 >= s_.size()) error(p, std::string("unexpected char '") + quote + "'");
            const char e = s_[q + 1];
            q += 2;
            switch (e) {
                case '\n': break;
                case '\\': out += '\\'; break;
                case '\'': out += '\''; break;
                case '"': out += '"'; break;
                case 'a': out += '\a'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'v': out += '\v'; break;
                case 'x':
                case 'u':
                case 'U': {
                    const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    char32_t cp = 0;
                    for (int k = 0; k < n; ++k) {
                        int v = q < s_.size() ? hex_value(s_[q]) : -1;
                        if (v < 0) error(q, std::string("truncated \\") + e + " escape in string literal");
                        cp = cp * 16 + char32_t(v);
                        ++q;
                    }
                    if (cp > 0x10FFFF) error(q, "illegal Unicode character in string literal");
                    text::append_utf8(out, cp);
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {
                        char32_t cp = char32_t(e - '0');
                        for (int k = 0; k < 2 && q < s_.size() && s_[q] >= '0' && s_[q] <= '7'; ++k, ++q)
                            cp = cp * 8 + char32_t(s_[q] - '0');
                        text::append_utf8(out, cp);
                    } else if (e == 'N') {
                        error(q - 2, "\\N{...} escapes are not supported");
                    } else {
                        out += '\\';
                        out += e;
                    }
            }
        }
        r_.tokens.push_back(Token{Tok::String, std::move(out), 0, 0, uint32_t(p)});
        return q + 1;
    }
};

}  // namespace

LexResult lex(std::string_view source) {
    LexResult r;
    r.source.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
        if (source[i] == '\r') {
            r.source += '\n';
            if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
        } else {
            r.source += source[i];
        }
    }
    if (!r.source.empty() && r.source.back() == '\n') r.source.pop_back();
    if (r.source.size() > UINT32_MAX / 2) fail(TemplateErrorKind::Limit, "template source too large");
    r.line_starts.push_back(0);
    for (size_t i = 0; i < r.source.size(); ++i)
        if (r.source[i] == '\n') r.line_starts.push_back(uint32_t(i + 1));
    Lexer(r).run();
    return r;
}

}  // namespace hearth::tmpl
