// Methods templates may call on values: str (strip, split, startswith, format, ...), dict
// (items, keys, values, get), list/tuple (index, count) and loop.cycle. Mutating methods
// are refused as jinja2's ImmutableSandboxedEnvironment refuses them.
#include <algorithm>
#include <array>
#include <cstdio>

#include "template/builtins.h"
#include "template/interp.h"
#include "template/text.h"

namespace hearth::tmpl {

namespace {

const char* const kStrMethods[] = {
    "strip",     "lstrip",    "rstrip",    "split",      "rsplit",       "splitlines",  "startswith", "endswith",
    "upper",     "lower",     "casefold",  "swapcase",   "title",        "capitalize",  "replace",    "find",
    "rfind",     "index",     "rindex",    "count",      "join",         "format",      "isalpha",    "isdigit",
    "isnumeric", "isdecimal", "isalnum",   "isspace",    "islower",      "isupper",     "zfill",      "center",
    "ljust",     "rjust",     "partition", "rpartition", "removeprefix", "removesuffix"};
const char* const kDictMethods[] = {"items", "keys", "values", "get", "copy"};
const char* const kDictUnsafe[] = {"pop", "popitem", "setdefault", "update", "clear"};
const char* const kListUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};

template <size_t N>
bool listed(const char* const (&names)[N], const std::string& name) {
    return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

// Code-point index of a byte offset.
int64_t cp_index(const std::string& s, size_t byte) {
    return int64_t(text::cp_count(std::string_view(s).substr(0, byte)));
}

// Python's optional [start:end] arguments of find/count/startswith, as byte offsets.
std::pair<size_t, size_t> byte_range(const std::string& s, const Value& start, const Value& end) {
    std::vector<size_t> offs = text::cp_offsets(s);
    const int64_t n = int64_t(offs.size()) - 1;
    auto adj = [n](const Value& v, int64_t dflt) {
        if (v.is_undefined() || v.is_none()) return dflt;
        int64_t x = to_int_arg(v, "slice index");
        if (x < 0) x = std::max<int64_t>(0, x + n);
        return std::min(x, n);
    };
    const int64_t b = adj(start, 0), e = adj(end, n);
    return {offs[size_t(b)], offs[size_t(std::max(b, e))]};
}

std::string format_spec(Interp& in, const Value& v, const std::string& spec) {
    if (spec.empty()) return to_str(v);
    size_t i = 0;
    char fill = ' ', align = 0;
    if (spec.size() >= 2 && std::string_view("<>^=").find(spec[1]) != std::string_view::npos) {
        fill = spec[0];
        align = spec[1];
        i = 2;
    } else if (std::string_view("<>^=").find(spec[0]) != std::string_view::npos) {
        align = spec[0];
        i = 1;
    }
    if (i < spec.size() && spec[i] == '0' && !align) {
        fill = '0';
        align = '=';
    }
    int width = 0, prec = -1;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') width = std::min(width * 10 + (spec[i++] - '0'), 4096);
    if (i < spec.size() && spec[i] == '.') {
        prec = 0;
        ++i;
        while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') prec = std::min(prec * 10 + (spec[i++] - '0'), 300);
    }
    const char type = i < spec.size() ? spec[i++] : 0;
    if (i != spec.size()) fail(TemplateErrorKind::Type, "unsupported format specifier '" + spec + "'");
    std::string body;
    if (type == 'f' || type == 'F' || type == 'e' || type == 'g' || (type == 0 && prec >= 0 && v.is_number())) {
        if (!v.is_number()) fail(TemplateErrorKind::Type, "unknown format code for object of type " + type_name(v));
        char buf[400];
        std::snprintf(buf, sizeof buf, (std::string("%.*") + (type ? type : 'g')).c_str(), prec < 0 ? 6 : prec,
                      v.number());
        body = buf;
    } else if (type == 'd') {
        if (v.kind() != Kind::Int && v.kind() != Kind::Bool)
            fail(TemplateErrorKind::Type, "unknown format code 'd' for object of type '" + type_name(v) + "'");
        body = std::to_string(v.integer());
    } else {
        body = to_str(v);
        if (prec >= 0) {
            auto offs = text::cp_offsets(body);
            if (offs.size() - 1 > size_t(prec)) body.resize(offs[size_t(prec)]);
        }
    }
    const size_t n = text::cp_count(body);
    if (size_t(width) <= n) return body;
    const size_t pad = size_t(width) - n;
    if (!align) align = v.is_number() ? '>' : '<';
    in.check_size(size_t(width));
    switch (align) {
        case '>': return std::string(pad, fill) + body;
        case '^': return std::string(pad / 2, fill) + body + std::string(pad - pad / 2, fill);
        case '=':
            if (!body.empty() && (body[0] == '-' || body[0] == '+'))
                return body[0] + std::string(pad, fill) + body.substr(1);
            return std::string(pad, fill) + body;
        default: return body + std::string(pad, fill);
    }
}

// str.format with jinja2's sandboxed formatter semantics (field lookups go through getattr/getitem).
std::string str_format(Interp& in, const std::string& fmt, CallArgs& a) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        const char c = fmt[i];
        if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}')
                ++i;
            else
                fail(TemplateErrorKind::Type, "Single '}' encountered in format string");
            out += '}';
            continue;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        const size_t close = fmt.find('}', i);
        if (close == std::string::npos) fail(TemplateErrorKind::Type, "Single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, close - i - 1);
        i = close;
        std::string spec, conv;
        if (size_t colon = field.find(':'); colon != std::string::npos) {
            spec = field.substr(colon + 1);
            field.resize(colon);
        }
        if (size_t bang = field.find('!'); bang != std::string::npos) {
            conv = field.substr(bang + 1);
            field.resize(bang);
        }
        size_t name_end = std::min(field.find('.'), field.find('['));
        const std::string head = field.substr(0, name_end);
        Value v;
        if (head.empty() || std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
            const size_t idx = head.empty() ? auto_index++ : size_t(std::stoul(head.substr(0, 9)));
            if (idx >= a.pos.size())
                fail(TemplateErrorKind::Type, "Replacement index " + std::to_string(idx) + " out of range");
            v = a.pos[idx];
        } else {
            auto it = std::find_if(a.kw.begin(), a.kw.end(), [&](const auto& kv) { return kv.first == head; });
            if (it == a.kw.end()) fail(TemplateErrorKind::Type, "KeyError: '" + head + "'");
            v = it->second;
        }
        size_t p = name_end;
        while (p < field.size()) {
            if (field[p] == '.') {
                size_t e = std::min(field.find('.', p + 1), field.find('[', p + 1));
                v = in.getattr(v, field.substr(p + 1, e - p - 1));
                p = e;
            } else {
                size_t e = field.find(']', p);
                if (e == std::string::npos) fail(TemplateErrorKind::Type, "Missing ']' in format string");
                const std::string key = field.substr(p + 1, e - p - 1);
                const bool num = !key.empty() && key.size() < 18 &&
                                 std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
                v = in.getitem(v, num ? Value(int64_t(std::stoll(key))) : Value(key));
                p = e + 1;
            }
        }
        if (conv == "r" || conv == "a") {
            std::string r;
            repr(v, r);
            v = Value(std::move(r));
        } else if (!conv.empty() && conv != "s") {
            fail(TemplateErrorKind::Type, "Unknown conversion specifier " + conv);
        }
        out += format_spec(in, v, spec);
        in.check_size(out.size());
    }
    return out;
}

