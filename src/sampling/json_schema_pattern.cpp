// ECMAScript pattern (JSON Schema "pattern") -> GBNF for the JSON-encoded contents of the
// strings it matches. A practical subset: literals, escapes (\d \w \s and their negations,
// \n \t \xHH \uHHHH with surrogate pairs, identity escapes), classes with ranges and
// negation, ".", groups ((...), (?:...), (?<name>...)), alternation, and the quantifiers
// * + ? {n} {n,} {n,m} (lazy forms generate the same language). "^" and "$" are honoured at
// the ends of top-level alternatives; elsewhere, as with lookaround, backreferences, \b
// and \p{...}, the pattern is refused.
//
// Generated text is always a valid JSON string body: '"' and '\' come out escaped, as do
// control characters (short escapes where JSON has them, else \u00XX). Every string the
// grammar produces decodes to one the pattern matches; \s is generated as ASCII whitespace.
#include <algorithm>

#include "sampling/json_schema.h"

namespace hearth::json_schema_detail {

namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

constexpr int kMaxRepeat = 10000;

Ranges normalize(Ranges r) {
    std::sort(r.begin(), r.end());
    Ranges merged;
    for (const auto& [lo, hi] : r) {
        if (!merged.empty() && lo <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, hi);
        else merged.emplace_back(lo, hi);
    }
    Ranges out;  // without surrogates
    for (const auto& [lo, hi] : merged) {
        if (hi < 0xD800 || lo > 0xDFFF) {
            out.emplace_back(lo, hi);
            continue;
        }
        if (lo < 0xD800) out.emplace_back(lo, 0xD7FF);
        if (hi > 0xDFFF) out.emplace_back(0xE000, hi);
    }
    return out;
}

Ranges complement(const Ranges& r) {
    Ranges out;
    uint32_t next = 0;
    for (const auto& [lo, hi] : normalize(r)) {
        if (lo > next) out.emplace_back(next, lo - 1);
        next = hi + 1;
    }
    if (next <= 0x10FFFF) out.emplace_back(next, 0x10FFFF);
    return normalize(out);
}

Ranges minus(const Ranges& a, const Ranges& b) {  // a \ b
    Ranges nb = complement(b), out;
    for (const auto& [alo, ahi] : normalize(a))
        for (const auto& [blo, bhi] : nb) {
            const uint32_t lo = std::max(alo, blo), hi = std::min(ahi, bhi);
            if (lo <= hi) out.emplace_back(lo, hi);
        }
    return normalize(out);
}

bool contains(const Ranges& r, uint32_t cp) {
    for (const auto& [lo, hi] : r)
        if (cp >= lo && cp <= hi) return true;
    return false;
}

const Ranges kDigit = {{'0', '9'}};
const Ranges kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const Ranges kSpaceAscii = {{'\t', '\r'}, {' ', ' '}};
const Ranges kSpaceAll = {{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029},
                          {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
const Ranges kLineTerminators = {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}};

int hex_value(uint32_t c) {
    if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
    return -1;
}

class PatternParser {
public:
    PatternParser(std::string_view pattern, const std::string& any_char) : text_(pattern), any_(any_char) {
        for (size_t i = 0; i < pattern.size();) {
            uint32_t cp;
            const size_t n = utf8::decode(pattern, i, cp);
            if (n == 0) fail("invalid UTF-8");
            p_.push_back(cp);
            i += n;
        }
    }

    std::string run() {
        std::vector<std::string> alts;
        for (;;) {
            const bool start = peek() == '^';
            if (start) ++i_;
            std::string seq = sequence(true);
            const bool end = peek() == '$';
            if (end) ++i_;
            alts.push_back((start ? "" : any_ + "* ") + seq + (end ? "" : " " + any_ + "*"));
            if (peek() != '|') break;
            ++i_;
        }
        if (i_ < p_.size()) fail("unbalanced ')'");
        return "( " + join(alts) + " )";
    }

private:
    std::string_view text_;
    const std::string& any_;
    std::vector<uint32_t> p_;
    size_t i_ = 0;

    [[noreturn]] void fail(const std::string& why) const {
        throw SchemaError("unsupported pattern '" + std::string(text_) + "': " + why);
    }

    uint32_t peek(size_t k = 0) const { return i_ + k < p_.size() ? p_[i_ + k] : 0xFFFFFFFFu; }
    bool at_end() const { return i_ >= p_.size(); }

    static std::string join(const std::vector<std::string>& parts) {
        std::string out;
        for (size_t i = 0; i < parts.size(); ++i) out += (i ? " | " : "") + parts[i];
        return out;
    }

    std::string alternation() {
        std::vector<std::string> alts{sequence(false)};
        while (peek() == '|') {
            ++i_;
            alts.push_back(sequence(false));
        }
        return "( " + join(alts) + " )";
    }

    std::string sequence(bool top) {
        std::string out;
        while (!at_end()) {
            const uint32_t c = peek();
            if (c == '|' || c == ')') break;
            if (c == '$') {
                if (top && (i_ + 1 == p_.size() || p_[i_ + 1] == '|')) break;
                fail("'$' is only supported at the end");
            }
            if (c == '^') fail("'^' is only supported at the start");
            std::string a = atom();
            quantifier(a);
            out += a + " ";
        }
        return out;
    }

    // {n}, {n,} or {n,m} at i_: true with the bounds (max -1: unbounded), i_ past it.
    bool braces(int& min, int& max) {
        size_t j = i_ + 1;
        const auto number = [&](int& v) {
            const size_t start = j;
            long x = 0;
            while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
                x = std::min<long>(x * 10 + (p_[j] - '0'), kMaxRepeat + 1L);
                ++j;
            }
            v = static_cast<int>(x);
            return j > start;
        };
        if (!number(min)) return false;
        max = min;
        if (j < p_.size() && p_[j] == ',') {
            ++j;
            if (!number(max)) max = -1;
        }
        if (j >= p_.size() || p_[j] != '}') return false;
        i_ = j + 1;
        return true;
    }

    void quantifier(std::string& expr) {
        int min = 0, max = -1;
        const uint32_t c = peek();
        if (c == '*') {
            ++i_;
        } else if (c == '+') {
            min = 1, ++i_;
        } else if (c == '?') {
            max = 1, ++i_;
        } else if (c != '{' || !braces(min, max)) {
            return;
        }
        if (peek() == '?') ++i_;  // lazy: same language
        if (min > kMaxRepeat || max > kMaxRepeat) fail("repetition count above " + std::to_string(kMaxRepeat));
        if (max >= 0 && min > max) fail("numbers out of order in {} quantifier");
        std::string q;
        if (c == '*') q = "*";
        else if (c == '+') q = "+";
        else if (c == '?') q = "?";
        else q = "{" + std::to_string(min) + "," + (max < 0 ? "" : std::to_string(max)) + "}";
        expr = "( " + expr + " )" + q;
        int a, b;
        if (peek() == '*' || peek() == '+' || peek() == '?' || (peek() == '{' && braces(a, b))) fail("nothing to repeat");
    }

    std::string atom() {
        const uint32_t c = p_[i_];
        if (c == '(') {
            ++i_;
            if (peek() == '?') {
                if (peek(1) == ':') {
                    i_ += 2;
                } else if (peek(1) == '<' && peek(2) != '=' && peek(2) != '!') {
                    i_ += 2;
                    while (!at_end() && peek() != '>') ++i_;
                    if (at_end()) fail("unterminated group name");
                    ++i_;
                } else {
                    fail("lookaround is not supported");
                }
            }
            std::string inner = alternation();
            if (peek() != ')') fail("missing ')'");
            ++i_;
            return inner;
        }
        if (c == '[') return json_chars(char_class());
        if (c == '.') {
            ++i_;
            return json_chars(complement(kLineTerminators));
        }
        if (c == '*' || c == '+' || c == '?') fail("nothing to repeat");
        if (c == '{') {
            int a, b;
            const size_t save = i_;
            if (braces(a, b)) {
                i_ = save;
                fail("nothing to repeat");
            }
        }
        if (c == '\\') {
            ++i_;
            Ranges set;
            const uint32_t cp = escape(false, set);
            return json_chars(set.empty() ? Ranges{{cp, cp}} : set);
        }
        ++i_;
        return json_chars({{c, c}});
    }

    // After a backslash: a single code point (returned) or a set (filled in).
    uint32_t escape(bool in_class, Ranges& set) {
        if (at_end()) fail("trailing backslash");
        const uint32_t c = p_[i_++];
        switch (c) {
            case 'd': set = kDigit; return 0;
            case 'D': set = complement(kDigit); return 0;
            case 'w': set = kWord; return 0;
            case 'W': set = complement(kWord); return 0;
            case 's': set = kSpaceAscii; return 0;
            case 'S': set = complement(kSpaceAll); return 0;
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case 'f': return '\f';
            case 'v': return '\v';
            case 'b':
                if (in_class) return '\b';
                fail("'\\b' is not supported");
            case 'B': fail("'\\B' is not supported");
            case 'k': fail("named backreferences are not supported");
            case 'p': case 'P': fail("Unicode property escapes are not supported");
            case 'c':
                if (at_end() || !((peek() | 0x20) >= 'a' && (peek() | 0x20) <= 'z')) fail("bad '\\c' escape");
                return p_[i_++] % 32;
            case '0':
                if (peek() >= '0' && peek() <= '9') fail("octal escapes are not supported");
                return 0;
            case 'x': case 'u': {
                const int digits = c == 'x' ? 2 : 4;
                uint32_t v = 0;
                for (int k = 0; k < digits; ++k) {
                    const int h = hex_value(peek());
                    if (h < 0) fail(std::string("'\\") + static_cast<char>(c) + "' needs " + std::to_string(digits) + " hex digits");
                    v = v * 16 + static_cast<uint32_t>(h);
                    ++i_;
                }
                if (v >= 0xD800 && v <= 0xDBFF && peek() == '\\' && peek(1) == 'u') {  // a surrogate pair
                    uint32_t lo = 0;
                    bool ok = true;
                    for (size_t k = 2; k < 6; ++k) {
                        const int h = hex_value(peek(k));
                        ok = ok && h >= 0;
                        lo = lo * 16 + static_cast<uint32_t>(std::max(h, 0));
                    }
                    if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                        i_ += 6;
                        return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    }
                }
                if (v >= 0xD800 && v <= 0xDFFF) fail("lone surrogate escape");
                return v;
            }
            default:
                if (c >= '1' && c <= '9') fail("backreferences are not supported");
                return c;  // identity escape
        }
    }

