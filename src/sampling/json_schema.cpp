// JSON schema -> GBNF. Each schema becomes a GBNF expression; objects, arrays, unions and
// $ref targets get named rules (deduplicated by body), and the fixed JSON building blocks
// (ws, string, number, value, ...) are added when first used.
#include "sampling/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace hearth {

using nlohmann::json;
using json_schema_detail::gbnf_class;
using json_schema_detail::gbnf_literal;

namespace {

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxMagnitude = 99999999999999999;  // 17 digits: bounded integers
constexpr int64_t kMaxLength = 100000;                // GBNF's repetition limit

// The fixed building blocks, with the rules each one uses.
struct Builtin {
    const char* body;
    std::vector<const char*> uses;
};
const std::map<std::string, Builtin>& builtins() {
    static const std::map<std::string, Builtin> b = {
        {"ws", {R"(( " " | "\n" [ \t]{0,20} )?)", {}}},
        {"char-esc", {R"(["\\/bfnrt] | "u" ( [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ))", {}}},
        {"char", {R"([^"\\\x00-\x1F] | "\\" char-esc)", {"char-esc"}}},
        {"string", {R"("\"" char* "\"")", {"char"}}},
        {"integer", {R"("-"? ( "0" | [1-9] [0-9]{0,15} ))", {}}},
        {"number", {R"("-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?)", {}}},
        {"boolean", {R"("true" | "false")", {}}},
        {"null", {R"("null")", {}}},
        {"value", {"object | array | string | number | boolean | null", {"object", "array", "string", "number", "boolean", "null"}}},
        {"object", {R"("{" ws ( member ( "," ws member )* )? "}")", {"ws", "member"}}},
        {"member", {R"(string ws ":" ws value ws)", {"string", "ws", "value"}}},
        {"array", {R"("[" ws ( value ws ( "," ws value ws )* )? "]")", {"ws", "value"}}},
    };
    return b;
}

const std::set<std::string> kUnsupported = {
    "not", "if", "then", "else", "patternProperties", "propertyNames", "minProperties", "maxProperties",
    "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "multipleOf", "additionalItems", "$dynamicRef", "$recursiveRef"};

// Keywords that constrain a value (the rest are annotations or unknown, and ignored).
const std::vector<std::string> kConstraints = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems"};

const std::map<std::string, std::string>& formats() {
    static const std::string date = R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))";
    static const std::string time =
        R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))";
    static const std::map<std::string, std::string> f = {
        {"date", date},
        {"time", time},
        {"date-time", date + " \"T\" " + time},
        {"uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
        {"email",
         R"([A-Za-z0-9_%+-] [A-Za-z0-9._%+-]{0,63} "@" [A-Za-z0-9] [A-Za-z0-9-]{0,30} ( "." [A-Za-z0-9] [A-Za-z0-9-]{0,30} ){1,3})"},
    };
    return f;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
}

std::string quote_num(int64_t v) { return "\"" + std::to_string(v) + "\""; }

std::string any_digits(size_t k) {
    if (k == 0) return "";
    return k == 1 ? "[0-9]" : "[0-9]{" + std::to_string(k) + "}";
}

std::string digit_class(char a, char b) {
    return a == b ? std::string("\"") + a + "\"" : std::string("[") + a + "-" + b + "]";
}

// Decimal strings of equal length lo <= hi: every string between them.
std::string same_length_range(const std::string& lo, const std::string& hi) {
    const size_t n = lo.size();
    size_t i = 0;
    while (i < n && lo[i] == hi[i]) ++i;
    const std::string prefix = i ? "\"" + lo.substr(0, i) + "\" " : "";
    if (i == n) return prefix;
    const size_t r = n - i - 1;
    const std::string rl = lo.substr(i + 1), rh = hi.substr(i + 1);
    const bool lo_zero = rl.find_first_not_of('0') == std::string::npos;
    const bool hi_nine = rh.find_first_not_of('9') == std::string::npos;
    std::vector<std::string> parts;
    char from = lo[i], to = hi[i];
    if (!lo_zero) {
        parts.push_back(std::string("\"") + lo[i] + "\" " + same_length_range(rl, std::string(r, '9')));
        ++from;
    }
    if (!hi_nine) --to;
    if (from <= to) parts.push_back(digit_class(from, to) + " " + any_digits(r));
    if (!hi_nine) parts.push_back(std::string("\"") + hi[i] + "\" " + same_length_range(std::string(r, '0'), rh));
    return prefix + "( " + join(parts, " | ") + " )";
}

int64_t pow10(size_t d) {
    int64_t p = 1;
    while (d--) p *= 10;
    return p;
}

// Decimal integers without leading zeros in [a, b], 0 <= a <= b <= kMaxMagnitude.
std::string uint_range(int64_t a, int64_t b) {
    std::vector<std::string> parts;
    const size_t da = std::to_string(a).size(), db = std::to_string(b).size();
    size_t full_from = 0;  // a run of lengths d >= 2 with every d-digit number in range
    const auto flush = [&](size_t upto) {
        if (full_from)
            parts.push_back("[1-9] [0-9]{" + std::to_string(full_from - 1) + "," + std::to_string(upto - 1) + "}");
        full_from = 0;
    };
    for (size_t d = da; d <= db; ++d) {
        const int64_t lo = std::max(a, d == 1 ? int64_t{0} : pow10(d - 1));
        const int64_t hi = std::min(b, pow10(d) - 1);
        if (d >= 2 && lo == pow10(d - 1) && hi == pow10(d) - 1) {
            if (!full_from) full_from = d;
            continue;
        }
        flush(d - 1);
        parts.push_back(same_length_range(std::to_string(lo), std::to_string(hi)));
    }
    flush(db);
    return "( " + join(parts, " | ") + " )";
}

// Decimal numbers X >= 0 written "M" or "M.F" with a <= X <= b (strict per flag; b absent:
// no upper bound). Integral a <= b.
std::string magnitude_range(int64_t a, bool a_excl, std::optional<int64_t> b, bool b_excl) {
    const std::string frac = R"(( "." [0-9]{1,16} )?)";
    const std::string frac0 = R"(( "." "0"{1,16} )?)";
    const std::string nonzero = R"("." [0-9]{0,15} [1-9])";
    std::vector<std::string> parts;
    if (b && *b == a) {
        parts.push_back(quote_num(a) + " " + frac0);
    } else {
        parts.push_back(quote_num(a) + " " + (a_excl ? nonzero : frac));
        const int64_t top = b ? *b - 1 : kMaxMagnitude;
        if (a + 1 <= top) parts.push_back(uint_range(a + 1, top) + " " + frac);
        if (b && !b_excl) parts.push_back(quote_num(*b) + " " + frac0);
    }
    return "( " + join(parts, " | ") + " )";
}

std::string sanitize(const std::string& hint) {
    std::string out;
    for (char c : hint) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (ok) out += c;
        else if (!out.empty() && out.back() != '-') out += '-';
        if (out.size() >= 48) break;
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out.empty() ? "r" : out;
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

struct Bound {
    bool set = false;
    double v = 0;
    bool excl = false;
};

class Converter {
public:
    explicit Converter(const json& root) : root_(root) {
        names_.insert("root");
        for (const auto& [name, b] : builtins()) names_.insert(name);
    }

    std::string run() {
        const std::string root = visit(root_, "root", 0, "");
        std::string out = "root ::= " + root + "\n";
        for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
        return out;
    }

private:
    const json& root_;
    std::vector<std::pair<std::string, std::string>> rules_;
    std::unordered_map<std::string, std::string> by_body_;
    std::unordered_set<std::string> names_;
    std::set<std::string> builtins_added_;
    std::map<std::string, std::string> refs_;

    [[noreturn]] static void fail(const std::string& path, const std::string& msg) {
        throw SchemaError("JSON schema at " + (path.empty() ? std::string("/") : path) + ": " + msg);
    }

    std::string need(const std::string& name) {
        if (builtins_added_.insert(name).second) {
            const Builtin& b = builtins().at(name);
            rules_.emplace_back(name, b.body);
            for (const char* dep : b.uses) need(dep);
        }
        return name;
    }

    std::string fresh_name(const std::string& hint) {
        const std::string base = sanitize(hint);
        std::string name = base;
        for (int k = 2; names_.count(name); ++k) name = base + "-" + std::to_string(k);
        names_.insert(name);
        return name;
    }

    std::string add_rule(const std::string& hint, const std::string& body) {
        auto it = by_body_.find(body);
        if (it != by_body_.end()) return it->second;
        std::string name = fresh_name(hint);
        rules_.emplace_back(name, body);
        by_body_.emplace(body, name);
        return name;
    }

    static std::optional<int64_t> count_keyword(const json& s, const char* key, const std::string& path) {
        if (!s.contains(key)) return std::nullopt;
        const json& v = s[key];
        if (v.is_number_unsigned()) return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), 1u << 30));
        if (v.is_number_integer() && v.get<int64_t>() >= 0) return std::min<int64_t>(v.get<int64_t>(), 1 << 30);
        if (v.is_number_float() && v.get<double>() >= 0 && std::floor(v.get<double>()) == v.get<double>())
            return static_cast<int64_t>(std::min(v.get<double>(), 1073741824.0));
        fail(path, std::string("'") + key + "' must be a non-negative integer");
    }