template <class Pred>
bool all_cps(const std::string& s, Pred pred) {
    if (s.empty()) return false;
    for (size_t i = 0; i < s.size();)
        if (!pred(text::next_cp(s, i))) return false;
    return true;
}

bool is_alpha(char32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= 0xC0 && !text::is_space(c));
}
bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

Value str_method(Interp& in, const Value& self, const std::string& m, CallArgs& a) {
    const std::string& s = self.str();
    const bool safe = self.is_safe();
    auto str_result = [&](std::string r) { return make_string(std::move(r), safe, in); };
    auto list_of = [&](std::vector<std::string> parts) {
        std::vector<Value> out;
        out.reserve(parts.size());
        for (auto& x : parts) out.emplace_back(std::move(x), safe);
        in.charge_bytes(s.size());
        return Value::list(std::move(out));
    };
    if (m == "strip" || m == "lstrip" || m == "rstrip") {
        Params p(m.c_str(), a, {"chars"});
        return str_result(text::strip(s, opt_string(p[0], m.c_str()), m != "rstrip", m != "lstrip"));
    }
    if (m == "split" || m == "rsplit") {
        Params p(m.c_str(), a, {"sep", "maxsplit"});
        auto sep = opt_string(p[0], m.c_str());
        if (sep && sep->empty()) fail(TemplateErrorKind::Type, "empty separator");
        const int64_t maxsplit = p.given(1) ? to_int_arg(p[1], m.c_str()) : -1;
        return list_of(m == "split" ? text::split(s, sep, maxsplit) : text::rsplit(s, sep, maxsplit));
    }
    if (m == "splitlines") {
        Params p("splitlines", a, {"keepends"});
        return list_of(text::splitlines(s, truthy(p[0])));
    }
    if (m == "startswith" || m == "endswith") {
        Params p(m.c_str(), a, {"prefix", "start", "end"});
        auto [b, e] = byte_range(s, p[1], p[2]);
        const std::string_view part = std::string_view(s).substr(b, e - b);
        std::vector<Value> options =
            p[0].is_array() && p[0].arr().seq == SeqKind::Tuple ? p[0].arr().items : std::vector<Value>{p[0]};
        for (const auto& o : options) {
            if (!o.is_string()) type_error(m + " first arg must be str or a tuple of str, not " + type_name(o));
            const std::string& x = o.str();
            if (x.size() <= part.size() &&
                (m == "startswith" ? part.substr(0, x.size()) == x : part.substr(part.size() - x.size()) == x))
                return Value(true);
        }
        return Value(false);
    }
    if (m == "upper") return str_result(text::upper(s));
    if (m == "lower" || m == "casefold") return str_result(text::lower(s));
    if (m == "title") return str_result(text::title_method(s));
    if (m == "swapcase") {
        std::string out;
        for (size_t i = 0; i < s.size();) {
            size_t at = i;
            text::next_cp(s, i);
            const std::string one = s.substr(at, i - at);
            const std::string up = text::upper(one);
            out += up != one ? up : text::lower(one);
        }
        return str_result(std::move(out));
    }
    if (m == "capitalize") return str_result(text::capitalize(s));
    if (m == "replace") {
        Params p("replace", a, {"old", "new", "count"});
        if (!p[0].is_string() || !p[1].is_string()) type_error("replace() arguments must be str");
        const int64_t count = p.given(2) ? to_int_arg(p[2], "replace") : -1;
        const size_t hits = p[0].str().empty() ? text::cp_count(s) + 1 : s.size() / p[0].str().size() + 1;
        in.check_size(s.size() + hits * p[1].str().size());
        return str_result(text::replace(s, p[0].str(), p[1].str(), count));
    }
    if (m == "find" || m == "rfind" || m == "index" || m == "rindex" || m == "count") {
        Params p(m.c_str(), a, {"sub", "start", "end"});
        if (!p[0].is_string()) type_error("must be str, not " + type_name(p[0]));
        auto [b, e] = byte_range(s, p[1], p[2]);
        const std::string_view part = std::string_view(s).substr(b, e - b);
        const std::string& sub = p[0].str();
        if (m == "count") {
            if (sub.empty()) return Value(int64_t(text::cp_count(part)) + 1);
            int64_t n = 0;
            for (size_t pos = part.find(sub); pos != std::string_view::npos; pos = part.find(sub, pos + sub.size()))
                ++n;
            return Value(n);
        }
        const size_t hit = (m == "find" || m == "index") ? part.find(sub) : part.rfind(sub);
        if (hit == std::string_view::npos) {
            if (m == "index" || m == "rindex") fail(TemplateErrorKind::Type, "substring not found");
            return Value(int64_t(-1));
        }
        return Value(cp_index(s, b + hit));
    }
    if (m == "join") {
        Params p("join", a, {"iterable"});
        std::string out;
        size_t k = 0;
        for (const auto& item : iterate(p[0])) {
            if (!item.is_string())
                type_error("sequence item " + std::to_string(k) + ": expected str instance, " + type_name(item) +
                           " found");
            if (k++) out += s;
            out += item.str();
            in.check_size(out.size());
        }
        return str_result(std::move(out));
    }
    if (m == "format") return make_string(str_format(in, s, a), safe, in);
    if (m == "isalpha") return Value(all_cps(s, is_alpha));
    if (m == "isdigit" || m == "isnumeric" || m == "isdecimal") return Value(all_cps(s, is_digit));
    if (m == "isalnum") return Value(all_cps(s, [](char32_t c) { return is_alpha(c) || is_digit(c); }));
    if (m == "isspace") return Value(all_cps(s, text::is_space));
    if (m == "islower") return Value(text::lower(s) == s && text::upper(s) != s);
    if (m == "isupper") return Value(text::upper(s) == s && text::lower(s) != s);
    if (m == "zfill" || m == "center" || m == "ljust" || m == "rjust") {
        Params p(m.c_str(), a, {"width", "fillchar"});
        const int64_t width = std::min<int64_t>(to_int_arg(p[0], m.c_str()), int64_t(in.options().max_output_bytes));
        const std::string fill = p.given(1) ? to_str(p[1]) : (m == "zfill" ? "0" : " ");
        if (text::cp_count(fill) != 1) type_error("The fill character must be exactly one character long");
        const int64_t n = int64_t(text::cp_count(s));
        if (width <= n) return self;
        const int64_t pad = width - n;
        auto rep = [&](int64_t k) {
            std::string r;
            for (int64_t i = 0; i < k; ++i) r += fill;
            return r;
        };
        if (m == "ljust") return str_result(s + rep(pad));
        if (m == "rjust") return str_result(rep(pad) + s);
        if (m == "center") {
            const int64_t left = pad / 2 + (pad & width & 1);
            return str_result(rep(left) + s + rep(pad - left));
        }
        if (!s.empty() && (s[0] == '-' || s[0] == '+')) return str_result(s[0] + rep(pad) + s.substr(1));
        return str_result(rep(pad) + s);
    }
    if (m == "partition" || m == "rpartition") {
        Params p(m.c_str(), a, {"sep"});
        if (!p[0].is_string()) type_error("must be str, not " + type_name(p[0]));
        const std::string& sep = p[0].str();
        if (sep.empty()) fail(TemplateErrorKind::Type, "empty separator");
        const size_t hit = m == "partition" ? s.find(sep) : s.rfind(sep);
        std::vector<Value> parts;
        if (hit == std::string::npos) {
            if (m == "partition")
                parts = {Value(s, safe), Value("", safe), Value("", safe)};
            else
                parts = {Value("", safe), Value("", safe), Value(s, safe)};
        } else {
            parts = {Value(s.substr(0, hit), safe), Value(sep, safe), Value(s.substr(hit + sep.size()), safe)};
        }
        return Value::list(std::move(parts), SeqKind::Tuple);
    }
    if (m == "removeprefix" || m == "removesuffix") {
        Params p(m.c_str(), a, {"affix"});
        if (!p[0].is_string()) type_error("must be str, not " + type_name(p[0]));
        const std::string& x = p[0].str();
        if (m == "removeprefix" && s.compare(0, x.size(), x) == 0) return str_result(s.substr(x.size()));
        if (m == "removesuffix" && s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0)
            return str_result(s.substr(0, s.size() - x.size()));
        return self;
    }
    fail(TemplateErrorKind::Type, "'str' object has no attribute '" + m + "'");
}

