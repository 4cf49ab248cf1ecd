// Internal: the recursive-descent parser shared by parser.cpp (statements) and
// parse_expr.cpp (expressions). It follows jinja2.parser's grammar and precedence.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "template/ast.h"
#include "template/lexer.h"

namespace hearth::tmpl {

constexpr int kMaxParseDepth = 100;       // recursion of nested constructs while parsing
constexpr uint32_t kMaxExprHeight = 400;  // height of one expression tree

class Parser {
public:
    explicit Parser(LexResult& lx) : lx_(lx) {}

    Body parse_template() {
        std::string end;
        Body body = subparse({}, end);
        return body;
    }

private:
    LexResult& lx_;
    size_t i_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;
    std::vector<MacroDef*> macros_;
    std::vector<std::string> open_blocks_;

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxParseDepth) p.error(p.cur(), "template nested too deeply");
        }
        ~DepthGuard() { --p.depth_; }
    };

    // ---- token helpers
    const Token& cur() const { return lx_.tokens[i_]; }
    const Token& peek(size_t k = 1) const { return lx_.tokens[std::min(i_ + k, lx_.tokens.size() - 1)]; }
    void advance() {
        if (cur().type != Tok::Eof) ++i_;
    }
    bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
    bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
    bool skip_op(const char* op) { return is_op(op) ? (advance(), true) : false; }
    bool skip_name(const char* n) { return is_name(n) ? (advance(), true) : false; }

    static std::string describe(const Token& t) {
        static const char* const names[] = {"template data",
                                            "begin of print statement",
                                            "end of print statement",
                                            "begin of statement block",
                                            "end of statement block",
                                            nullptr,
                                            "string",
                                            "integer",
                                            "float",
                                            nullptr,
                                            "end of template"};
        const char* n = names[size_t(t.type)];
        return n ? n : "'" + t.text + "'";
    }

    [[noreturn]] void error(const Token& at, const std::string& msg) {
        Failure f{TemplateErrorKind::Syntax, msg};
        lx_.position(at.offset, f.line, f.column);
        throw f;
    }

    void expect_op(const char* op) {
        if (!skip_op(op)) error(cur(), std::string("expected '") + op + "', got " + describe(cur()));
    }
    void expect_block_end() {
        if (cur().type != Tok::BlockEnd) error(cur(), "expected end of statement block, got " + describe(cur()));
        advance();
    }
    std::string expect_name() {
        if (cur().type != Tok::Name) error(cur(), "expected a name, got " + describe(cur()));
        std::string n = cur().text;
        advance();
        return n;
    }

    ExprPtr node(EK kind, const Token& at) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        lx_.position(at.offset, e->line, e->col);
        return e;
    }
    // Children are added through these, which keep the tree height bounded (deep trees would
    // overflow the stack when evaluated or destroyed).
    void grow(Expr& parent, const ExprPtr& child) {
        if (!child) return;
        parent.height = std::max(parent.height, child->height + 1);
        if (parent.height > kMaxExprHeight)
            throw Failure{TemplateErrorKind::Syntax, "expression too deeply nested", parent.line, parent.col};
    }
    void add(Expr& parent, ExprPtr child) {
        grow(parent, child);
        parent.items.push_back(std::move(child));
    }
    void add_kw(Expr& parent, std::string name, ExprPtr child) {
        grow(parent, child);
        parent.kwargs.emplace_back(std::move(name), std::move(child));
    }
    StmtPtr stmt(SK kind, const Token& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        lx_.position(at.offset, s->line, s->col);
        return s;
    }

    // ---- statements (parser.cpp)
    Body subparse(std::initializer_list<const char*> ends, std::string& found);
    StmtPtr parse_statement();
    StmtPtr parse_if();
    void parse_targets(Stmt& s, const char* end_name);
    StmtPtr parse_for();
    StmtPtr parse_set();
    void parse_signature(MacroDef& m);
    std::shared_ptr<MacroDef> parse_macro_body(std::shared_ptr<MacroDef> m, const char* end_tag);
    StmtPtr parse_macro();
    StmtPtr parse_call_block();
    StmtPtr parse_filter_block();
    StmtPtr parse_with();
    StmtPtr parse_simple_block(SK kind, const char* end_tag);
    StmtPtr parse_loop_control(bool is_break);

    // ---- expressions (parse_expr.cpp)
    bool is_tuple_end(std::initializer_list<const char*> extra) const;
    ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra, bool explicit_parens);
    ExprPtr parse_expression(bool with_condexpr);
    ExprPtr parse_condexpr();
    ExprPtr binary(EK kind, const Token& at, ExprPtr l, ExprPtr r);
    ExprPtr parse_or();
    ExprPtr parse_and();
    ExprPtr parse_not();
    ExprPtr parse_compare();
    ExprPtr arith(const Token& at, BinOp op, ExprPtr l, ExprPtr r);
    ExprPtr parse_math1();
    ExprPtr parse_concat();
    ExprPtr parse_math2();
    ExprPtr parse_pow();
    ExprPtr parse_unary(bool with_filter);
    ExprPtr literal(const Token& at, Value v);
    ExprPtr parse_primary();
    ExprPtr parse_postfix(ExprPtr n);
    ExprPtr parse_subscript(ExprPtr obj, const Token& at);
    void parse_call_args(Expr& n);
    ExprPtr parse_call(ExprPtr callee);
    std::string dotted_name();
    ExprPtr parse_filter(ExprPtr operand, const Token& at);
    ExprPtr parse_test(ExprPtr operand);
    ExprPtr parse_filter_expr(ExprPtr n);
};

}  // namespace hearth::tmpl
