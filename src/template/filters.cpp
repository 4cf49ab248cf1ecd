// jinja2's built-in filters, with transformers' tojson, plus the argument binding helpers the
// library shares.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "template/builtins.h"
#include "template/interp.h"
#include "template/text.h"

namespace hearth::tmpl {

// ---- shared helpers

Params::Params(const char* fn, CallArgs& args, std::initializer_list<const char*> names)
    : values(names.size()), passed(names.size(), false) {
    if (args.pos.size() > names.size())
        type_error(std::string(fn) + "() takes at most " + std::to_string(names.size()) + " argument(s) (" +
                   std::to_string(args.pos.size()) + " given)");
    for (size_t i = 0; i < args.pos.size(); ++i) {
        values[i] = args.pos[i];
        passed[i] = true;
    }
    for (auto& [k, v] : args.kw) {
        size_t idx = 0;
        for (const char* n : names) {
            if (k == n) break;
            ++idx;
        }
        if (idx == names.size()) type_error(std::string(fn) + "() got an unexpected keyword argument '" + k + "'");
        values[idx] = v;
        passed[idx] = true;
    }
}

int64_t to_int_arg(const Value& v, const char* what) {
    if (v.kind() == Kind::Int || v.kind() == Kind::Bool) return v.integer();
    if (v.kind() == Kind::Float) return int64_t(v.as_float());
    type_error(std::string(what) + ": an integer is required, not '" + type_name(v) + "'");
}

Value make_string(std::string s, bool safe, Interp& in) {
    in.check_size(s.size());
    in.charge_bytes(s.size());
    return Value(std::move(s), safe);
}

std::optional<std::string> opt_string(const Value& v, const char* what) {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_string()) type_error(std::string(what) + " arg must be None or str, not " + type_name(v));
    return v.str();
}

Value get_path(Interp& in, const Value& v, const std::string& path) {
    Value cur = v;
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        const bool numeric =
            !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        cur = numeric && part.size() < 18 ? in.getitem(cur, Value(int64_t(std::stoll(part))))
                                          : in.getitem(cur, Value(part));
        if (dot == std::string::npos) return cur;
        start = dot + 1;
    }
}

Value apply_filter(Interp& in, const std::string& name, const Value& v, CallArgs& args) {
    FilterFn f = find_filter(name);
    if (!f) fail(TemplateErrorKind::Type, "no filter named '" + name + "'");
    return f(in, v, args);
}

namespace {

bool soft_safe(const Value& v) { return v.is_safe(); }
Value string_result(Interp& in, std::string s, const Value& like) {
    return make_string(std::move(s), soft_safe(like), in);
}

std::vector<Value> items_of(Interp& in, const Value& v) {
    std::vector<Value> items = iterate(v);
    in.step(items.size() / 16);
    return items;
}

Value generator(std::vector<Value> items, const char* type = "generator") {
    return Value::list(std::move(items), SeqKind::Generator, type);
}

// Sort key used by sort/unique/dictsort/min/max: lower-cased strings unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value(text::lower(v.str()));
    return v;
}

// ---- filters

