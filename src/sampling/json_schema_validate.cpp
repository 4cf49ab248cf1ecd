// validate_json: checks a JSON value against a schema with the semantics documented in
// json_schema.h (strict objects when properties are listed). Written independently of the
// grammar converter so tests can use it to check what the grammar lets through.
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>

#include "sampling/json_schema.h"

namespace hearth {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 256;

std::wstring to_wide(const std::string& s) {
    std::wstring out;
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        const size_t n = utf8::decode(s, i, cp);
        out += static_cast<wchar_t>(n ? cp : 0xFFFD);
        i += n ? n : 1;
    }
    return out;
}

size_t code_points(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

std::string pointer_token(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

std::string type_of(const json& v) {
    if (v.is_null()) return "null";
    if (v.is_boolean()) return "boolean";
    if (v.is_number_integer()) return "integer";
    if (v.is_number()) return "number";
    if (v.is_string()) return "string";
    if (v.is_array()) return "array";
    return "object";
}

bool has_type(const json& v, const std::string& t) {
    if (t == "integer")
        return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>());
    if (t == "number") return v.is_number();
    if (t == "string") return v.is_string();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    return false;
}

// Compiled patterns, shared (compiling std::regex is slow).
bool pattern_search(const std::string& pattern, const std::string& text, bool& bad) {
    static std::mutex mu;
    static std::map<std::string, std::shared_ptr<const std::wregex>> cache;
    std::shared_ptr<const std::wregex> re;
    {
        std::lock_guard<std::mutex> lock(mu);
        auto it = cache.find(pattern);
        if (it != cache.end()) re = it->second;
    }
    if (!re) {
        try {
            re = std::make_shared<const std::wregex>(to_wide(pattern), std::regex::ECMAScript);
        } catch (const std::regex_error&) {
            bad = true;
            return false;
        }
        std::lock_guard<std::mutex> lock(mu);
        if (cache.size() > 256) cache.clear();
        cache.emplace(pattern, re);
    }
    return std::regex_search(to_wide(text), *re);
}

bool format_ok(const std::string& format, const std::string& s) {
    static const std::string date = R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))";
    static const std::string time = R"(([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))";
    static const std::map<std::string, std::regex> re = {
        {"date", std::regex(date)},
        {"time", std::regex(time)},
        {"date-time", std::regex(date + "[Tt]" + time)},
        {"uuid", std::regex(R"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")},
        {"email", std::regex(R"([^\s@]+@[^\s@]+\.[^\s@]+)")},
    };
    auto it = re.find(format);
    return it == re.end() || std::regex_match(s, it->second);
}

class Validator {
public:
    explicit Validator(const json& root) : root_(root) {}

