// GBNF parsing and lowering: groups and repetitions become generated rules, literals become
// runs of one-code-point classes, and the result is checked (undefined rules, root, left
// recursion) before it is flattened into the form GrammarMatcher walks.
#include "sampling/grammar.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace hearth {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kSurrogateLo = 0xD800, kSurrogateHi = 0xDFFF;
constexpr int kMaxRepeat = 100000;
constexpr size_t kMaxElems = 4u << 20;

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Sorts, merges overlapping and adjacent ranges, and removes the surrogate block.
Ranges normalize(Ranges r) {
    std::sort(r.begin(), r.end());
    Ranges merged;
    for (const auto& [lo, hi] : r) {
        if (!merged.empty() && lo <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, hi);
        else merged.emplace_back(lo, hi);
    }
    Ranges out;
    for (const auto& [lo, hi] : merged) {
        if (hi < kSurrogateLo || lo > kSurrogateHi) {
            out.emplace_back(lo, hi);
            continue;
        }
        if (lo < kSurrogateLo) out.emplace_back(lo, kSurrogateLo - 1);
        if (hi > kSurrogateHi) out.emplace_back(kSurrogateHi + 1, hi);
    }
    return out;
}

Ranges complement(const Ranges& r) {  // r normalized
    Ranges out;
    uint32_t next = 0;
    for (const auto& [lo, hi] : r) {
        if (lo > next) out.emplace_back(next, lo - 1);
        next = hi + 1;
    }
    if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
    return normalize(out);
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A code point as it would be written inside a GBNF literal or class.
void print_cp(std::string& out, uint32_t cp, bool in_class) {
    switch (cp) {
        case '\n': out += "\\n"; return;
        case '\r': out += "\\r"; return;
        case '\t': out += "\\t"; return;
        case '\\': out += "\\\\"; return;
        default: break;
    }
    if ((!in_class && cp == '"') || (in_class && (cp == ']' || cp == '[' || cp == '-' || cp == '^'))) {
        out += '\\';
        out += static_cast<char>(cp);
    } else if (cp < 0x20 || cp == 0x7F) {
        static const char* hex = "0123456789ABCDEF";
        out += "\\x";
        out += hex[cp >> 4];
        out += hex[cp & 15];
    } else {
        utf8::append(out, cp);
    }
}

}  // namespace

namespace utf8 {

size_t decode(std::string_view s, size_t i, uint32_t& cp) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        cp = c;
        return 1;
    } else if (c >= 0xC0 && c < 0xE0) {
        len = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c < 0xF0) {
        len = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c < 0xF8) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if (cp < min || cp > kMaxCodePoint || (cp >= kSurrogateLo && cp <= kSurrogateHi)) return 0;
    return len;
}

void append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace utf8

GrammarError::GrammarError(const std::string& msg, int line, int column)
    : std::runtime_error(line > 0 ? "grammar: line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + msg
                                  : "grammar: " + msg),
      line_(line),
      column_(column) {}

bool Grammar::CharClass::contains(uint32_t cp) const {
    if (cp < 128) return ascii[cp];
    auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                               [](uint32_t v, const std::pair<uint32_t, uint32_t>& r) { return v < r.first; });
    if (it == ranges.begin()) return false;
    return cp <= std::prev(it)->second;
}

bool Grammar::CharClass::intersects(uint32_t lo, uint32_t hi) const {
    auto it = std::lower_bound(ranges.begin(), ranges.end(), lo,
                               [](const std::pair<uint32_t, uint32_t>& r, uint32_t v) { return r.second < v; });
    return it != ranges.end() && it->first <= hi;
}

// Parses GBNF text into rules, then checks and flattens them.
class GrammarBuilder {
public:
    explicit GrammarBuilder(std::string_view src) : src_(src) {}

    std::shared_ptr<const Grammar> build(std::string_view root_name) {
        skip(true);
        while (!at_end()) {
            parse_rule();
            skip(true);
        }
        for (const Rule& r : rules_)
            if (!r.defined) fail("undefined rule '" + r.name + "'", r.first_use);
        auto root = by_name_.find(std::string(root_name));
        if (root == by_name_.end()) throw GrammarError("no rule named '" + std::string(root_name) + "'");
        check_left_recursion();
        check_productive(root->second);
        return flatten(root->second);
    }

private:
    using Elem = Grammar::Elem;
    using Seq = std::vector<Elem>;
    struct Rule {
        std::string name;
        std::vector<Seq> alts;
        bool defined = false;
        size_t first_use = 0;
    };