Value f_abs(Interp&, const Value& v, CallArgs&) {
    if (v.kind() == Kind::Float) return Value(std::fabs(v.as_float()));
    if (v.kind() == Kind::Int || v.kind() == Kind::Bool) {
        if (v.integer() == INT64_MIN) fail(TemplateErrorKind::Limit, "integer overflow");
        return Value(v.integer() < 0 ? -v.integer() : v.integer());
    }
    type_error("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(Interp& in, const Value& v, CallArgs& a) {
    Params p("attr", a, {"name"});
    if (!p[0].is_string()) type_error("attribute name must be a string");
    if (v.kind() == Kind::Object) {  // Python getattr only: dict keys are not attributes
        if (auto m = method_attr(v, p[0].str())) return *m;
        return Value::undefined_attr(v, p[0].str());
    }
    return in.getattr(v, p[0].str());
}

Value f_batch(Interp& in, const Value& v, CallArgs& a) {
    Params p("batch", a, {"linecount", "fill_with"});
    const int64_t n = to_int_arg(p[0], "batch");
    if (n <= 0) fail(TemplateErrorKind::Type, "batch size must be positive");
    std::vector<Value> out, cur;
    for (auto& item : items_of(in, v)) {
        cur.push_back(std::move(item));
        if (int64_t(cur.size()) == n) out.push_back(Value::list(std::exchange(cur, {})));
    }
    if (!cur.empty()) {
        if (p.given(1))
            while (int64_t(cur.size()) < n) cur.push_back(p[1]);
        out.push_back(Value::list(std::move(cur)));
    }
    return generator(std::move(out));
}

Value f_capitalize(Interp& in, const Value& v, CallArgs&) { return string_result(in, text::capitalize(to_str(v)), v); }
Value f_lower(Interp& in, const Value& v, CallArgs&) { return string_result(in, text::lower(to_str(v)), v); }
Value f_upper(Interp& in, const Value& v, CallArgs&) { return string_result(in, text::upper(to_str(v)), v); }
Value f_title(Interp& in, const Value& v, CallArgs&) { return string_result(in, text::title_filter(to_str(v)), v); }

Value f_center(Interp& in, const Value& v, CallArgs& a) {
    Params p("center", a, {"width"});
    const int64_t width = p.given(0) ? to_int_arg(p[0], "center") : 80;
    std::string s = to_str(v);
    const int64_t n = int64_t(text::cp_count(s));
    if (width <= n) return string_result(in, std::move(s), v);
    in.check_size(size_t(width));
    const int64_t pad = width - n;
    const int64_t left = pad / 2 + (pad & width & 1);  // CPython's centering rule
    return string_result(in, std::string(size_t(left), ' ') + s + std::string(size_t(pad - left), ' '), v);
}

Value f_length(Interp&, const Value& v, CallArgs&) { return Value(length(v)); }

Value f_default(Interp&, const Value& v, CallArgs& a) {
    Params p("default", a, {"default_value", "boolean"});
    const Value fallback = p.given(0) ? p[0] : Value("");
    if (v.is_undefined() || (truthy(p[1]) && !truthy(v))) return fallback;
    return v;
}

Value f_dictsort(Interp&, const Value& v, CallArgs& a) {
    Params p("dictsort", a, {"case_sensitive", "by", "reverse"});
    if (v.kind() != Kind::Object) type_error("You can only sort by either mapping");
    const bool cs = truthy(p[0]);
    const std::string by = p.given(1) ? to_str(p[1]) : "key";
    if (by != "key" && by != "value") fail(TemplateErrorKind::Type, "You can only sort by either \"key\" or \"value\"");
    const size_t pos = by == "key" ? 0 : 1;
    std::vector<Value> pairs;
    for (const auto& [k, x] : v.obj().entries()) pairs.push_back(Value::list({Value(k), x}, SeqKind::Tuple));
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
        return compare(sort_key(x.arr().items[pos], cs), sort_key(y.arr().items[pos], cs), "<") < 0;
    });
    if (truthy(p[2])) std::reverse(pairs.begin(), pairs.end());
    return Value::list(std::move(pairs));
}

Value f_escape(Interp& in, const Value& v, CallArgs&) {
    if (v.is_safe()) return v;
    return make_string(text::html_escape(to_str(v)), true, in);
}

Value f_forceescape(Interp& in, const Value& v, CallArgs&) {
    return make_string(text::html_escape(to_str(v)), true, in);
}

Value f_first(Interp&, const Value& v, CallArgs&) {
    if (v.is_array() && v.arr().seq == SeqKind::Generator) {
        ArrayData& g = v.arr();
        if (g.pos < g.items.size()) return g.items[g.pos++];
    } else {
        std::vector<Value> items = iterate(v);
        if (!items.empty()) return items.front();
    }
    return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Interp&, const Value& v, CallArgs&) {
    if (v.is_array() && v.arr().seq == SeqKind::Generator) type_error("'generator' object is not reversible");
    std::vector<Value> items = iterate(v);
    if (!items.empty()) return items.back();
    return Value::undefined("No last item, sequence was empty.");
}