    std::string check(const json& s, const json& v, const std::string& path, int depth) {
        if (depth > kMaxDepth) return at(path, "schema nesting too deep");
        if (s.is_boolean()) return s.get<bool>() ? "" : at(path, "schema 'false' allows nothing");
        if (!s.is_object()) return at(path, "invalid schema (not an object)");
        std::string r;
        if (s.contains("$ref")) {
            const json* target = resolve(s["$ref"]);
            if (!target) return at(path, "unresolvable $ref " + s["$ref"].dump());
            if (!(r = check(*target, v, path, depth + 1)).empty()) return r;
        }
        if (s.contains("type")) {
            const json& t = s["type"];
            bool ok = false;
            if (t.is_string()) ok = has_type(v, t.get<std::string>());
            else if (t.is_array())
                for (const json& x : t) ok = ok || (x.is_string() && has_type(v, x.get<std::string>()));
            if (!ok) return at(path, "expected type " + t.dump() + ", got " + type_of(v));
        }
        if (s.contains("const") && s["const"] != v) return at(path, "expected " + s["const"].dump());
        if (s.contains("enum")) {
            bool ok = false;
            if (s["enum"].is_array())
                for (const json& x : s["enum"]) ok = ok || x == v;
            if (!ok) return at(path, "not one of the enum values");
        }
        if (s.contains("allOf") && s["allOf"].is_array())
            for (const json& sub : s["allOf"])
                if (!(r = check(sub, v, path, depth + 1)).empty()) return r;
        if (s.contains("anyOf") && s["anyOf"].is_array()) {
            std::string first;
            bool ok = false;
            for (const json& sub : s["anyOf"]) {
                r = check(sub, v, path, depth + 1);
                if (r.empty()) {
                    ok = true;
                    break;
                }
                if (first.empty()) first = r;
            }
            if (!ok) return at(path, "matches no anyOf branch (first: " + first + ")");
        }
        if (s.contains("oneOf") && s["oneOf"].is_array()) {
            int n = 0;
            for (const json& sub : s["oneOf"]) n += check(sub, v, path, depth + 1).empty();
            if (n != 1) return at(path, "matches " + std::to_string(n) + " oneOf branches, not exactly one");
        }
        if (s.contains("not") && check(s["not"], v, path, depth + 1).empty()) return at(path, "matches the 'not' schema");
        if (v.is_string()) return check_string(s, v.get<std::string>(), path);
        if (v.is_number()) return check_number(s, v.get<double>(), path);
        if (v.is_object()) return check_object(s, v, path, depth);
        if (v.is_array()) return check_array(s, v, path, depth);
        return "";
    }

private:
    const json& root_;

    static std::string at(const std::string& path, const std::string& msg) {
        return "at " + (path.empty() ? std::string("/") : path) + ": " + msg;
    }

    const json* resolve(const json& ref) const {
        if (!ref.is_string()) return nullptr;
        const std::string r = ref.get<std::string>();
        if (r.empty() || r[0] != '#') return nullptr;
        std::string p;
        for (size_t i = 1; i < r.size(); ++i) {  // percent-decoding
            if (r[i] == '%' && i + 2 < r.size() && std::isxdigit(static_cast<unsigned char>(r[i + 1])) &&
                std::isxdigit(static_cast<unsigned char>(r[i + 2]))) {
                p += static_cast<char>(std::stoi(r.substr(i + 1, 2), nullptr, 16));
                i += 2;
            } else {
                p += r[i];
            }
        }
        try {
            const json::json_pointer ptr(p);
            return root_.contains(ptr) ? &root_.at(ptr) : nullptr;
        } catch (const json::exception&) {
            return nullptr;
        }
    }

    static std::string check_string(const json& s, const std::string& str, const std::string& path) {
        const size_t n = code_points(str);
        if (s.contains("minLength") && s["minLength"].is_number() && static_cast<double>(n) < s["minLength"].get<double>())
            return at(path, "shorter than minLength " + s["minLength"].dump());
        if (s.contains("maxLength") && s["maxLength"].is_number() && static_cast<double>(n) > s["maxLength"].get<double>())
            return at(path, "longer than maxLength " + s["maxLength"].dump());
        if (s.contains("pattern") && s["pattern"].is_string()) {
            bool bad = false;
            const bool ok = pattern_search(s["pattern"].get<std::string>(), str, bad);
            if (bad) return at(path, "invalid pattern " + s["pattern"].dump());
            if (!ok) return at(path, "does not match pattern " + s["pattern"].dump());
        }
        if (s.contains("format") && s["format"].is_string() && !format_ok(s["format"].get<std::string>(), str))
            return at(path, "not a valid " + s["format"].get<std::string>());
        return "";
    }