Value dict_method(Interp& in, const Value& self, const std::string& m, CallArgs& a) {
    const ObjectData& d = self.obj();
    if (m == "get") {
        Params p("get", a, {"key", "default"});
        if (!p.given(0)) type_error("get expected at least 1 argument, got 0");
        if (p[0].is_string())
            if (const Value* v = d.find(p[0].str())) return *v;
        return p.given(1) ? p[1] : Value::none();
    }
    Params p(m.c_str(), a, {});
    in.step(d.size() / 16);
    if (m == "copy") {
        auto obj = std::make_shared<ObjectData>();
        for (const auto& [k, v] : d.entries()) obj->set(k, v);
        return Value::object(std::move(obj));
    }
    std::vector<Value> out;
    out.reserve(d.size());
    for (const auto& [k, v] : d.entries()) {
        if (m == "items")
            out.push_back(Value::list({Value(k), v}, SeqKind::Tuple));
        else if (m == "keys")
            out.emplace_back(k);
        else
            out.push_back(v);
    }
    return Value::list(std::move(out), SeqKind::View,
                       m == "items"  ? "dict_items"
                       : m == "keys" ? "dict_keys"
                                     : "dict_values");
}

Value list_method(Interp& in, const Value& self, const std::string& m, CallArgs& a) {
    const auto& items = self.arr().items;
    if (m == "copy") {
        Params p("copy", a, {});
        return Value::list(items);
    }
    Params p(m.c_str(), a, {"value"});
    in.step(items.size() / 16);
    if (m == "count")
        return Value(
            int64_t(std::count_if(items.begin(), items.end(), [&](const Value& x) { return equals(x, p[0]); })));
    for (size_t i = 0; i < items.size(); ++i)
        if (equals(items[i], p[0])) return Value(int64_t(i));
    std::string r;
    repr(p[0], r);
    fail(TemplateErrorKind::Type, r + " is not in " + type_name(self));
}