std::optional<double> parse_float(std::string s) {
    s = text::strip(s, std::nullopt, true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return std::nullopt;
    const std::string low = text::lower(s);
    if (low.find("0x") != std::string::npos) return std::nullopt;  // strtod accepts hex, Python does not
    return d;
}

std::optional<int64_t> parse_int(std::string s, int base) {
    s = text::strip(s, std::nullopt, true, true);
    bool neg = false;
    size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if ((base == 16 || base == 0) && s.compare(i, 2, "0x") == 0)
        i += 2, base = 16;
    else if ((base == 8 || base == 0) && s.compare(i, 2, "0o") == 0)
        i += 2, base = 8;
    else if ((base == 2 || base == 0) && s.compare(i, 2, "0b") == 0)
        i += 2, base = 2;
    if (base == 0) base = 10;
    if (i >= s.size()) return std::nullopt;
    int64_t v = 0;
    for (; i < s.size(); ++i) {
        if (s[i] == '_') continue;
        const char c = char(s[i] | 0x20);
        const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
        if (d >= base) return std::nullopt;
        if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) return std::nullopt;
    }
    return neg ? -v : v;
}

Value f_float(Interp&, const Value& v, CallArgs& a) {
    Params p("float", a, {"default"});
    const Value dflt = p.given(0) ? p[0] : Value(0.0);
    if (v.is_undefined()) fail(TemplateErrorKind::Undefined, v.undefined_message());
    if (v.is_number()) return Value(v.number());
    if (v.is_string())
        if (auto d = parse_float(v.str())) return Value(*d);
    return dflt;
}

Value f_int(Interp&, const Value& v, CallArgs& a) {
    Params p("int", a, {"default", "base"});
    const Value dflt = p.given(0) ? p[0] : Value(int64_t(0));
    if (v.is_undefined()) fail(TemplateErrorKind::Undefined, v.undefined_message());
    if (v.kind() == Kind::Int || v.kind() == Kind::Bool) return Value(v.integer());
    if (v.kind() == Kind::Float) {
        if (!std::isfinite(v.as_float()) || std::fabs(v.as_float()) >= 9.2e18) return dflt;
        return Value(int64_t(v.as_float()));
    }
    if (v.is_string()) {
        if (auto i = parse_int(v.str(), p.given(1) ? int(to_int_arg(p[1], "int")) : 10)) return Value(*i);
        if (auto d = parse_float(v.str()))
            if (std::isfinite(*d) && std::fabs(*d) < 9.2e18) return Value(int64_t(*d));
    }
    return dflt;
}

Value f_format(Interp& in, const Value& v, CallArgs& a) {
    if (!a.pos.empty() && !a.kw.empty()) type_error("can't handle positional and keyword arguments at the same time");
    Value args;
    if (!a.kw.empty()) {
        auto obj = std::make_shared<ObjectData>();
        for (auto& [k, x] : a.kw) obj->set(k, x);
        args = Value::object(std::move(obj));
    } else {
        args = Value::list(a.pos, SeqKind::Tuple);
    }
    return string_result(in, percent_format(in, to_str(v), args), v);
}

Value f_indent(Interp& in, const Value& v, CallArgs& a) {
    Params p("indent", a, {"width", "first", "blank"});
    if (v.is_undefined()) fail(TemplateErrorKind::Undefined, v.undefined_message());
    if (!v.is_string()) type_error("unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
    std::string ind;
    if (p[0].is_string())
        ind = p[0].str();
    else
        ind = std::string(size_t(std::clamp<int64_t>(p.given(0) ? to_int_arg(p[0], "indent") : 4, 0, 4096)), ' ');
    const std::string s = to_str(v) + "\n";
    const std::vector<std::string> lines = text::splitlines(s);
    std::string out;
    if (truthy(p[2])) {
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i) out += "\n" + ind;
            out += lines[i];
        }
    } else {
        for (size_t i = 0; i < lines.size(); ++i) {
            if (i) {
                out += '\n';
                if (!lines[i].empty()) out += ind;
            }
            out += lines[i];
            in.check_size(out.size());
        }
    }
    if (truthy(p[1])) out = ind + out;
    return string_result(in, std::move(out), v);
}