    static std::string check_number(const json& s, double x, const std::string& path) {
        const auto num = [&](const char* k, double& out) {
            if (!s.contains(k) || !s[k].is_number()) return false;
            out = s[k].get<double>();
            return true;
        };
        double b;
        const bool excl_min_flag = s.contains("exclusiveMinimum") && s["exclusiveMinimum"] == true;
        const bool excl_max_flag = s.contains("exclusiveMaximum") && s["exclusiveMaximum"] == true;
        if (num("minimum", b) && (x < b || (excl_min_flag && x == b))) return at(path, "below the minimum");
        if (num("maximum", b) && (x > b || (excl_max_flag && x == b))) return at(path, "above the maximum");
        if (num("exclusiveMinimum", b) && x <= b) return at(path, "not above exclusiveMinimum");
        if (num("exclusiveMaximum", b) && x >= b) return at(path, "not below exclusiveMaximum");
        if (num("multipleOf", b) && b > 0) {
            const double q = x / b;
            if (std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q))) return at(path, "not a multiple of " + s["multipleOf"].dump());
        }
        return "";
    }

    std::string check_object(const json& s, const json& v, const std::string& path, int depth) {
        if (s.contains("required") && s["required"].is_array())
            for (const json& k : s["required"])
                if (k.is_string() && !v.contains(k.get<std::string>())) return at(path, "missing required property " + k.dump());
        const json* props = s.contains("properties") && s["properties"].is_object() ? &s["properties"] : nullptr;
        const json additional = s.contains("additionalProperties") ? s["additionalProperties"] : json(props == nullptr);
        for (const auto& [key, x] : v.items()) {
            const std::string sub = path + "/" + pointer_token(key);
            std::string r;
            if (props && props->contains(key)) r = check((*props)[key], x, sub, depth + 1);
            else if (additional == false) r = at(path, "property \"" + key + "\" is not allowed");
            else if (additional.is_object()) r = check(additional, x, sub, depth + 1);
            if (!r.empty()) return r;
        }
        if (s.contains("minProperties") && s["minProperties"].is_number() && static_cast<double>(v.size()) < s["minProperties"].get<double>())
            return at(path, "fewer properties than minProperties");
        if (s.contains("maxProperties") && s["maxProperties"].is_number() && static_cast<double>(v.size()) > s["maxProperties"].get<double>())
            return at(path, "more properties than maxProperties");
        return "";
    }

    std::string check_array(const json& s, const json& v, const std::string& path, int depth) {
        const json* prefix = nullptr;
        const json* rest = nullptr;
        if (s.contains("prefixItems") && s["prefixItems"].is_array()) {
            prefix = &s["prefixItems"];
            if (s.contains("items")) rest = &s["items"];
        } else if (s.contains("items") && s["items"].is_array()) {
            prefix = &s["items"];
            if (s.contains("additionalItems")) rest = &s["additionalItems"];
        } else if (s.contains("items")) {
            rest = &s["items"];
        }
        for (size_t i = 0; i < v.size(); ++i) {
            const json* sub = prefix && i < prefix->size() ? &(*prefix)[i] : rest;
            if (!sub) continue;
            const std::string r = check(*sub, v[i], path + "/" + std::to_string(i), depth + 1);
            if (!r.empty()) return r;
        }
        if (s.contains("minItems") && s["minItems"].is_number() && static_cast<double>(v.size()) < s["minItems"].get<double>())
            return at(path, "fewer items than minItems " + s["minItems"].dump());
        if (s.contains("maxItems") && s["maxItems"].is_number() && static_cast<double>(v.size()) > s["maxItems"].get<double>())
            return at(path, "more items than maxItems " + s["maxItems"].dump());
        if (s.contains("uniqueItems") && s["uniqueItems"] == true)
            for (size_t i = 0; i < v.size(); ++i)
                for (size_t j = i + 1; j < v.size(); ++j)
                    if (v[i] == v[j]) return at(path, "items " + std::to_string(i) + " and " + std::to_string(j) + " are equal");
        return "";
    }
};

}  // namespace

namespace json_schema_detail {
std::string validate_at(const json& root, const json& schema, const json& value) {
    return Validator(root).check(schema, value, "", 0);
}
}  // namespace json_schema_detail

std::string validate_json(const json& schema, const json& value) { return json_schema_detail::validate_at(schema, schema, value); }

}  // namespace hearth
