// Template interpreter (see interp.h).
#include "template/interp.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "template/builtins.h"
#include "template/text.h"

namespace hearth::tmpl {

namespace {
constexpr int kMaxEvalDepth = 1000;  // nested eval/exec frames (macro recursion included)

struct DepthCounter {
    int& d;
    explicit DepthCounter(int& depth) : d(depth) {
        if (++d > kMaxEvalDepth) fail(TemplateErrorKind::Limit, "template recursion too deep");
    }
    ~DepthCounter() { --d; }
};

bool is_nan(const Value& v) { return v.kind() == Kind::Float && std::isnan(v.as_float()); }

template <class Pred>
bool ordered(const Value& a, const Value& b, const char* op, Pred pred) {
    const int c = compare(a, b, op);
    if (is_nan(a) || is_nan(b)) return false;
    return pred(c);
}
}  // namespace

namespace {
thread_local Interp* t_current = nullptr;  // the render running on this thread

struct CurrentRender {
    Interp* saved;
    explicit CurrentRender(Interp* in) : saved(t_current) { t_current = in; }
    ~CurrentRender() { t_current = saved; }
};
}  // namespace

void charge_work(uint64_t steps) {
    if (t_current) t_current->step(steps);
}

void check_output_size(size_t bytes) {
    if (t_current) t_current->check_size(bytes);
}

Interp::Interp(const RenderOptions& options, Value context) : options_(options), context_(std::move(context)) {}

Interp::~Interp() {
    for (auto& ns : namespaces_) ns->clear();
    for (auto& s : closures_) s->clear();
}

Interp::CallGuard::CallGuard(Interp& i) : in(i) {
    if (++in.call_depth_ > in.options_.max_call_depth) {
        --in.call_depth_;
        fail(TemplateErrorKind::Limit,
             "maximum call depth exceeded (" + std::to_string(in.options_.max_call_depth) + " nested calls)");
    }
}

void Interp::over_budget() const {
    fail(TemplateErrorKind::Limit, "render step budget exceeded (" + std::to_string(options_.max_steps) + " steps)");
}

void Interp::check_size(size_t bytes) const {
    if (bytes > options_.max_output_bytes)
        fail(TemplateErrorKind::Limit,
             "rendered text exceeds the output limit (" + std::to_string(options_.max_output_bytes) + " bytes)");
}

void Interp::append(std::string& out, std::string_view s) const {
    check_size(out.size() + s.size());
    out.append(s);
}

std::tm Interp::now() const {
    if (options_.now) return options_.now();
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&t, &tm);
    return tm;
}

std::string Interp::render(const Program& program) {
    CurrentRender current(this);
    auto root = std::make_shared<Scope>(nullptr);
    track_closure(root);
    std::string out;
    exec_body(program.body, root, out);
    return out;
}

// ---- statements

Flow Interp::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& s : body) {
        Flow f = exec(*s, scope, out);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

void Interp::assign(const Stmt& s, const ScopePtr& scope, Value v) {
    if (!s.ns_attr.empty()) {
        Value target = lookup(s.targets[0], scope);
        if (target.kind() != Kind::Namespace)
            fail(TemplateErrorKind::Type, "cannot assign attribute on non-namespace object");
        target.obj().set(s.ns_attr, std::move(v));
        return;
    }
    if (!s.target_tuple) {
        scope->set(s.targets[0], std::move(v));
        return;
    }
    std::vector<Value> parts = iterate(v);
    if (parts.size() < s.targets.size())
        type_error("not enough values to unpack (expected " + std::to_string(s.targets.size()) + ", got " +
                   std::to_string(parts.size()) + ")");
    if (parts.size() > s.targets.size())
        type_error("too many values to unpack (expected " + std::to_string(s.targets.size()) + ")");
    for (size_t i = 0; i < parts.size(); ++i) scope->set(s.targets[i], std::move(parts[i]));
}

Value Interp::apply_filters(const std::vector<ExprPtr>& filters, Value v, const ScopePtr& scope) {
    for (const auto& f : filters) {
        CallArgs args;
        eval_args(*f, 1, scope, args);
        v = f->filter(*this, v, args);
    }
    return v;
}

Flow Interp::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    step();
    DepthCounter depth(eval_depth_);
    try {
        switch (s.kind) {
            case SK::Text: append(out, s.text); return Flow::Normal;
            case SK::If:
                for (const auto& [cond, body] : s.branches)
                    if (truthy(eval(*cond, scope))) return exec_body(body, scope, out);
                return exec_body(s.else_body, scope, out);
            case SK::For: return exec_for(s, scope, out);
            case SK::Block: return exec_body(s.body, scope, out);
            case SK::Break: return Flow::Break;
            case SK::Continue: return Flow::Continue;
            default: return exec_other(s, scope, out);
        }
    } catch (Failure& f) {
        if (f.line == 0) {
            f.line = s.line;
            f.column = s.col;
        }
        throw;
    }
}