    std::string visit(const json& s, const std::string& hint, int depth, const std::string& path) {
        if (depth > kMaxDepth) fail(path, "schema nested more than " + std::to_string(kMaxDepth) + " levels deep");
        if (s.is_boolean()) {
            if (s.get<bool>()) return need("value");
            fail(path, "schema 'false' matches nothing");
        }
        if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
        for (const auto& [k, v] : s.items())
            if (kUnsupported.count(k)) fail(path, "unsupported keyword '" + k + "'");
        if (s.contains("uniqueItems") && s["uniqueItems"] == true) fail(path, "unsupported keyword 'uniqueItems'");

        std::vector<std::string> combinators;
        for (const char* k : {"$ref", "anyOf", "oneOf", "allOf"})
            if (s.contains(k)) combinators.emplace_back(k);
        if (combinators.size() > 1) fail(path, "'" + combinators[0] + "' together with '" + combinators[1] + "' is not supported");
        if (!combinators.empty()) {
            const std::string& c = combinators[0];
            for (const std::string& k : kConstraints)
                if (k != c && k != "uniqueItems" && s.contains(k))
                    fail(path, "'" + k + "' next to '" + c + "' is not supported");
            if (c == "$ref") return ref_rule(s["$ref"], depth, path);
            const json& list = s[c];
            if (!list.is_array() || list.empty()) fail(path, "'" + c + "' must be a non-empty array");
            if (c == "allOf") {
                if (list.size() != 1) fail(path, "'allOf' with more than one subschema is not supported");
                return visit(list[0], hint, depth + 1, path + "/allOf/0");
            }
            std::vector<std::string> alts;
            for (size_t i = 0; i < list.size(); ++i)
                alts.push_back(visit(list[i], hint + "-" + std::to_string(i), depth + 1, path + "/" + c + "/" + std::to_string(i)));
            return add_rule(hint, join(alts, " | "));
        }
        if (s.contains("const") || s.contains("enum")) return literals(s, hint, path);

        std::vector<std::string> types;
        if (s.contains("type")) {
            const json& t = s["type"];
            if (t.is_string()) {
                types.push_back(t.get<std::string>());
            } else if (t.is_array() && !t.empty()) {
                for (const json& x : t) {
                    if (!x.is_string()) fail(path, "'type' must be a string or an array of strings");
                    types.push_back(x.get<std::string>());
                }
            } else {
                fail(path, "'type' must be a string or a non-empty array of strings");
            }
        } else {  // inferred from the keywords present
            const auto any = [&](std::initializer_list<const char*> keys) {
                for (const char* k : keys)
                    if (s.contains(k)) return true;
                return false;
            };
            if (any({"properties", "required", "additionalProperties"})) types.emplace_back("object");
            if (any({"items", "prefixItems", "minItems", "maxItems"})) types.emplace_back("array");
            if (any({"minLength", "maxLength", "pattern", "format"})) types.emplace_back("string");
            if (any({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.emplace_back("number");
            if (types.empty()) return need("value");
        }
        std::vector<std::string> alts;
        std::set<std::string> seen;
        for (const std::string& t : types) {
            if (!seen.insert(t).second) continue;
            const std::string h = types.size() > 1 ? hint + "-" + t : hint;
            if (t == "null") alts.push_back(need("null"));
            else if (t == "boolean") alts.push_back(need("boolean"));
            else if (t == "string") alts.push_back(visit_string(s, h, path));
            else if (t == "integer") alts.push_back(visit_number(s, true, h, path));
            else if (t == "number") alts.push_back(visit_number(s, false, h, path));
            else if (t == "object") alts.push_back(visit_object(s, h, depth, path));
            else if (t == "array") alts.push_back(visit_array(s, h, depth, path));
            else fail(path, "unknown type '" + t + "'");
        }
        return alts.size() == 1 ? alts[0] : add_rule(hint, join(alts, " | "));
    }

    std::string ref_rule(const json& ref, int depth, const std::string& path) {
        if (!ref.is_string()) fail(path, "'$ref' must be a string");
        const std::string r = ref.get<std::string>();
        auto it = refs_.find(r);
        if (it != refs_.end()) return it->second;
        if (r.empty() || r[0] != '#') fail(path, "unsupported $ref '" + r + "' (only local references such as #/$defs/Name)");
        const json* target = nullptr;
        try {
            const json::json_pointer ptr(percent_decode(r.substr(1)));
            if (root_.contains(ptr)) target = &root_.at(ptr);
        } catch (const json::exception&) {
        }
        if (!target) fail(path, "$ref '" + r + "' does not point into the schema");
        const size_t slash = r.rfind('/');
        const std::string name = fresh_name("ref-" + (slash == std::string::npos ? std::string("root") : r.substr(slash + 1)));
        refs_[r] = name;
        const size_t at = rules_.size();
        rules_.emplace_back(name, "");
        const std::string body = visit(*target, name, depth + 1, r.substr(1));
        rules_[at].second = body;
        return name;
    }

    std::string literals(const json& s, const std::string& hint, const std::string& path) {
        json rest = s;
        rest.erase("const");
        rest.erase("enum");
        bool constrained = false;
        for (const std::string& k : kConstraints) constrained = constrained || rest.contains(k);
        std::vector<json> values;
        if (s.contains("enum")) {
            if (!s["enum"].is_array() || s["enum"].empty()) fail(path, "'enum' must be a non-empty array");
            for (const json& v : s["enum"])
                if (!s.contains("const") || v == s["const"]) values.push_back(v);
        } else {
            values.push_back(s["const"]);
        }
        std::vector<std::string> alts;
        std::set<std::string> seen;
        for (const json& v : values) {
            if (constrained && !json_schema_detail::validate_at(root_, rest, v).empty()) continue;
            std::string text;
            try {
                text = v.dump();
            } catch (const json::exception&) {
                fail(path, "enum/const value is not valid UTF-8");
            }
            if (seen.insert(text).second) alts.push_back(gbnf_literal(text));
        }
        if (alts.empty()) fail(path, "no enum/const value satisfies the rest of the schema");
        return alts.size() == 1 ? alts[0] : add_rule(hint, join(alts, " | "));
    }

    std::string visit_string(const json& s, const std::string& hint, const std::string& path) {
        const auto min = count_keyword(s, "minLength", path), max = count_keyword(s, "maxLength", path);
        if (min && max && *min > *max) fail(path, "'minLength' above 'maxLength'");
        if ((min && *min > kMaxLength) || (max && *max > kMaxLength))
            fail(path, "'minLength'/'maxLength' above " + std::to_string(kMaxLength) + " is not supported");
        const std::string q = R"("\"")";
        std::string format;
        if (s.contains("format")) {
            if (!s["format"].is_string()) fail(path, "'format' must be a string");
            format = s["format"].get<std::string>();
            if (!formats().count(format)) format.clear();  // unknown formats are annotations
        }
        if (s.contains("pattern")) {
            if (!s["pattern"].is_string()) fail(path, "'pattern' must be a string");
            if (min || max) fail(path, "'minLength'/'maxLength' together with 'pattern' is not supported");
            if (!format.empty()) fail(path, "'format' together with 'pattern' is not supported");
            std::string body;
            try {
                body = json_schema_detail::pattern_to_gbnf(s["pattern"].get<std::string>(), need("char"));
            } catch (const SchemaError& e) {
                fail(path, e.what());
            }
            return add_rule(hint, q + " " + body + " " + q);
        }
        if (!format.empty()) {
            if (min || max) fail(path, "'minLength'/'maxLength' together with 'format' is not supported");
            return add_rule(format, q + " " + formats().at(format) + " " + q);
        }
        if (!min && !max) return need("string");
        const std::string rep = "{" + std::to_string(min.value_or(0)) + "," + (max ? std::to_string(*max) : "") + "}";
        return add_rule(hint, q + " " + need("char") + rep + " " + q);
    }

    static void read_bounds(const json& s, const std::string& path, Bound& lo, Bound& hi) {
        const auto num = [&](const char* k) {
            if (!s[k].is_number()) fail(path, std::string("'") + k + "' must be a number");
            return s[k].get<double>();
        };
        if (s.contains("minimum")) lo = {true, num("minimum"), false};
        if (s.contains("maximum")) hi = {true, num("maximum"), false};
        for (const auto& [key, b, is_min] : {std::tuple{"exclusiveMinimum", &lo, true}, std::tuple{"exclusiveMaximum", &hi, false}}) {
            if (!s.contains(key)) continue;
            const json& v = s[key];
            if (v.is_boolean()) {  // draft 4: a flag on minimum/maximum
                if (v.get<bool>() && b->set) b->excl = true;
            } else {
                const double x = num(key);
                if (!b->set || (is_min ? x >= b->v : x <= b->v)) *b = {true, x, true};
            }
        }
    }

    std::string visit_number(const json& s, bool integer, const std::string& hint, const std::string& path) {
        Bound lo, hi;
        read_bounds(s, path, lo, hi);
        if (!lo.set && !hi.set) return need(integer ? "integer" : "number");
        const double big = static_cast<double>(kMaxMagnitude);
        std::vector<std::string> parts;
        if (integer) {
            std::optional<int64_t> L, H;
            if (lo.set) {
                const double c = lo.excl ? std::floor(lo.v) + 1 : std::ceil(lo.v);
                if (c > big) fail(path, "minimum too large");
                if (c >= -big) L = static_cast<int64_t>(c);
            }
            if (hi.set) {
                const double c = hi.excl ? std::ceil(hi.v) - 1 : std::floor(hi.v);
                if (c < -big) fail(path, "maximum too small");
                if (c <= big) H = static_cast<int64_t>(c);
            }
            if (L && H && *L > *H) fail(path, "no integer lies within the bounds");
            if (!L || *L < 0) {  // negative values: "-" and a magnitude
                const int64_t mlo = (H && *H < 0) ? -*H : 1, mhi = L ? -*L : kMaxMagnitude;
                if (mlo <= mhi) parts.push_back("\"-\" " + uint_range(mlo, mhi));
            }
            if (!H || *H >= 0) {
                const int64_t a = L ? std::max<int64_t>(*L, 0) : 0, b = H ? *H : kMaxMagnitude;
                if (a <= b) parts.push_back(uint_range(a, b));
            }
            return add_rule(hint, join(parts, " | "));
        }
        // Fractional bounds are rounded inward (still sound, slightly narrower).
        if (lo.set && std::floor(lo.v) != lo.v) lo = {true, std::ceil(lo.v), false};
        if (hi.set && std::floor(hi.v) != hi.v) hi = {true, std::floor(hi.v), false};
        if (lo.set && lo.v < -big) lo.set = false;
        if (hi.set && hi.v > big) hi.set = false;
        if (lo.set && lo.v > big) fail(path, "minimum too large");
        if (hi.set && hi.v < -big) fail(path, "maximum too small");
        const int64_t a = static_cast<int64_t>(lo.v), b = static_cast<int64_t>(hi.v);
        if (lo.set && hi.set && (a > b || (a == b && (lo.excl || hi.excl)))) fail(path, "no number lies within the bounds");
        if (!hi.set || b > 0 || (b == 0 && !hi.excl)) {  // v >= 0
            const bool from_lo = lo.set && a >= 0;
            parts.push_back(magnitude_range(from_lo ? a : 0, from_lo && lo.excl, hi.set ? std::optional<int64_t>(b) : std::nullopt,
                                            hi.excl));
        }
        if (!lo.set || a < 0) {  // v < 0, written "-" X
            const bool from_hi = hi.set && b <= 0;
            const int64_t xa = from_hi ? -b : 0;
            const bool xa_excl = from_hi && hi.excl;
            const std::optional<int64_t> xb = lo.set ? std::optional<int64_t>(-a) : std::nullopt;
            if (!xb || xa < *xb || (xa == *xb && !xa_excl && !lo.excl))
                parts.push_back("\"-\" " + magnitude_range(xa, xa_excl, xb, lo.excl));
        }
        return add_rule(hint, join(parts, " | "));
    }

    // A key that is none of `keys`: a trie of the keys, leaving it at any point.
    std::string other_key(const std::vector<std::string>& keys, const std::string& hint) {
        struct Node {
            std::map<uint32_t, size_t> next;
            bool terminal = false;
        };
        std::vector<Node> trie(1);
        for (const std::string& k : keys) {
            std::vector<uint32_t> cps;
            bool plain = true;
            for (size_t i = 0; i < k.size() && plain;) {
                uint32_t cp;
                const size_t n = utf8::decode(k, i, cp);
                plain = n > 0 && cp >= 0x20 && cp != '"' && cp != '\\';
                cps.push_back(cp);
                i += n ? n : 1;
            }
            if (!plain) continue;  // keys JSON must escape are not excluded
            size_t node = 0;
            for (uint32_t cp : cps) {
                auto it = trie[node].next.find(cp);
                if (it == trie[node].next.end()) {
                    trie.push_back({});
                    it = trie[node].next.emplace(cp, trie.size() - 1).first;
                }
                node = it->second;
            }
            trie[node].terminal = true;
        }
        const std::string chr = need("char"), esc = need("char-esc");
        const std::string q = R"("\"")";
        std::vector<std::string> rule_of(trie.size());
        for (size_t n = trie.size(); n-- > 0;) {  // children have larger indices
            std::vector<std::string> alts;
            if (!trie[n].terminal) alts.push_back(q);
            std::vector<std::pair<uint32_t, uint32_t>> excluded = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
            for (const auto& [cp, child] : trie[n].next) {
                std::string lit;
                utf8::append(lit, cp);
                alts.push_back(gbnf_literal(lit) + " " + rule_of[child]);
                excluded.emplace_back(cp, cp);
            }
            alts.push_back("( " + gbnf_class(excluded, true) + " | \"\\\\\" " + esc + " ) " + chr + "* " + q);
            rule_of[n] = add_rule(hint + "-other-key", join(alts, " | "));
        }
        return q + " " + rule_of[0];
    }

    std::string visit_object(const json& s, const std::string& hint, int depth, const std::string& path) {
        const json* props = nullptr;
        if (s.contains("properties")) {
            props = &s["properties"];
            if (!props->is_object()) fail(path, "'properties' must be an object");
        }
        json additional = props ? json(false) : json(true);
        if (s.contains("additionalProperties")) additional = s["additionalProperties"];
        if (!additional.is_boolean() && !additional.is_object()) fail(path, "'additionalProperties' must be a boolean or a schema");
        std::vector<std::string> required;
        if (s.contains("required")) {
            if (!s["required"].is_array()) fail(path, "'required' must be an array");
            for (const json& r : s["required"]) {
                if (!r.is_string()) fail(path, "'required' must list strings");
                if (std::find(required.begin(), required.end(), r.get<std::string>()) == required.end())
                    required.push_back(r.get<std::string>());
            }
        }
        const std::string ws = need("ws");
        const auto member = [&](const std::string& key, const json& schema, const std::string& where) {
            const std::string value = visit(schema, hint + "-" + key, depth + 1, where);
            return add_rule(hint + "-" + key + "-kv", gbnf_literal(json(key).dump()) + " " + ws + " \":\" " + ws + " " + value + " " + ws);
        };
        std::vector<std::string> req, opt, declared;
        for (const std::string& key : required) {
            if (props && props->contains(key)) {
                req.push_back(member(key, (*props)[key], path + "/properties/" + key));
            } else if (additional != false) {
                req.push_back(member(key, additional, path + "/additionalProperties"));
            } else {
                fail(path, "required property '" + key + "' is not listed in 'properties'");
            }
            declared.push_back(key);
        }
        if (props) {
            for (const auto& [key, schema] : props->items()) {
                if (std::find(required.begin(), required.end(), key) != required.end()) continue;
                opt.push_back(member(key, schema, path + "/properties/" + key));
                declared.push_back(key);
            }
        }
        std::string extra;
        if (additional != false) {
            const std::string value = visit(additional, hint + "-additional", depth + 1, path + "/additionalProperties");
            const std::string key = declared.empty() ? need("string") : other_key(declared, hint);
            extra = add_rule(hint + "-additional-kv", key + " " + ws + " \":\" " + ws + " " + value + " " + ws);
        }
        const std::string comma = "\",\" " + ws + " ";
        std::string body = "\"{\" " + ws + " ";
        if (!req.empty()) {
            body += req[0];
            for (size_t i = 1; i < req.size(); ++i) body += " " + comma + req[i];
            for (const std::string& o : opt) body += " ( " + comma + o + " )?";
            if (!extra.empty()) body += " ( " + comma + extra + " )*";
        } else if (!opt.empty() || !extra.empty()) {
            // Any in-order subset of the optional members, then additional ones; the first
            // one written has no comma. tail[i]: what may follow once member i was written.
            std::vector<std::string> tail(opt.size() + 1);
            tail[opt.size()] = extra.empty() ? "" : "( " + comma + extra + " )*";
            for (size_t i = opt.size(); i-- > 0;) {
                const std::string t = "( " + comma + opt[i] + " )? " + tail[i + 1];
                tail[i] = i + 1 < opt.size() || !extra.empty() ? add_rule(hint + "-rest", t) : t;
            }
            std::vector<std::string> firsts;
            for (size_t i = 0; i < opt.size(); ++i) firsts.push_back(opt[i] + " " + tail[i + 1]);
            if (!extra.empty()) firsts.push_back(extra + " " + tail[opt.size()]);
            body += "( " + join(firsts, " | ") + " )?";
        }
        return add_rule(hint, body + " \"}\"");
    }

    std::string visit_array(const json& s, const std::string& hint, int depth, const std::string& path) {
        const auto min_items = count_keyword(s, "minItems", path), max_items = count_keyword(s, "maxItems", path);
        const int64_t min = min_items.value_or(0);
        if (max_items && min > *max_items) fail(path, "'minItems' above 'maxItems'");
        if (min > kMaxLength || (max_items && *max_items > kMaxLength))
            fail(path, "'minItems'/'maxItems' above " + std::to_string(kMaxLength) + " is not supported");
        const std::string ws = need("ws");
        const std::string comma = "\",\" " + ws + " ";
        const json* prefix = nullptr;
        json rest = true;
        if (s.contains("prefixItems")) {
            prefix = &s["prefixItems"];
            if (!prefix->is_array()) fail(path, "'prefixItems' must be an array");
            if (s.contains("items")) rest = s["items"];
        } else if (s.contains("items")) {
            if (s["items"].is_array()) prefix = &s["items"];  // draft 4-2019 tuple form
            else rest = s["items"];
        }
        if (!rest.is_boolean() && !rest.is_object()) fail(path, "'items' must be a schema");
        int64_t max = max_items ? *max_items : -1;
        const bool rest_ok = rest != false;
        std::string rest_item;
        if (rest_ok) rest_item = add_rule(hint + "-item", visit(rest, hint + "-item", depth + 1, path + "/items") + " " + ws);
        std::vector<std::string> tuple;
        if (prefix) {
            const std::string where = path + (s.contains("prefixItems") ? "/prefixItems/" : "/items/");
            for (size_t i = 0; i < prefix->size() && (max < 0 || static_cast<int64_t>(i) < max); ++i)
                tuple.push_back(add_rule(hint + "-" + std::to_string(i),
                                         visit((*prefix)[i], hint + "-" + std::to_string(i), depth + 1, where + std::to_string(i)) +
                                             " " + ws));
        }
        const auto n = static_cast<int64_t>(tuple.size());
        if (!rest_ok && min > n) fail(path, "'minItems' needs more items than the schema allows");
        if (!rest_ok && (max < 0 || max > n)) max = n;
        // After i items: the tuple's remaining positions, then rest items within the bounds.
        std::function<std::string(int64_t)> after = [&](int64_t i) -> std::string {
            if (i < n) {
                const std::string piece = comma + tuple[static_cast<size_t>(i)] + " " + after(i + 1);
                return i < min ? piece : "( " + piece + " )?";
            }
            if (!rest_ok || (max >= 0 && max <= i)) return "";
            const int64_t lo = std::max<int64_t>(0, min - i);
            return "( " + comma + rest_item + " ){" + std::to_string(lo) + "," + (max < 0 ? "" : std::to_string(max - i)) + "}";
        };
        const std::string first = n > 0 ? tuple[0] : rest_item;
        std::string body = "\"[\" " + ws + " ";
        if (max != 0) {
            const std::string items = first + " " + after(1);
            body += min >= 1 ? items : "( " + items + " )?";
        }
        return add_rule(hint, body + " \"]\"");
    }
};

std::shared_ptr<const Grammar> parse_or_schema_error(const std::string& gbnf) {
    try {
        return Grammar::parse(gbnf);
    } catch (const GrammarError& e) {
        throw SchemaError(std::string("JSON schema cannot be turned into a grammar: ") + e.what());
    }
}

}  // namespace

