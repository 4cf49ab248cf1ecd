// The template library: filters, tests, methods of str/dict/list values and the globals
// (range, namespace, dict, raise_exception, strftime_now, ...).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "template/ast.h"
#include "template/value.h"

namespace hearth::tmpl {

FilterFn find_filter(std::string_view name);  // null when unknown
TestFn find_test(std::string_view name);      // null when unknown

// `obj.name` where obj is a str/dict/list/loop: the bound method, or nullopt when the type has
// no such attribute. Unsafe (mutating) methods come back as an undefined that raises
// SecurityError when called.
std::optional<Value> method_attr(const Value& obj, const std::string& name);

// jinja2 globals; nullopt when `name` is not one.
std::optional<Value> global(std::string_view name);

// Binds call arguments to named parameters Python-style (positional then keyword).
// Throws TypeError for unknown keywords or too many positionals.
struct Params {
    Params(const char* fn, CallArgs& args, std::initializer_list<const char*> names);
    const Value& operator[](size_t i) const { return values[i]; }
    bool given(size_t i) const { return passed[i]; }
    std::vector<Value> values;  // undefined where not passed
    std::vector<bool> passed;
};

// Helpers shared by the library files.
int64_t to_int_arg(const Value& v, const char* what);
Value make_string(std::string s, bool safe, Interp& in);  // charges the budget, checks the size cap
std::optional<std::string> opt_string(const Value& v, const char* what);
// jinja2 environment.getitem with a dotted attribute path ("a.b.0").
Value get_path(Interp& in, const Value& v, const std::string& path);
// Call a named filter/test from select/map style filters.
Value apply_filter(Interp& in, const std::string& name, const Value& v, CallArgs& args);
bool apply_test(Interp& in, const std::string& name, const Value& v, CallArgs& args);

}  // namespace hearth::tmpl