    std::string_view src_;
    size_t pos_ = 0;
    std::vector<Rule> rules_;
    std::unordered_map<std::string, uint32_t> by_name_;
    std::map<Ranges, uint32_t> class_ids_;
    std::vector<Grammar::CharClass> classes_;
    size_t n_elems_ = 0;
    uint32_t generated_ = 0;

    [[noreturn]] void fail(const std::string& msg, size_t at) const {
        at = std::min(at, src_.size());
        int line = 1, col = 1;
        for (size_t i = 0; i < at; ++i) {
            if (src_[i] == '\n') ++line, col = 1;
            else ++col;
        }
        throw GrammarError(msg, line, col);
    }

    bool at_end() const { return pos_ >= src_.size(); }
    char peek(size_t k = 0) const { return pos_ + k < src_.size() ? src_[pos_ + k] : '\0'; }
    bool looking_at(std::string_view s) const { return src_.substr(pos_).starts_with(s); }

    // Skips spaces, tabs, carriage returns and comments; newlines too when `newlines`.
    void skip(bool newlines) {
        while (!at_end()) {
            const char c = src_[pos_];
            if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
                ++pos_;
            } else if (c == '#') {
                while (!at_end() && src_[pos_] != '\n') ++pos_;
            } else {
                break;
            }
        }
    }

    static Elem ch(uint32_t cls) { return {Grammar::Op::Char, cls}; }
    static Elem ref(uint32_t rule) { return {Grammar::Op::Ref, rule}; }

    uint32_t class_id(Ranges r) {
        auto [it, fresh] = class_ids_.try_emplace(std::move(r), static_cast<uint32_t>(classes_.size()));
        if (fresh) {
            Grammar::CharClass c;
            c.ranges = it->first;
            for (const auto& [lo, hi] : c.ranges)
                for (uint32_t cp = lo; cp <= hi && cp < 128; ++cp) c.ascii.set(cp);
            classes_.push_back(std::move(c));
        }
        return it->second;
    }

    uint32_t symbol(const std::string& name, size_t at) {
        auto [it, fresh] = by_name_.try_emplace(name, static_cast<uint32_t>(rules_.size()));
        if (fresh) rules_.push_back({name, {}, false, at});
        return it->second;
    }

    uint32_t new_rule(uint32_t owner) {
        const auto id = static_cast<uint32_t>(rules_.size());
        rules_.push_back({rules_[owner].name + "-" + std::to_string(++generated_), {}, true, 0});
        return id;
    }

    void count(size_t n) {
        n_elems_ += n;
        if (n_elems_ > kMaxElems) fail("grammar too large (more than " + std::to_string(kMaxElems) + " elements)", pos_);
    }

    std::string parse_name() {
        const size_t start = pos_;
        while (!at_end() && is_name_char(src_[pos_])) ++pos_;
        return std::string(src_.substr(start, pos_ - start));
    }

    void parse_rule() {
        const size_t start = pos_;
        const std::string name = parse_name();
        if (name.empty()) fail(std::string("expected a rule name, found '") + peek() + "'", start);
        skip(false);
        if (!looking_at("::=")) fail("expected '::=' after rule name '" + name + "'", pos_);
        pos_ += 3;
        const uint32_t id = symbol(name, start);
        if (rules_[id].defined) fail("rule '" + name + "' is defined twice", start);
        rules_[id].defined = true;
        skip(true);
        std::vector<Seq> alts = parse_alternates(id, false);
        rules_[id].alts = std::move(alts);
        skip(false);
        if (!at_end() && peek() != '\n') fail(std::string("unexpected '") + peek() + "'", pos_);
    }

    std::vector<Seq> parse_alternates(uint32_t owner, bool nested) {
        std::vector<Seq> alts;
        alts.push_back(parse_sequence(owner, nested));
        for (;;) {
            const size_t save = pos_;
            skip(true);  // a top-level rule continues on a line that starts with '|'
            if (peek() != '|') {
                if (!nested) pos_ = save;
                break;
            }
            ++pos_;
            skip(true);
            alts.push_back(parse_sequence(owner, nested));
        }
        return alts;
    }

    Seq parse_sequence(uint32_t owner, bool nested) {
        Seq seq;
        size_t last = SIZE_MAX;  // where the last item's elements start
        bool quantified = false;
        for (;;) {
            skip(nested);
            if (at_end()) break;
            const char c = peek();
            if (c == '|' || c == ')' || c == '\n') break;
            const size_t at = pos_;
            if (c == '*' || c == '+' || c == '?' || c == '{') {
                if (last == SIZE_MAX) fail(std::string("'") + c + "' has nothing to repeat", at);
                if (quantified) fail(std::string("'") + c + "' follows another repetition operator", at);
                parse_repetition(owner, seq, last);
                quantified = true;
                continue;
            }
            last = seq.size();
            quantified = false;
            if (c == '"') {
                parse_literal(seq);
            } else if (c == '[') {
                seq.push_back(ch(parse_class()));
            } else if (c == '.') {
                ++pos_;
                seq.push_back(ch(class_id(normalize({{0, kMaxCodePoint}}))));
            } else if (c == '(') {
                ++pos_;
                skip(true);
                const uint32_t sub = new_rule(owner);
                std::vector<Seq> alts = parse_alternates(sub, true);
                skip(true);
                if (peek() != ')') fail("expected ')' to close the group opened here", at);
                ++pos_;
                rules_[sub].alts = std::move(alts);
                seq.push_back(ref(sub));
            } else if (is_name_char(c)) {
                const std::string name = parse_name();
                const size_t save = pos_;
                skip(false);
                if (looking_at("::=")) fail("expected a newline before the definition of '" + name + "'", at);
                pos_ = save;
                seq.push_back(ref(symbol(name, at)));
            } else if (c == '<') {
                fail("token references (<...>) are not supported", at);
            } else {
                fail(std::string("unexpected '") + c + "'", at);
            }
            count(seq.size() - last);
        }
        return seq;
    }

    int parse_int() {
        const size_t start = pos_;
        long v = 0;
        while (peek() >= '0' && peek() <= '9') {
            v = v * 10 + (peek() - '0');
            if (v > kMaxRepeat) fail("repetition count above " + std::to_string(kMaxRepeat), start);
            ++pos_;
        }
        return pos_ == start ? -1 : static_cast<int>(v);
    }

    void parse_repetition(uint32_t owner, Seq& seq, size_t last) {
        const size_t at = pos_;
        int min = 0, max = -1;  // -1: unbounded
        const char c = src_[pos_++];
        if (c == '+') {
            min = 1;
        } else if (c == '?') {
            max = 1;
        } else if (c == '{') {
            skip(false);
            const int a = parse_int();
            skip(false);
            if (peek() == ',') {
                ++pos_;
                skip(false);
                min = a < 0 ? 0 : a;
                max = parse_int();
            } else {
                if (a < 0) fail("expected a number in '{...}'", pos_);
                min = max = a;
            }
            skip(false);
            if (peek() != '}') fail("expected '}' to close the repetition", pos_);
            ++pos_;
            if (max >= 0 && min > max) fail("repetition minimum " + std::to_string(min) + " above maximum " + std::to_string(max), at);
        }
        if (seq.size() == last) return;  // repeating the empty literal "" is still empty
        Elem x;
        if (seq.size() - last == 1) {
            x = seq.back();
        } else {
            const uint32_t sub = new_rule(owner);
            rules_[sub].alts.push_back(Seq(seq.begin() + static_cast<std::ptrdiff_t>(last), seq.end()));
            x = ref(sub);
        }
        seq.resize(last);
        count(static_cast<size_t>(min) + 3 * static_cast<size_t>(max < 0 ? 1 : max - min));
        seq.insert(seq.end(), static_cast<size_t>(min), x);
        if (max < 0) {  // star ::= x star | (empty)
            const uint32_t star = new_rule(owner);
            rules_[star].alts = {{x, ref(star)}, {}};
            seq.push_back(ref(star));
        } else if (max > min) {  // opt_k ::= x opt_(k-1) | (empty)
            uint32_t prev = UINT32_MAX;
            for (int k = 0; k < max - min; ++k) {
                const uint32_t opt = new_rule(owner);
                Seq first{x};
                if (prev != UINT32_MAX) first.push_back(ref(prev));
                rules_[opt].alts = {std::move(first), {}};
                prev = opt;
            }
            seq.push_back(ref(prev));
        }
    }

    uint32_t parse_char() {
        const size_t at = pos_;
        if (peek() == '\\') {
            ++pos_;
            const char e = peek();
            ++pos_;
            int digits = 0;
            switch (e) {
                case 'n': return '\n';
                case 'r': return '\r';
                case 't': return '\t';
                case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
                    return static_cast<uint8_t>(e);
                case 'x': digits = 2; break;
                case 'u': digits = 4; break;
                case 'U': digits = 8; break;
                default:
                    if (e == '\0') fail("unterminated escape", at);
                    fail(std::string("unknown escape '\\") + e + "'", at);
            }
            uint32_t cp = 0;
            for (int i = 0; i < digits; ++i) {
                const int h = hex_value(peek());
                if (h < 0) fail(std::string("'\\") + e + "' needs " + std::to_string(digits) + " hex digits", at);
                cp = cp * 16 + static_cast<uint32_t>(h);
                ++pos_;
            }
            if (cp > kMaxCodePoint || (cp >= kSurrogateLo && cp <= kSurrogateHi)) fail("invalid code point in escape", at);
            return cp;
        }
        uint32_t cp = 0;
        const size_t n = utf8::decode(src_, pos_, cp);
        if (n == 0) fail("invalid UTF-8", at);
        pos_ += n;
        return cp;
    }

    void parse_literal(Seq& seq) {
        const size_t start = pos_++;
        while (peek() != '"') {
            if (at_end()) fail("unterminated string literal", start);
            const uint32_t cp = parse_char();
            seq.push_back(ch(class_id({{cp, cp}})));
        }
        ++pos_;
    }

    uint32_t parse_class() {
        const size_t start = pos_++;
        const bool negate = peek() == '^';
        if (negate) ++pos_;
        Ranges r;
        while (peek() != ']') {
            if (at_end()) fail("unterminated character class", start);
            const size_t at = pos_;
            const uint32_t lo = parse_char();
            uint32_t hi = lo;
            if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
                ++pos_;
                hi = parse_char();
                if (hi < lo) fail("invalid range in character class (end before start)", at);
            }
            r.emplace_back(lo, hi);
        }
        ++pos_;
        if (r.empty()) fail("empty character class", start);
        r = normalize(std::move(r));
        if (negate) r = complement(r);
        if (r.empty()) fail("character class matches nothing", start);
        return class_id(std::move(r));
    }

    void check_left_recursion() {
        const size_t n = rules_.size();
        std::vector<char> nullable(n, 0);
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < n; ++r) {
                if (nullable[r]) continue;
                for (const Seq& alt : rules_[r].alts) {
                    const bool all = std::all_of(alt.begin(), alt.end(),
                                                 [&](const Elem& e) { return e.op == Grammar::Op::Ref && nullable[e.arg]; });
                    if (all) {
                        nullable[r] = 1, changed = true;
                        break;
                    }
                }
            }
        }
        // Edges r -> q when q can be the first thing r derives; "tail" when nothing follows
        // q in the alternative (the matcher then reuses the caller's frame).
        struct Edge {
            uint32_t to;
            bool tail;
        };
        std::vector<std::vector<Edge>> left(n);
        for (size_t r = 0; r < n; ++r)
            for (const Seq& alt : rules_[r].alts)
                for (size_t i = 0; i < alt.size(); ++i) {
                    if (alt[i].op != Grammar::Op::Ref) break;
                    left[r].push_back({alt[i].arg, i + 1 == alt.size()});
                    if (!nullable[alt[i].arg]) break;
                }
        // Strongly connected components (Tarjan, iterative). A cycle through a non-tail edge
        // would push frames forever; cycles of tail edges only revisit the same stacks.
        std::vector<int> index(n, -1), low(n, 0), comp(n, -1);
        std::vector<uint32_t> st;
        std::vector<char> on(n, 0);
        std::vector<std::pair<uint32_t, size_t>> call;
        int counter = 0, ncomp = 0;
        const auto visit = [&](uint32_t v) {
            index[v] = low[v] = counter++;
            st.push_back(v);
            on[v] = 1;
            call.emplace_back(v, 0);
        };
        for (uint32_t s = 0; s < n; ++s) {
            if (index[s] != -1) continue;
            visit(s);
            while (!call.empty()) {
                const uint32_t v = call.back().first;
                const size_t i = call.back().second++;
                if (i < left[v].size()) {
                    const uint32_t w = left[v][i].to;
                    if (index[w] == -1) visit(w);
                    else if (on[w]) low[v] = std::min(low[v], index[w]);
                    continue;
                }
                if (low[v] == index[v]) {
                    uint32_t x;
                    do {
                        x = st.back();
                        st.pop_back();
                        on[x] = 0;
                        comp[x] = ncomp;
                    } while (x != v);
                    ++ncomp;
                }
                call.pop_back();
                if (!call.empty()) low[call.back().first] = std::min(low[call.back().first], low[v]);
            }
        }
        for (uint32_t u = 0; u < n; ++u)
            for (const Edge& e : left[u])
                if (!e.tail && comp[e.to] == comp[u]) {
                    // Name the cycle: u -> e.to -> ... -> u, by a search inside the component.
                    std::vector<int64_t> from(n, -1);
                    std::vector<uint32_t> queue{e.to};
                    from[e.to] = e.to;
                    for (size_t q = 0; q < queue.size() && from[u] < 0; ++q)
                        for (const Edge& f : left[queue[q]])
                            if (comp[f.to] == comp[u] && from[f.to] < 0) from[f.to] = queue[q], queue.push_back(f.to);
                    std::vector<uint32_t> path{u};
                    for (uint32_t x = u; x != e.to;) path.push_back(x = static_cast<uint32_t>(from[x]));
                    std::string msg = "left recursion: " + rules_[u].name;
                    for (auto it = path.rbegin(); it != path.rend(); ++it) msg += " -> " + rules_[*it].name;
                    throw GrammarError(msg);
                }
    }

    // Every rule reachable from the root must be able to finish; otherwise the constraint
    // could steer a model into text that can never be completed.
    void check_productive(uint32_t root) {
        const size_t n = rules_.size();
        std::vector<char> productive(n, 0);
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < n; ++r) {
                if (productive[r]) continue;
                for (const Seq& alt : rules_[r].alts) {
                    if (std::all_of(alt.begin(), alt.end(),
                                    [&](const Elem& e) { return e.op == Grammar::Op::Char || productive[e.arg]; })) {
                        productive[r] = 1, changed = true;
                        break;
                    }
                }
            }
        }
        std::vector<char> seen(n, 0);
        std::vector<uint32_t> todo{root};
        seen[root] = 1;
        while (!todo.empty()) {
            const uint32_t r = todo.back();
            todo.pop_back();
            if (!productive[r]) throw GrammarError("rule '" + rules_[r].name + "' can never complete (it always recurses)");
            for (const Seq& alt : rules_[r].alts)
                for (const Elem& e : alt)
                    if (e.op == Grammar::Op::Ref && !seen[e.arg]) seen[e.arg] = 1, todo.push_back(e.arg);
        }
    }

    std::shared_ptr<const Grammar> flatten(uint32_t root) {
        auto g = std::make_shared<Grammar>();
        g->root_ = root;
        g->classes_ = std::move(classes_);
        g->names_.reserve(rules_.size());
        g->alts_.resize(rules_.size());
        g->elems_.reserve(n_elems_ + rules_.size() * 2);
        for (size_t r = 0; r < rules_.size(); ++r) {
            g->names_.push_back(rules_[r].name);
            for (const Seq& alt : rules_[r].alts) {
                g->alts_[r].push_back(static_cast<uint32_t>(g->elems_.size()));
                g->elems_.insert(g->elems_.end(), alt.begin(), alt.end());
                g->elems_.push_back({Grammar::Op::End, 0});
            }
        }
        return g;
    }
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
    return GrammarBuilder(gbnf).build(root);
}