namespace json_schema_detail {

std::string gbnf_literal(std::string_view utf8) {
    static const char* hex = "0123456789ABCDEF";
    std::string out = "\"";
    for (char ch : utf8) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') out += '\\', out += ch;
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7F) out += "\\x", out += hex[c >> 4], out += hex[c & 15];
        else out += ch;
    }
    return out + "\"";
}

std::string gbnf_class(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool negate) {
    static const char* hex = "0123456789ABCDEF";
    const auto put = [](std::string& out, uint32_t cp) {
        if (cp == '\\' || cp == ']' || cp == '[' || cp == '-' || cp == '^') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp < 0x20 || cp == 0x7F) {
            out += "\\x";
            out += hex[cp >> 4];
            out += hex[cp & 15];
        } else {
            utf8::append(out, cp);
        }
    };
    std::string out = negate ? "[^" : "[";
    for (const auto& [lo, hi] : ranges) {
        put(out, lo);
        if (hi != lo) {
            out += '-';
            put(out, hi);
        }
    }
    return out + "]";
}

}  // namespace json_schema_detail

std::string json_schema_to_gbnf(const json& schema) { return Converter(schema).run(); }

std::string json_gbnf(bool object_only) {
    std::string out = std::string("root ::= ") + (object_only ? "object" : "value") + "\n";
    for (const auto& [name, b] : builtins()) out += name + " ::= " + b.body + "\n";
    return out;
}