class BoundMethod : public Callable {
public:
    BoundMethod(Value self, std::string method) : Callable(std::move(method)), self_(std::move(self)) {}
    Value call(Interp& in, CallArgs& a) override {
        switch (self_.kind()) {
            case Kind::String: return str_method(in, self_, name(), a);
            case Kind::Object: return dict_method(in, self_, name(), a);
            case Kind::Array: return list_method(in, self_, name(), a);
            case Kind::Loop: {
                if (a.pos.empty()) type_error("no items for cycling given");
                return a.pos[self_.loop().index0 % a.pos.size()];
            }
            default: type_error("'" + type_name(self_) + "' object has no method '" + name() + "'");
        }
    }
    std::string repr() const override { return "<built-in method " + name() + " of " + type_name(self_) + " object>"; }

private:
    Value self_;
};

Value loop_attr(const Value& obj, const std::string& name) {
    const LoopData& l = obj.loop();
    const int64_t n = int64_t(l.items->items.size()), i = int64_t(l.index0);
    if (name == "index") return Value(i + 1);
    if (name == "index0") return Value(i);
    if (name == "revindex") return Value(n - i);
    if (name == "revindex0") return Value(n - i - 1);
    if (name == "first") return Value(i == 0);
    if (name == "last") return Value(i == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(int64_t(l.depth0 + 1));
    if (name == "depth0") return Value(int64_t(l.depth0));
    if (name == "previtem")
        return i > 0 ? l.items->items[size_t(i - 1)] : Value::undefined("there is no previous item");
    if (name == "nextitem")
        return i + 1 < n ? l.items->items[size_t(i + 1)] : Value::undefined("there is no next item");
    if (name == "cycle") return Value::callable(std::make_shared<BoundMethod>(obj, name));
    return Value::undefined_attr(obj, name);
}

Value unsafe(const Value& obj, const std::string& name) {
    return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.");
}

}  // namespace

std::optional<Value> method_attr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Kind::String:
            if (listed(kStrMethods, name)) return Value::callable(std::make_shared<BoundMethod>(obj, name));
            break;
        case Kind::Object:
            if (listed(kDictMethods, name)) return Value::callable(std::make_shared<BoundMethod>(obj, name));
            if (listed(kDictUnsafe, name)) return unsafe(obj, name);
            break;
        case Kind::Array: {
            const SeqKind seq = obj.arr().seq;
            if (seq == SeqKind::List || seq == SeqKind::Tuple) {
                if ((name == "index" || name == "count") || (seq == SeqKind::List && name == "copy"))
                    return Value::callable(std::make_shared<BoundMethod>(obj, name));
                if (seq == SeqKind::List && listed(kListUnsafe, name)) return unsafe(obj, name);
            }
            break;
        }
        case Kind::Loop: return loop_attr(obj, name);
        default: break;
    }
    return std::nullopt;
}

}  // namespace hearth::tmpl