Flow Interp::exec_other(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
        case SK::Output: {
            Value v = eval(*s.expr, scope);
            if (v.is_string())
                append(out, v.str());
            else
                append(out, to_str(v));
            return Flow::Normal;
        }
        case SK::Set: assign(s, scope, eval(*s.expr, scope)); return Flow::Normal;
        default: return exec_block(s, scope, out);
    }
}

Flow Interp::exec_block(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
        case SK::SetBlock: {
            auto inner = std::make_shared<Scope>(scope);
            std::string buf;
            exec_body(s.body, inner, buf);
            assign(s, scope, apply_filters(s.filters, Value(std::move(buf)), scope));
            return Flow::Normal;
        }
        case SK::FilterBlock: {
            auto inner = std::make_shared<Scope>(scope);
            std::string buf;
            exec_body(s.body, inner, buf);
            append(out, to_str(apply_filters(s.filters, Value(std::move(buf)), scope)));
            return Flow::Normal;
        }
        case SK::Macro:
            track_closure(scope);
            scope->set(s.macro->name, Value::callable(std::make_shared<MacroCallable>(s.macro, scope)));
            return Flow::Normal;
        case SK::CallBlock: {
            track_closure(scope);
            Value caller = Value::callable(std::make_shared<MacroCallable>(s.macro, scope));
            append(out, to_str(eval_call(*s.expr, scope, &caller)));
            return Flow::Normal;
        }
        case SK::With: {
            auto inner = std::make_shared<Scope>(scope);
            for (const auto& [name, expr] : s.assigns) inner->set(name, eval(*expr, scope));
            return exec_body(s.body, inner, out);
        }
        default: return Flow::Normal;
    }
}

std::shared_ptr<ArrayData> Interp::loop_items(const Stmt& s, const ScopePtr& scope) {
    Value seq = eval(*s.expr, scope);
    if (seq.is_none() || seq.kind() == Kind::Int || seq.kind() == Kind::Float || seq.kind() == Kind::Bool ||
        seq.kind() == Kind::Namespace || seq.kind() == Kind::Callable || seq.kind() == Kind::Loop)
        type_error("'" + type_name(seq) + "' object is not iterable");
    auto items = std::make_shared<ArrayData>();
    items->items = iterate(seq);
    if (!s.cond) return items;
    std::vector<Value> kept;
    for (auto& item : items->items) {
        step();
        if (truthy(eval(*s.cond, loop_scope(s, scope, item)))) kept.push_back(std::move(item));
    }
    items->items = std::move(kept);
    return items;
}

// A fresh scope with the loop targets bound to `item`.
ScopePtr Interp::loop_scope(const Stmt& s, const ScopePtr& scope, const Value& item) {
    auto inner = std::make_shared<Scope>(scope);
    if (!s.target_tuple) {
        inner->set(s.targets[0], item);
        return inner;
    }
    std::vector<Value> parts = iterate(item);
    if (parts.size() < s.targets.size())
        type_error("not enough values to unpack (expected " + std::to_string(s.targets.size()) + ", got " +
                   std::to_string(parts.size()) + ")");
    if (parts.size() > s.targets.size())
        type_error("too many values to unpack (expected " + std::to_string(s.targets.size()) + ")");
    for (size_t k = 0; k < parts.size(); ++k) inner->set(s.targets[k], std::move(parts[k]));
    return inner;
}