Value f_items(Interp&, const Value& v, CallArgs&) {
    if (v.is_undefined()) return generator({});
    if (v.kind() != Kind::Object) type_error("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, x] : v.obj().entries()) out.push_back(Value::list({Value(k), x}, SeqKind::Tuple));
    return generator(std::move(out));
}

Value f_join(Interp& in, const Value& v, CallArgs& a) {
    Params p("join", a, {"d", "attribute"});
    const std::string sep = p.given(0) ? to_str(p[0]) : "";
    std::string out;
    bool first = true;
    for (const auto& item : items_of(in, v)) {
        if (!first) out += sep;
        first = false;
        out += to_str(p.given(1) ? get_path(in, item, to_str(p[1])) : item);
        in.check_size(out.size());
    }
    return make_string(std::move(out), false, in);
}

Value f_list(Interp& in, const Value& v, CallArgs&) { return Value::list(items_of(in, v)); }

Value f_map(Interp& in, const Value& v, CallArgs& a) {
    if (!truthy(v)) return generator({});  // jinja2: `if value:` guards the lazy loop
    std::vector<Value> items = items_of(in, v);
    std::vector<Value> out;
    out.reserve(items.size());
    if (a.pos.empty()) {
        Params p("map", a, {"attribute", "default"});
        if (!p[0].is_string()) type_error("map() needs a filter name or attribute=");
        for (const auto& item : items) {
            Value x = get_path(in, item, p[0].str());
            out.push_back(x.is_undefined() && p.given(1) ? p[1] : x);
        }
        return generator(std::move(out));
    }
    if (!a.pos[0].is_string()) type_error("map() filter name must be a string");
    const std::string name = a.pos[0].str();
    CallArgs rest{std::vector<Value>(a.pos.begin() + 1, a.pos.end()), a.kw};
    for (const auto& item : items) {
        CallArgs copy = rest;
        out.push_back(apply_filter(in, name, item, copy));
    }
    return generator(std::move(out));
}

// select / reject / selectattr / rejectattr
Value select_impl(Interp& in, const Value& v, CallArgs& a, bool with_attr, bool keep) {
    if (!truthy(v)) return generator({});  // jinja2: `if value:` guards the lazy loop
    size_t next = 0;
    std::string attr;
    if (with_attr) {
        if (a.pos.empty() || !a.pos[0].is_string()) type_error("selectattr/rejectattr need an attribute name");
        attr = a.pos[next++].str();
    }
    std::optional<std::string> test;
    if (next < a.pos.size()) {
        if (!a.pos[next].is_string()) type_error("test name must be a string");
        test = a.pos[next++].str();
    }
    CallArgs rest{std::vector<Value>(a.pos.begin() + std::ptrdiff_t(next), a.pos.end()), a.kw};
    std::vector<Value> out;
    for (auto& item : items_of(in, v)) {
        Value probe = with_attr ? get_path(in, item, attr) : item;
        bool ok;
        if (test) {
            CallArgs copy = rest;
            ok = apply_test(in, *test, probe, copy);
        } else {
            ok = truthy(probe);
        }
        if (ok == keep) out.push_back(std::move(item));
    }
    return generator(std::move(out));
}
Value f_select(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interp& in, const Value& v, CallArgs& a) { return select_impl(in, v, a, true, false); }

Value min_max(Interp& in, const Value& v, CallArgs& a, bool want_max) {
    Params p(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
    const bool cs = truthy(p[0]);
    std::optional<Value> best, best_key;
    for (auto& item : items_of(in, v)) {
        Value key = sort_key(p.given(1) ? get_path(in, item, to_str(p[1])) : item, cs);
        if (!best || (want_max ? compare(key, *best_key, ">") > 0 : compare(key, *best_key, "<") < 0)) {
            best = item;
            best_key = key;
        }
    }
    if (!best) return Value::undefined("No aggregated item, sequence was empty.");
    return *best;
}
Value f_max(Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, true); }
Value f_min(Interp& in, const Value& v, CallArgs& a) { return min_max(in, v, a, false); }

Value f_pprint(Interp& in, const Value& v, CallArgs&) {
    std::string out;
    repr(v, out);
    return make_string(std::move(out), false, in);
}

Value f_replace(Interp& in, const Value& v, CallArgs& a) {
    Params p("replace", a, {"old", "new", "count"});
    const int64_t count = p.given(2) && !p[2].is_none() ? to_int_arg(p[2], "replace") : -1;
    const std::string s = to_str(v), from = to_str(p[0]), to = to_str(p[1]);
    if (!to.empty()) {
        const size_t hits = from.empty() ? text::cp_count(s) + 1 : s.size() / from.size() + 1;
        in.check_size(s.size() + std::min<size_t>(hits, count < 0 ? hits : size_t(count)) * to.size());
    }
    return make_string(text::replace(s, from, to, count), false, in);
}

Value f_reverse(Interp& in, const Value& v, CallArgs&) {
    if (v.is_string()) {
        std::vector<size_t> offs = text::cp_offsets(v.str());
        std::string out;
        out.reserve(v.str().size());
        for (size_t i = offs.size() - 1; i > 0; --i) out.append(v.str(), offs[i - 1], offs[i] - offs[i - 1]);
        return string_result(in, std::move(out), v);
    }
    std::vector<Value> items = items_of(in, v);
    std::reverse(items.begin(), items.end());
    if (v.is_array() && v.arr().seq == SeqKind::Generator) return Value::list(std::move(items));
    return generator(std::move(items), v.kind() == Kind::Object ? "dict_reversekeyiterator" : "list_reverseiterator");
}

Value f_round(Interp&, const Value& v, CallArgs& a) {
    Params p("round", a, {"precision", "method"});
    const int64_t prec = p.given(0) ? to_int_arg(p[0], "round") : 0;
    const std::string method = p.given(1) ? to_str(p[1]) : "common";
    if (method != "common" && method != "ceil" && method != "floor")
        fail(TemplateErrorKind::Type, "method must be common, ceil or floor");
    if (!v.is_number()) type_error("type " + type_name(v) + " doesn't define __round__ method");
    if (method == "common") {
        if (v.kind() != Kind::Float) return Value(v.integer());
        if (prec < 0 || prec > 300 || !std::isfinite(v.as_float())) return Value(v.as_float());
        char buf[400];
        std::snprintf(buf, sizeof buf, "%.*f", int(prec), v.as_float());  // correctly rounded, half to even
        return Value(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, double(prec));
    const double x = v.number() * scale;
    return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_safe(Interp& in, const Value& v, CallArgs&) { return make_string(to_str(v), true, in); }

Value f_sort(Interp& in, const Value& v, CallArgs& a) {
    Params p("sort", a, {"reverse", "case_sensitive", "attribute"});
    const bool cs = truthy(p[1]);
    std::vector<Value> items = items_of(in, v);
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& item : items)
        keyed.emplace_back(sort_key(p.given(2) ? get_path(in, item, to_str(p[2])) : item, cs), std::move(item));
    in.step(keyed.size() * 4);
    const bool rev = truthy(p[0]);
    std::stable_sort(keyed.begin(), keyed.end(), [rev](const auto& x, const auto& y) {
        return rev ? compare(y.first, x.first, "<") < 0 : compare(x.first, y.first, "<") < 0;
    });
    std::vector<Value> out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return Value::list(std::move(out));
}

Value f_string(Interp& in, const Value& v, CallArgs&) {
    if (v.is_string()) return v;
    return make_string(to_str(v), false, in);
}

Value f_sum(Interp& in, const Value& v, CallArgs& a) {
    Params p("sum", a, {"attribute", "start"});
    Value total = p.given(1) ? p[1] : Value(int64_t(0));
    for (auto& item : items_of(in, v))
        total = binary_op(in, BinOp::Add, total, p.given(0) ? get_path(in, item, to_str(p[0])) : item);
    return total;
}

Value f_tojson(Interp& in, const Value& v, CallArgs& a) {
    // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    Params p("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonStyle st;
    st.ensure_ascii = truthy(p[0]);
    st.sort_keys = truthy(p[3]);
    if (p.given(1) && !p[1].is_none()) {
        st.has_indent = true;
        if (p[1].is_string())
            st.indent = p[1].str();
        else
            st.indent = std::string(size_t(std::clamp<int64_t>(to_int_arg(p[1], "indent"), 0, 256)), ' ');
        st.item_sep = ",";
    }
    if (p.given(2) && !p[2].is_none()) {
        std::vector<Value> seps = iterate(p[2]);
        if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string())
            type_error("separators must be a pair of strings");
        st.item_sep = seps[0].str();
        st.key_sep = seps[1].str();
    }
    std::string out;
    to_json(v, st, out);
    return make_string(std::move(out), false, in);
}

Value f_trim(Interp& in, const Value& v, CallArgs& a) {
    Params p("trim", a, {"chars"});
    return string_result(in, text::strip(to_str(v), opt_string(p[0], "trim"), true, true), v);
}

Value f_truncate(Interp& in, const Value& v, CallArgs& a) {
    Params p("truncate", a, {"length", "killwords", "end", "leeway"});
    const int64_t len = p.given(0) ? to_int_arg(p[0], "truncate") : 255;
    const std::string end = p.given(2) ? to_str(p[2]) : "...";
    const int64_t leeway = p.given(3) && !p[3].is_none() ? to_int_arg(p[3], "truncate") : 5;
    if (!v.is_string()) {  // jinja2 only measures len() of other values
        if (length(v) <= len + leeway) return v;
        type_error("cannot truncate a " + type_name(v));
    }
    const std::string s = to_str(v);
    std::vector<size_t> offs = text::cp_offsets(s);
    const int64_t n = int64_t(offs.size()) - 1, end_n = int64_t(text::cp_count(end));
    if (len < end_n) fail(TemplateErrorKind::Type, "expected length >= " + std::to_string(end_n));
    if (n <= len + leeway) return string_result(in, s, v);
    std::string cut = s.substr(0, offs[size_t(len - end_n)]);
    if (!truthy(p[1])) {
        const size_t sp = cut.rfind(' ');
        if (sp != std::string::npos) cut.resize(sp);
    }
    return string_result(in, cut + end, v);
}

Value f_unique(Interp& in, const Value& v, CallArgs& a) {
    Params p("unique", a, {"case_sensitive", "attribute"});
    const bool cs = truthy(p[0]);
    std::vector<Value> out, seen;
    for (auto& item : items_of(in, v)) {
        Value key = sort_key(p.given(1) ? get_path(in, item, to_str(p[1])) : item, cs);
        bool dup = false;
        for (const auto& s : seen)
            if (equals(s, key)) {
                dup = true;
                break;
            }
        in.step(seen.size() / 8);
        if (dup) continue;
        seen.push_back(std::move(key));
        out.push_back(std::move(item));
    }
    return generator(std::move(out));
}

Value f_wordcount(Interp&, const Value& v, CallArgs&) {
    const std::string s = to_str(v);
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.size();) {
        const char32_t cp = text::next_cp(s, i);
        const bool w = cp == '_' || (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
                       (cp >= 0x80 && !text::is_space(cp));
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value(n);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
    static const std::unordered_map<std::string_view, FilterFn> table = {
        {"abs", f_abs},
        {"attr", f_attr},
        {"batch", f_batch},
        {"capitalize", f_capitalize},
        {"center", f_center},
        {"count", f_length},
        {"d", f_default},
        {"default", f_default},
        {"dictsort", f_dictsort},
        {"e", f_escape},
        {"escape", f_escape},
        {"first", f_first},
        {"float", f_float},
        {"forceescape", f_forceescape},
        {"format", f_format},
        {"indent", f_indent},
        {"int", f_int},
        {"items", f_items},
        {"join", f_join},
        {"last", f_last},
        {"length", f_length},
        {"list", f_list},
        {"lower", f_lower},
        {"map", f_map},
        {"max", f_max},
        {"min", f_min},
        {"pprint", f_pprint},
        {"reject", f_reject},
        {"rejectattr", f_rejectattr},
        {"replace", f_replace},
        {"reverse", f_reverse},
        {"round", f_round},
        {"safe", f_safe},
        {"select", f_select},
        {"selectattr", f_selectattr},
        {"sort", f_sort},
        {"string", f_string},
        {"sum", f_sum},
        {"title", f_title},
        {"tojson", f_tojson},
        {"trim", f_trim},
        {"truncate", f_truncate},
        {"unique", f_unique},
        {"upper", f_upper},
        {"wordcount", f_wordcount},
    };
    return table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
    const auto& t = filter_table();
    auto it = t.find(name);
    return it == t.end() ? nullptr : it->second;
}

}  // namespace hearth::tmpl
