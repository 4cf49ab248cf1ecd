// Global functions: jinja2's range / namespace / dict / joiner and transformers'
// raise_exception / strftime_now.
#include <ctime>
#include <functional>

#include "template/builtins.h"
#include "template/interp.h"

namespace hearth::tmpl {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

class Builtin : public Callable {
public:
    using Fn = Value (*)(Interp&, CallArgs&);
    Builtin(const char* name, Fn fn) : Callable(name), fn_(fn) {}
    Value call(Interp& in, CallArgs& args) override { return fn_(in, args); }
    std::string repr() const override { return "<built-in function " + name() + ">"; }

private:
    Fn fn_;
};

int64_t range_arg(const Value& v) {
    if (v.kind() == Kind::Int || v.kind() == Kind::Bool) return v.integer();
    type_error("'" + type_name(v) + "' object cannot be interpreted as an integer");
}

Value g_range(Interp& in, CallArgs& a) {
    if (!a.kw.empty()) type_error("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3)
        type_error("range expected at most 3 arguments, got " + std::to_string(a.pos.size()));
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
        stop = range_arg(a.pos[0]);
    } else {
        start = range_arg(a.pos[0]);
        stop = range_arg(a.pos[1]);
        if (a.pos.size() == 3) step = range_arg(a.pos[2]);
    }
    if (step == 0) fail(TemplateErrorKind::Type, "range() arg 3 must not be zero");
    // Length computed in floating point to avoid overflow on extreme arguments.
    const long double span = step > 0 ? (long double)stop - start : (long double)start - stop;
    const long double len = span <= 0 ? 0 : (span + (step > 0 ? step : -step) - 1) / (step > 0 ? step : -step);
    if (len > kMaxRange)
        fail(TemplateErrorKind::Limit, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    std::vector<Value> items;
    items.reserve(size_t(len));
    for (int64_t i = 0, x = start; i < int64_t(len); ++i, x += step) items.emplace_back(x);
    in.step(items.size() / 64);
    return Value::list(std::move(items), SeqKind::List, "range");
}

std::shared_ptr<ObjectData> dict_from(Interp& in, CallArgs& a, const char* fn) {
    auto obj = std::make_shared<ObjectData>();
    if (a.pos.size() > 1)
        type_error(std::string(fn) + " expected at most 1 argument, got " + std::to_string(a.pos.size()));
    if (!a.pos.empty()) {
        const Value& src = a.pos[0];
        if (src.kind() == Kind::Object || src.kind() == Kind::Namespace) {
            for (const auto& [k, v] : src.obj().entries()) obj->set(k, v);
        } else {
            for (const auto& pair : iterate(src)) {
                std::vector<Value> kv = iterate(pair);
                if (kv.size() != 2) type_error("dictionary update sequence element has wrong length");
                if (!kv[0].is_string()) type_error("only string keys are supported");
                obj->set(kv[0].str(), kv[1]);
                in.step();
            }
        }
    }
    for (auto& [k, v] : a.kw) obj->set(k, v);
    return obj;
}

Value g_namespace(Interp& in, CallArgs& a) {
    auto ns = dict_from(in, a, "namespace");
    in.track_namespace(ns);
    return Value::name_space(std::move(ns));
}

Value g_dict(Interp& in, CallArgs& a) { return Value::object(dict_from(in, a, "dict")); }

Value g_raise_exception(Interp&, CallArgs& a) {
    if (a.pos.size() != 1 || !a.kw.empty()) type_error("raise_exception() takes exactly one argument");
    fail(TemplateErrorKind::Raised, to_str(a.pos[0]));
}

Value g_strftime_now(Interp& in, CallArgs& a) {
    Params p("strftime_now", a, {"format"});
    if (!p[0].is_string()) type_error("strftime() argument 1 must be str, not " + type_name(p[0]));
    // Python's datetime.strftime handles %f, %z and %Z itself (a naive datetime: "000000", "", "").
    const std::string& f = p[0].str();
    std::string fmt;
    for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == '%' && i + 1 < f.size()) {
            const char c = f[i + 1];
            if (c == 'f')
                fmt += "000000";
            else if (c != 'z' && c != 'Z')
                fmt += f.substr(i, 2);
            ++i;
            continue;
        }
        fmt += f[i];
    }
    if (fmt.empty()) return Value("");
    const std::tm tm = in.now();
    std::string buf(fmt.size() * 4 + 64, '\0');
    while (true) {
        const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
        if (n > 0) {
            buf.resize(n);
            break;
        }
        if (buf.size() > (1u << 20)) {  // nothing or too long: both give 0
            buf.clear();
            break;
        }
        buf.resize(buf.size() * 4);
    }
    return make_string(std::move(buf), false, in);
}

class Joiner : public Callable {
public:
    explicit Joiner(std::string sep) : Callable("joiner"), sep_(std::move(sep)) {}
    Value call(Interp&, CallArgs&) override {
        if (!used_) {
            used_ = true;
            return Value("");
        }
        return Value(sep_);
    }

private:
    std::string sep_;
    bool used_ = false;
};

Value g_joiner(Interp&, CallArgs& a) {
    Params p("joiner", a, {"sep"});
    return Value::callable(std::make_shared<Joiner>(p.given(0) ? to_str(p[0]) : ", "));
}

}  // namespace

std::optional<Value> global(std::string_view name) {
    static const std::pair<const char*, Builtin::Fn> table[] = {
        {"range", g_range},
        {"namespace", g_namespace},
        {"dict", g_dict},
        {"raise_exception", g_raise_exception},
        {"strftime_now", g_strftime_now},
        {"joiner", g_joiner},
    };
    static const std::vector<Value> values = [] {
        std::vector<Value> v;
        for (const auto& [n, fn] : table) v.push_back(Value::callable(std::make_shared<Builtin>(n, fn)));
        return v;
    }();
    for (size_t i = 0; i < std::size(table); ++i)
        if (name == table[i].first) return values[i];
    return std::nullopt;
}

}  // namespace hearth::tmpl