Flow Interp::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    std::shared_ptr<ArrayData> items = loop_items(s, scope);
    if (items->items.empty()) return exec_body(s.else_body, scope, out);
    auto loop = std::make_shared<LoopData>();
    loop->items = items;
    const Value loop_value = Value::loop(loop);
    for (size_t i = 0; i < items->items.size(); ++i) {
        step();
        loop->index0 = i;
        ScopePtr inner = loop_scope(s, scope, items->items[i]);
        inner->set("loop", loop_value);
        if (exec_body(s.body, inner, out) == Flow::Break) break;
    }
    return Flow::Normal;
}

// ---- expressions

Value Interp::lookup(const std::string& name, const ScopePtr& scope) const {
    if (const Value* v = scope->find(name)) return *v;
    if (context_.kind() == Kind::Object)
        if (const Value* v = context_.obj().find(name)) return *v;
    if (auto g = global(name)) return *g;
    return Value::undefined_name(name);
}

void Interp::eval_args(const Expr& e, size_t first, const ScopePtr& scope, CallArgs& args) {
    for (size_t i = first; i < e.items.size(); ++i) args.pos.push_back(eval(*e.items[i], scope));
    for (const auto& [k, v] : e.kwargs) args.kw.emplace_back(k, eval(*v, scope));
}

Value Interp::call(const Value& callee, CallArgs& args) {
    if (callee.kind() == Kind::Callable) return callee.fn().call(*this, args);
    if (callee.is_undefined()) {
        const std::string msg = callee.undefined_message();
        fail(msg.find("is unsafe") != std::string::npos ? TemplateErrorKind::Security : TemplateErrorKind::Undefined,
             msg);
    }
    type_error("'" + type_name(callee) + "' object is not callable");
}

Value Interp::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
    Value callee = eval(*e.items[0], scope);
    CallArgs args;
    eval_args(e, 1, scope, args);
    if (caller) args.kw.emplace_back("caller", *caller);
    return call(callee, args);
}

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
    step();
    DepthCounter depth(eval_depth_);
    try {
        return eval_inner(e, scope);
    } catch (Failure& f) {
        if (f.line == 0) {
            f.line = e.line;
            f.column = e.col;
        }
        throw;
    }
}

Value Interp::eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case EK::Literal: return e.value;
        case EK::Name: return lookup(e.name, scope);
        case EK::GetAttr: return getattr(eval(*e.items[0], scope), e.name);
        case EK::Call: return eval_call(e, scope, nullptr);
        case EK::Not: return Value(!truthy(eval(*e.items[0], scope)));
        case EK::And: {
            Value l = eval(*e.items[0], scope);
            return truthy(l) ? eval(*e.items[1], scope) : l;
        }
        case EK::Or: {
            Value l = eval(*e.items[0], scope);
            return truthy(l) ? l : eval(*e.items[1], scope);
        }
        case EK::Cond:
            if (truthy(eval(*e.items[0], scope))) return eval(*e.items[1], scope);
            if (e.items[2]) return eval(*e.items[2], scope);
            return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
        case EK::Compare: return eval_compare(e, scope);
        default: return eval_other(e, scope);
    }
}

Value Interp::eval_compare(const Expr& e, const ScopePtr& scope) {
    Value left = eval(*e.items[0], scope);
    for (size_t i = 0; i < e.cmps.size(); ++i) {
        Value right = eval(*e.items[i + 1], scope);
        bool ok = false;
        switch (e.cmps[i]) {
            case CmpOp::Eq: ok = equals(left, right); break;
            case CmpOp::Ne: ok = !equals(left, right); break;
            case CmpOp::Lt: ok = ordered(left, right, "<", [](int c) { return c < 0; }); break;
            case CmpOp::Le: ok = ordered(left, right, "<=", [](int c) { return c <= 0; }); break;
            case CmpOp::Gt: ok = ordered(left, right, ">", [](int c) { return c > 0; }); break;
            case CmpOp::Ge: ok = ordered(left, right, ">=", [](int c) { return c >= 0; }); break;
            case CmpOp::In: ok = contains(right, left); break;
            case CmpOp::NotIn: ok = !contains(right, left); break;
        }
        if (!ok) return Value(false);
        left = std::move(right);
    }
    return Value(true);
}