std::string Grammar::to_gbnf() const {
    std::string out;
    for (size_t r = 0; r < names_.size(); ++r) {
        out += names_[r] + " ::=";
        for (size_t a = 0; a < alts_[r].size(); ++a) {
            if (a) out += " |";
            bool in_lit = false;
            for (uint32_t p = alts_[r][a]; elems_[p].op != Op::End; ++p) {
                const Elem e = elems_[p];
                const bool single = e.op == Op::Char && classes_[e.arg].ranges.size() == 1 &&
                                    classes_[e.arg].ranges[0].first == classes_[e.arg].ranges[0].second;
                if (in_lit && !single) out += '"', in_lit = false;
                if (single) {
                    if (!in_lit) out += " \"", in_lit = true;
                    print_cp(out, classes_[e.arg].ranges[0].first, false);
                } else if (e.op == Op::Char) {
                    out += " [";
                    for (const auto& [lo, hi] : classes_[e.arg].ranges) {
                        print_cp(out, lo, true);
                        if (hi != lo) {
                            if (hi != lo + 1) out += '-';
                            print_cp(out, hi, true);
                        }
                    }
                    out += ']';
                } else {
                    out += ' ' + names_[e.arg];
                }
            }
            if (in_lit) out += '"';
            if (elems_[alts_[r][a]].op == Op::End) out += " \"\"";
        }
        out += '\n';
    }
    return out;
}

}  // namespace hearth
