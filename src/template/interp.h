// Template interpreter: walks the parsed tree with jinja2's scoping (for bodies and macro
// calls get their own scope, if/else do not), charging every evaluation to a step budget.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "template/ast.h"
#include "template/value.h"

namespace hearth::tmpl {

class Scope {
public:
    explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
    const Value* find(std::string_view name) const {
        for (const Scope* s = this; s; s = s->parent_.get())
            if (const Value* v = s->vars_.find(name)) return v;
        return nullptr;
    }
    void set(const std::string& name, Value v) { vars_.set(name, std::move(v)); }
    void clear() { vars_.clear(); }

private:
    std::shared_ptr<Scope> parent_;
    ObjectData vars_;
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow : uint8_t { Normal, Break, Continue };

class Interp {
public:
    Interp(const RenderOptions& options, Value context);
    ~Interp();  // breaks the reference cycles namespaces and closures can form
    Interp(const Interp&) = delete;
    Interp& operator=(const Interp&) = delete;

    std::string render(const Program& program);  // not reentrant; one render per thread at a time

    Value eval(const Expr& e, const ScopePtr& scope);
    Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
    Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);

    Value getattr(const Value& obj, const std::string& name);
    Value getitem(const Value& obj, const Value& key);
    Value call(const Value& callee, CallArgs& args);

    // Budget and limits.
    void step(uint64_t n = 1) {
        steps_ += n;
        if (steps_ > options_.max_steps) over_budget();
    }
    void charge_bytes(size_t n) { step(n >> 8); }
    void check_size(size_t bytes) const;
    void append(std::string& out, std::string_view s) const;

    struct CallGuard {
        Interp& in;
        explicit CallGuard(Interp& i);
        ~CallGuard() { --in.call_depth_; }
    };

    const RenderOptions& options() const { return options_; }
    std::tm now() const;
    void track_namespace(const std::shared_ptr<ObjectData>& ns) { namespaces_.push_back(ns); }
    void track_closure(const ScopePtr& scope) { closures_.push_back(scope); }

private:
    [[noreturn]] void over_budget() const;
    // The recursive paths (exec -> exec_body -> exec, eval -> eval) keep small frames; the
    // cases with many locals live in separate non-inlined functions.
    Value eval_inner(const Expr& e, const ScopePtr& scope);
    [[gnu::noinline]] Value eval_other(const Expr& e, const ScopePtr& scope);
    [[gnu::noinline]] Value eval_compare(const Expr& e, const ScopePtr& scope);
    [[gnu::noinline]] Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
    [[gnu::noinline]] Flow exec_other(const Stmt& s, const ScopePtr& scope, std::string& out);
    [[gnu::noinline]] Flow exec_block(const Stmt& s, const ScopePtr& scope, std::string& out);
    [[gnu::noinline]] std::shared_ptr<ArrayData> loop_items(const Stmt& s, const ScopePtr& scope);
    [[gnu::noinline]] ScopePtr loop_scope(const Stmt& s, const ScopePtr& scope, const Value& item);
    void eval_args(const Expr& e, size_t first, const ScopePtr& scope, CallArgs& args);
    Value lookup(const std::string& name, const ScopePtr& scope) const;
    Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
    [[gnu::noinline]] Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
    void assign(const Stmt& s, const ScopePtr& scope, Value v);
    Value apply_filters(const std::vector<ExprPtr>& filters, Value v, const ScopePtr& scope);

    RenderOptions options_;
    Value context_;
    uint64_t steps_ = 0;
    int call_depth_ = 0;
    int eval_depth_ = 0;
    std::vector<std::shared_ptr<ObjectData>> namespaces_;
    std::vector<ScopePtr> closures_;
};

// Python operators (operators.cpp).
Value binary_op(Interp& in, BinOp op, const Value& a, const Value& b);
Value unary_minus(const Value& v, bool negate);
// Python's `str % args` formatting (also the |format filter).
std::string percent_format(Interp& in, const std::string& fmt, const Value& args);

// A macro (or a call block's caller) bound to the scope it was defined in.
class MacroCallable : public Callable {
public:
    MacroCallable(std::shared_ptr<MacroDef> def, ScopePtr closure)
        : Callable(def->name), def_(std::move(def)), closure_(std::move(closure)) {}
    Value call(Interp& in, CallArgs& args) override;
    std::string repr() const override { return "<Macro '" + name() + "'>"; }

private:
    [[gnu::noinline]] ScopePtr bind(Interp& in, CallArgs& args) const;
    std::shared_ptr<MacroDef> def_;
    ScopePtr closure_;
};

}  // namespace hearth::tmpl