Value Interp::eval_other(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case EK::List:
        case EK::Tuple: {
            std::vector<Value> items;
            items.reserve(e.items.size());
            for (const auto& x : e.items) items.push_back(eval(*x, scope));
            return Value::list(std::move(items), e.kind == EK::Tuple ? SeqKind::Tuple : SeqKind::List);
        }
        case EK::Dict: {
            auto obj = std::make_shared<ObjectData>();
            for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
                Value k = eval(*e.items[i], scope);
                if (!k.is_string()) type_error("only string keys are supported in dict literals, got " + type_name(k));
                obj->set(k.str(), eval(*e.items[i + 1], scope));
            }
            return Value::object(std::move(obj));
        }
        case EK::GetItem: return getitem(eval(*e.items[0], scope), eval(*e.items[1], scope));
        case EK::Slice: {
            Value obj = eval(*e.items[0], scope);
            Value parts[3];
            for (int i = 0; i < 3; ++i)
                parts[i] = e.items[size_t(i) + 1] ? eval(*e.items[size_t(i) + 1], scope) : Value::none();
            return slice(obj, parts[0], parts[1], parts[2]);
        }
        case EK::Filter: {
            Value operand = e.items[0] ? eval(*e.items[0], scope) : Value();
            CallArgs args;
            eval_args(e, 1, scope, args);
            return e.filter(*this, operand, args);
        }
        case EK::Test: {
            Value operand = eval(*e.items[0], scope);
            CallArgs args;
            eval_args(e, 1, scope, args);
            return Value(e.test(*this, operand, args) != e.negated);
        }
        case EK::Neg:
        case EK::Pos: return unary_minus(eval(*e.items[0], scope), e.kind == EK::Neg);
        case EK::Binary: {
            Value l = eval(*e.items[0], scope);
            Value r = eval(*e.items[1], scope);
            return binary_op(*this, e.op, l, r);
        }
        default: return Value();
    }
}

// ---- attribute and item access (jinja2's sandboxed getattr / getitem)

Value Interp::getattr(const Value& obj, const std::string& name) {
    switch (obj.kind()) {
        case Kind::Undefined:
            if (options_.lenient_undefined) return obj;
            fail(TemplateErrorKind::Undefined, obj.undefined_message());
        case Kind::Namespace:
            if (const Value* v = obj.obj().find(name)) return *v;
            break;
        case Kind::Object:
            if (auto m = method_attr(obj, name)) return *m;
            if (const Value* v = obj.obj().find(name)) return *v;
            break;
        default:
            if (auto m = method_attr(obj, name)) return *m;
            break;
    }
    return Value::undefined_attr(obj, name);
}

Value Interp::getitem(const Value& obj, const Value& key) {
    switch (obj.kind()) {
        case Kind::Undefined:
            if (options_.lenient_undefined) return obj;
            fail(TemplateErrorKind::Undefined, obj.undefined_message());
        case Kind::Object:
            if (key.is_string()) {
                if (const Value* v = obj.obj().find(key.str())) return *v;
            }
            break;
        case Kind::Array: {
            const ArrayData& a = obj.arr();
            if ((a.seq == SeqKind::List || a.seq == SeqKind::Tuple) &&
                (key.kind() == Kind::Int || key.kind() == Kind::Bool)) {
                int64_t i = key.integer();
                const int64_t n = int64_t(a.items.size());
                if (i < 0) i += n;
                if (i >= 0 && i < n) return a.items[size_t(i)];
                return Value::undefined("'" + type_name(obj) + " object' has no element " +
                                        std::to_string(key.integer()));
            }
            break;
        }
        case Kind::String:
            if (key.kind() == Kind::Int || key.kind() == Kind::Bool) {
                const std::string& s = obj.str();
                int64_t i = key.integer();
                if (i < 0) i += int64_t(text::cp_count(s));
                for (size_t at = 0, k = 0; i >= 0 && at < s.size(); ++k) {
                    const size_t start = at;
                    text::next_cp(s, at);
                    if (int64_t(k) == i) return Value(s.substr(start, at - start), obj.is_safe());
                }
                return Value::undefined("'str object' has no element " + std::to_string(key.integer()));
            }
            break;
        default: break;
    }
    if (key.is_string()) return getattr(obj, key.str());
    std::string k;
    repr(key, k);
    return Value::undefined(object_type_repr(obj) + " has no element " + k);
}