    Ranges char_class() {
        ++i_;  // '['
        const bool negate = peek() == '^';
        if (negate) ++i_;
        Ranges r;
        // One class atom: a code point (true) or a set added to r (false).
        const auto item = [&](uint32_t& cp) {
            if (peek() == '\\') {
                ++i_;
                Ranges set;
                cp = escape(true, set);
                if (!set.empty()) {
                    r.insert(r.end(), set.begin(), set.end());
                    return false;
                }
                return true;
            }
            cp = p_[i_++];
            return true;
        };
        while (peek() != ']') {
            if (at_end()) fail("missing ']'");
            uint32_t lo;
            if (!item(lo)) continue;
            if (peek() == '-' && peek(1) != ']' && i_ + 1 < p_.size()) {
                ++i_;
                uint32_t hi;
                if (!item(hi)) fail("a class escape cannot end a range");
                if (hi < lo) fail("range out of order in character class");
                r.emplace_back(lo, hi);
            } else {
                r.emplace_back(lo, lo);
            }
        }
        ++i_;
        return negate ? complement(r) : normalize(r);
    }

    // JSON string text for one character of `set`.
    std::string json_chars(const Ranges& set) {
        static const char* hex = "0123456789abcdef";
        const Ranges raw = minus(set, {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});
        std::vector<std::string> alts;
        if (!raw.empty()) alts.push_back(gbnf_class(raw));
        if (contains(set, '"')) alts.push_back(gbnf_literal("\\\""));
        if (contains(set, '\\')) alts.push_back(gbnf_literal("\\\\"));
        for (uint32_t cp = 0; cp < 0x20; ++cp) {
            if (!contains(set, cp)) continue;
            switch (cp) {
                case '\b': alts.push_back(gbnf_literal("\\b")); break;
                case '\f': alts.push_back(gbnf_literal("\\f")); break;
                case '\n': alts.push_back(gbnf_literal("\\n")); break;
                case '\r': alts.push_back(gbnf_literal("\\r")); break;
                case '\t': alts.push_back(gbnf_literal("\\t")); break;
                default: alts.push_back(gbnf_literal(std::string("\\u00") + hex[cp >> 4] + hex[cp & 15]));
            }
        }
        if (alts.empty()) fail("a character class matches nothing");
        return alts.size() == 1 ? alts[0] : "( " + join(alts) + " )";
    }
};

}  // namespace

std::string pattern_to_gbnf(std::string_view pattern, const std::string& any_char) {
    return PatternParser(pattern, any_char).run();
}

}  // namespace hearth::json_schema_detail
