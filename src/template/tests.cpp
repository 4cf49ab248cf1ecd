// jinja2's built-in tests (`x is defined`, `x is string`, `x is equalto y`, ...).
#include <cmath>
#include <unordered_map>

#include "template/builtins.h"
#include "template/interp.h"
#include "template/text.h"

namespace hearth::tmpl {

namespace {

const Value& arg0(CallArgs& a, const char* test) {
    if (!a.pos.empty()) return a.pos[0];
    if (!a.kw.empty()) return a.kw[0].second;
    type_error(std::string("test '") + test + "' needs an argument");
}

bool t_defined(Interp&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Interp&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(Interp&, const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Bool; }
bool t_true(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Bool && v.as_bool(); }
bool t_false(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Bool && !v.as_bool(); }
bool t_integer(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Int; }
bool t_float(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Float; }
bool t_number(Interp&, const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(Interp&, const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Object; }
// Python's callable(): jinja2's Undefined defines __call__ (calling it raises).
bool t_callable(Interp&, const Value& v, CallArgs&) { return v.kind() == Kind::Callable || v.is_undefined(); }
bool t_escaped(Interp&, const Value& v, CallArgs&) { return v.is_safe(); }

bool t_iterable(Interp&, const Value& v, CallArgs&) {
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::String:
        case Kind::Array:
        case Kind::Object: return true;
        default: return false;
    }
}

bool t_sequence(Interp&, const Value& v, CallArgs&) {
    if (v.is_array()) return v.arr().seq == SeqKind::List || v.arr().seq == SeqKind::Tuple;
    return v.is_string() || v.kind() == Kind::Object || v.is_undefined();
}

bool t_lower(Interp&, const Value& v, CallArgs&) {
    const std::string s = to_str(v);
    return text::lower(s) == s && text::upper(s) != s;
}

bool t_upper(Interp&, const Value& v, CallArgs&) {
    const std::string s = to_str(v);
    return text::upper(s) == s && text::lower(s) != s;
}

int64_t int_operand(const Value& v, const char* what) {
    if (v.kind() == Kind::Int || v.kind() == Kind::Bool) return v.integer();
    if (v.is_undefined()) fail(TemplateErrorKind::Undefined, v.undefined_message());
    type_error(std::string("test '") + what + "' needs an integer, got " + type_name(v));
}

// Python's `value % 2` for odd/even (floats allowed: 3.0 is odd, 1.5 neither).
double mod2(const Value& v, const char* what) {
    if (v.kind() == Kind::Float) {
        const double m = std::fmod(v.as_float(), 2.0);
        return m < 0 ? m + 2.0 : m;
    }
    const int64_t i = int_operand(v, what) % 2;
    return double(i < 0 ? i + 2 : i);
}

bool t_odd(Interp&, const Value& v, CallArgs&) { return mod2(v, "odd") == 1.0; }
bool t_even(Interp&, const Value& v, CallArgs&) { return mod2(v, "even") == 0.0; }

bool t_divisibleby(Interp&, const Value& v, CallArgs& a) {
    const Value& d = arg0(a, "divisibleby");
    if (v.kind() == Kind::Float || d.kind() == Kind::Float) {
        if (d.number() == 0.0) fail(TemplateErrorKind::Type, "float modulo");
        return std::fmod(v.number(), d.number()) == 0.0;
    }
    const int64_t n = int_operand(d, "divisibleby");
    if (n == 0) fail(TemplateErrorKind::Type, "integer division or modulo by zero");
    if (n == -1) return true;
    return int_operand(v, "divisibleby") % n == 0;
}

bool t_eq(Interp&, const Value& v, CallArgs& a) { return equals(v, arg0(a, "eq")); }
bool t_ne(Interp&, const Value& v, CallArgs& a) { return !equals(v, arg0(a, "ne")); }
bool t_lt(Interp&, const Value& v, CallArgs& a) { return compare(v, arg0(a, "lt"), "<") < 0; }
bool t_le(Interp&, const Value& v, CallArgs& a) { return compare(v, arg0(a, "le"), "<=") <= 0; }
bool t_gt(Interp&, const Value& v, CallArgs& a) { return compare(v, arg0(a, "gt"), ">") > 0; }
bool t_ge(Interp&, const Value& v, CallArgs& a) { return compare(v, arg0(a, "ge"), ">=") >= 0; }
bool t_in(Interp&, const Value& v, CallArgs& a) { return contains(arg0(a, "in"), v); }

bool t_sameas(Interp&, const Value& v, CallArgs& a) {
    const Value& o = arg0(a, "sameas");
    if (v.kind() != o.kind()) return false;
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::Bool: return v.as_bool() == o.as_bool();
        case Kind::Int: return v.as_int() == o.as_int();  // CPython caches small ints; close enough
        case Kind::Float: return false;
        default: return v.identity() == o.identity();
    }
}

bool t_filter(Interp&, const Value& v, CallArgs&) { return v.is_string() && find_filter(v.str()) != nullptr; }
bool t_test(Interp&, const Value& v, CallArgs&) { return v.is_string() && find_test(v.str()) != nullptr; }

const std::unordered_map<std::string_view, TestFn>& test_table() {
    static const std::unordered_map<std::string_view, TestFn> table = {
        {"defined", t_defined},
        {"undefined", t_undefined},
        {"none", t_none},
        {"boolean", t_boolean},
        {"true", t_true},
        {"false", t_false},
        {"integer", t_integer},
        {"float", t_float},
        {"number", t_number},
        {"string", t_string},
        {"mapping", t_mapping},
        {"iterable", t_iterable},
        {"sequence", t_sequence},
        {"callable", t_callable},
        {"escaped", t_escaped},
        {"lower", t_lower},
        {"upper", t_upper},
        {"odd", t_odd},
        {"even", t_even},
        {"divisibleby", t_divisibleby},
        {"eq", t_eq},
        {"equalto", t_eq},
        {"==", t_eq},
        {"ne", t_ne},
        {"!=", t_ne},
        {"lt", t_lt},
        {"lessthan", t_lt},
        {"<", t_lt},
        {"le", t_le},
        {"<=", t_le},
        {"gt", t_gt},
        {"greaterthan", t_gt},
        {">", t_gt},
        {"ge", t_ge},
        {">=", t_ge},
        {"in", t_in},
        {"sameas", t_sameas},
        {"filter", t_filter},
        {"test", t_test},
    };
    return table;
}

}  // namespace

TestFn find_test(std::string_view name) {
    const auto& t = test_table();
    auto it = t.find(name);
    return it == t.end() ? nullptr : it->second;
}

bool apply_test(Interp& in, const std::string& name, const Value& v, CallArgs& args) {
    TestFn t = find_test(name);
    if (!t) fail(TemplateErrorKind::Type, "no test named '" + name + "'");
    return t(in, v, args);
}

}  // namespace hearth::tmpl