Value Interp::slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
    if (obj.is_undefined()) {
        if (options_.lenient_undefined) return obj;
        fail(TemplateErrorKind::Undefined, obj.undefined_message());
    }
    auto index = [](const Value& v) -> std::optional<int64_t> {
        if (v.is_none()) return std::nullopt;
        if (v.kind() != Kind::Int && v.kind() != Kind::Bool)
            type_error("slice indices must be integers or None or have an __index__ method");
        return v.integer();
    };
    const std::optional<int64_t> start_o = index(start_v), stop_o = index(stop_v), step_o = index(step_v);
    const int64_t st = step_o.value_or(1);
    if (st == 0) fail(TemplateErrorKind::Type, "slice step cannot be zero");
    const bool is_str = obj.is_string();
    const bool is_seq = obj.is_array() && (obj.arr().seq == SeqKind::List || obj.arr().seq == SeqKind::Tuple);
    // jinja2 compiles slices to a plain Python subscript: no undefined fallback.
    if (!is_str && !is_seq) {
        if (obj.kind() == Kind::Object) type_error("unhashable type: 'slice'");
        type_error("'" + type_name(obj) + "' object is not subscriptable");
    }
    std::vector<size_t> offs;
    int64_t n;
    if (is_str) {
        charge_bytes(obj.str().size());
        offs = text::cp_offsets(obj.str());
        n = int64_t(offs.size()) - 1;
    } else {
        n = int64_t(obj.arr().items.size());
    }
    auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) {
            x += n;
            if (x < 0) x = st < 0 ? -1 : 0;
        } else if (x >= n) {
            x = st < 0 ? n - 1 : n;
        }
        return x;
    };
    const int64_t start = adjust(start_o, st > 0 ? 0 : n - 1);
    const int64_t stop = adjust(stop_o, st > 0 ? n : -1);
    if (is_str) {
        const std::string& s = obj.str();
        std::string out;
        for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st)
            out.append(s, offs[size_t(i)], offs[size_t(i) + 1] - offs[size_t(i)]);
        charge_bytes(out.size());
        return Value(std::move(out), obj.is_safe());
    }
    std::vector<Value> out;
    const auto& items = obj.arr().items;
    for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st) out.push_back(items[size_t(i)]);
    charge_bytes(out.size() * 16);
    return Value::list(std::move(out), obj.arr().seq);
}

// ---- macros

Value MacroCallable::call(Interp& in, CallArgs& args) {
    Interp::CallGuard guard(in);
    ScopePtr scope = bind(in, args);
    std::string out;
    in.exec_body(def_->body, scope, out);
    return Value(std::move(out));
}

ScopePtr MacroCallable::bind(Interp& in, CallArgs& args) const {
    const MacroDef& d = *def_;
    auto scope = std::make_shared<Scope>(closure_);
    const size_t np = d.params.size();
    std::vector<bool> bound(np, false);
    std::vector<Value> extra;
    for (size_t i = 0; i < args.pos.size(); ++i) {
        if (i < np) {
            scope->set(d.params[i], args.pos[i]);
            bound[i] = true;
        } else if (d.uses_varargs) {
            extra.push_back(args.pos[i]);
        } else {
            type_error("macro '" + d.name + "' takes not more than " + std::to_string(np) + " argument(s)");
        }
    }
    auto kwargs = std::make_shared<ObjectData>();
    for (auto& [k, v] : args.kw) {
        auto it = std::find(d.params.begin(), d.params.end(), k);
        if (it != d.params.end()) {
            const size_t idx = size_t(it - d.params.begin());
            if (bound[idx]) type_error("macro '" + d.name + "' got multiple values for argument '" + k + "'");
            scope->set(k, v);
            bound[idx] = true;
        } else if (k == "caller") {
            scope->set("caller", v);
        } else if (d.uses_kwargs) {
            kwargs->set(k, v);
        } else {
            type_error("macro '" + d.name + "' takes no keyword argument '" + k + "'");
        }
    }
    for (size_t i = 0; i < np; ++i) {
        if (bound[i]) continue;
        if (d.defaults[i])
            scope->set(d.params[i], in.eval(*d.defaults[i], scope));
        else
            scope->set(d.params[i], Value::undefined("parameter '" + d.params[i] + "' was not provided"));
    }
    if (d.uses_varargs) scope->set("varargs", Value::list(std::move(extra), SeqKind::Tuple));
    if (d.uses_kwargs) scope->set("kwargs", Value::object(std::move(kwargs)));
    return scope;
}

}  // namespace hearth::tmpl