std::shared_ptr<const Grammar> grammar_from_json_schema(const json& schema) {
    return parse_or_schema_error(json_schema_to_gbnf(schema));
}

std::shared_ptr<const Grammar> grammar_for_format(const json& format) {
    if (format.is_null()) return nullptr;
    if (format.is_string()) {
        if (format.get<std::string>().empty()) return nullptr;
        if (format.get<std::string>() == "json") {
            static const std::shared_ptr<const Grammar> g = Grammar::parse(json_gbnf(true));
            return g;
        }
    } else if (format.is_object()) {
        return grammar_from_json_schema(format);
    }
    throw SchemaError("format must be \"json\" or a JSON schema object");
}

std::shared_ptr<const Grammar> grammar_for_response_format(const json& rf) {
    if (rf.is_null()) return nullptr;
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
        throw SchemaError("response_format must be an object with a string 'type'");
    const std::string type = rf["type"].get<std::string>();
    if (type == "text") return nullptr;
    if (type == "json_object") return grammar_for_format("json");
    if (type == "json_schema") {
        if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
            throw SchemaError("response_format.json_schema must be an object");
        const json& js = rf["json_schema"];
        if (!js.contains("schema")) return grammar_for_format("json");
        if (!js["schema"].is_object() && !js["schema"].is_boolean())
            throw SchemaError("response_format.json_schema.schema must be an object");
        return grammar_from_json_schema(js["schema"]);
    }
    throw SchemaError("unsupported response_format type '" + type + "'");
}

}  // namespace hearth
