// Template parser (see parser.h): a recursive-descent copy of jinja2.parser's grammar.
#include "template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "template/builtins.h"
#include "template/lexer.h"

namespace hearth::tmpl {

namespace {

constexpr int kMaxParseDepth = 120;     // recursion of nested constructs while parsing
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
    bool skip_op(const char* op) {
        if (!is_op(op)) return false;
        advance();
        return true;
    }
    bool skip_name(const char* n) {
        if (!is_name(n)) return false;
        advance();
        return true;
    }

    static std::string describe(const Token& t) {
        switch (t.type) {
        case Tok::Data: return "template data";
        case Tok::VarBegin: return "begin of print statement";
        case Tok::VarEnd: return "end of print statement";
        case Tok::BlockBegin: return "begin of statement block";
        case Tok::BlockEnd: return "end of statement block";
        case Tok::Name: return "'" + t.text + "'";
        case Tok::String: return "string";
        case Tok::Int: return "integer";
        case Tok::Float: return "float";
        case Tok::Op: return "'" + t.text + "'";
        case Tok::Eof: return "end of template";
        }
        return "token";
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
    // Appends a child and keeps the tree height bounded (deep trees would overflow the stack).
    void add(Expr& parent, ExprPtr child) {
        if (child) {
            parent.height = std::max(parent.height, child->height + 1);
            if (parent.height > kMaxExprHeight) {
                Failure f{TemplateErrorKind::Syntax, "expression too deeply nested", parent.line, parent.col};
                throw f;
            }
        }
        parent.items.push_back(std::move(child));
    }
    void add_kw(Expr& parent, std::string name, ExprPtr child) {
        parent.height = std::max(parent.height, child->height + 1);
        if (parent.height > kMaxExprHeight)
            throw Failure{TemplateErrorKind::Syntax, "expression too deeply nested", parent.line, parent.col};
        parent.kwargs.emplace_back(std::move(name), std::move(child));
    }
    StmtPtr stmt(SK kind, const Token& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        lx_.position(at.offset, s->line, s->col);
        return s;
    }

    // ---- statements

    // Parses until a block tag whose name is in `ends`; leaves the parser on that name.
    Body subparse(std::initializer_list<const char*> ends, std::string& found) {
        Body body;
        while (true) {
            const Token& t = cur();
            switch (t.type) {
            case Tok::Data: {
                auto s = stmt(SK::Text, t);
                s->text = t.text;
                body.push_back(std::move(s));
                advance();
                break;
            }
            case Tok::VarBegin: {
                auto s = stmt(SK::Output, t);
                advance();
                s->expr = parse_tuple(true, {}, false);
                if (cur().type != Tok::VarEnd) error(cur(), "expected end of print statement, got " + describe(cur()));
                advance();
                body.push_back(std::move(s));
                break;
            }
            case Tok::BlockBegin: {
                const Token& name = peek();
                if (name.type == Tok::Name)
                    for (const char* e : ends)
                        if (name.text == e) {
                            advance();
                            found = name.text;
                            return body;
                        }
                body.push_back(parse_statement());
                break;
            }
            case Tok::Eof:
                if (ends.size()) {
                    std::string msg = "unexpected end of template; looking for the following tags: ";
                    bool first = true;
                    for (const char* e : ends) {
                        msg += (first ? "'" : " or '") + std::string(e) + "'";
                        first = false;
                    }
                    if (!open_blocks_.empty()) msg += ". The innermost block that needs to be closed is '" + open_blocks_.back() + "'";
                    error(t, msg);
                }
                return body;
            default: error(t, "unexpected " + describe(t));
            }
        }
    }

    StmtPtr parse_statement() {
        DepthGuard guard(*this);
        advance();  // BlockBegin
        const Token& t = cur();
        if (t.type != Tok::Name) error(t, "tag name expected");
        const std::string name = t.text;
        open_blocks_.push_back(name);
        StmtPtr s;
        if (name == "if")
            s = parse_if();
        else if (name == "for")
            s = parse_for();
        else if (name == "set")
            s = parse_set();
        else if (name == "macro")
            s = parse_macro();
        else if (name == "call")
            s = parse_call_block();
        else if (name == "filter")
            s = parse_filter_block();
        else if (name == "with")
            s = parse_with();
        else if (name == "generation")
            s = parse_simple_block(SK::Block, "endgeneration");
        else if (name == "break" || name == "continue")
            s = parse_loop_control(name == "break");
        else if (name == "block" || name == "extends" || name == "include" || name == "import" || name == "from" ||
                 name == "autoescape" || name == "do" || name == "print" || name == "trans")
            error(t, "tag '" + name + "' is not supported in chat templates");
        else
            error(t, "encountered unknown tag '" + name + "'");
        open_blocks_.pop_back();
        return s;
    }

    StmtPtr parse_if() {
        auto s = stmt(SK::If, cur());
        advance();
        ExprPtr cond = parse_tuple(false, {}, false);
        while (true) {
            expect_block_end();
            std::string end;
            Body body = subparse({"elif", "else", "endif"}, end);
            s->branches.emplace_back(std::move(cond), std::move(body));
            advance();  // the end tag's name
            if (end == "elif") {
                cond = parse_tuple(false, {}, false);
                continue;
            }
            if (end == "else") {
                expect_block_end();
                s->else_body = subparse({"endif"}, end);
                advance();
            }
            expect_block_end();
            return s;
        }
    }

    // Names for `for`/`set` targets: `a`, `a, b`, `(a, b)`.
    void parse_targets(Stmt& s, const char* end_name) {
        bool paren = skip_op("(");
        while (true) {
            s.targets.push_back(expect_name());
            if (!skip_op(",")) break;
            s.target_tuple = true;
            if ((paren && is_op(")")) || (end_name && is_name(end_name)) || is_op("=")) break;
        }
        if (paren) {
            expect_op(")");
            s.target_tuple = true;
        }
    }

    StmtPtr parse_for() {
        auto s = stmt(SK::For, cur());
        advance();
        parse_targets(*s, "in");
        if (!skip_name("in")) error(cur(), "expected 'in', got " + describe(cur()));
        s->expr = parse_tuple(false, {"recursive"}, false);
        if (skip_name("if")) s->cond = parse_expression(true);
        if (is_name("recursive")) error(cur(), "recursive for loops are not supported");
        expect_block_end();
        std::string end;
        ++loop_depth_;
        s->body = subparse({"endfor", "else"}, end);
        --loop_depth_;
        advance();
        if (end == "else") {
            expect_block_end();
            s->else_body = subparse({"endfor"}, end);
            advance();
        }
        expect_block_end();
        return s;
    }

    StmtPtr parse_set() {
        const Token& at = cur();
        advance();
        auto s = stmt(SK::Set, at);
        if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "." && peek(2).type == Tok::Name) {
            s->targets.push_back(cur().text);
            s->ns_attr = peek(2).text;
            advance();
            advance();
            advance();
        } else {
            parse_targets(*s, nullptr);
        }
        if (skip_op("=")) {
            s->expr = parse_tuple(true, {}, false);
            expect_block_end();
            return s;
        }
        if (s->target_tuple) error(cur(), "expected '=' after a tuple target");
        s->kind = SK::SetBlock;
        while (skip_op("|")) s->filters.push_back(parse_filter(nullptr, at));
        expect_block_end();
        std::string end;
        s->body = subparse({"endset"}, end);
        advance();
        expect_block_end();
        return s;
    }

    void parse_signature(MacroDef& m) {
        expect_op("(");
        while (!is_op(")")) {
            if (!m.params.empty()) expect_op(",");
            if (is_op(")")) break;
            m.params.push_back(expect_name());
            if (skip_op("="))
                m.defaults.push_back(parse_expression(true));
            else
                m.defaults.push_back(nullptr);
        }
        expect_op(")");
    }

    std::shared_ptr<MacroDef> parse_macro_body(std::shared_ptr<MacroDef> m, const char* end_tag) {
        expect_block_end();
        macros_.push_back(m.get());
        const int saved_loops = loop_depth_;
        loop_depth_ = 0;
        std::string end;
        m->body = subparse({end_tag}, end);
        loop_depth_ = saved_loops;
        macros_.pop_back();
        advance();
        expect_block_end();
        return m;
    }

    StmtPtr parse_macro() {
        auto s = stmt(SK::Macro, cur());
        advance();
        auto m = std::make_shared<MacroDef>();
        m->name = expect_name();
        parse_signature(*m);
        s->macro = parse_macro_body(std::move(m), "endmacro");
        return s;
    }

    StmtPtr parse_call_block() {
        auto s = stmt(SK::CallBlock, cur());
        advance();
        auto m = std::make_shared<MacroDef>();
        m->name = "caller";
        if (is_op("(")) parse_signature(*m);
        s->expr = parse_expression(true);
        if (s->expr->kind != EK::Call) error(cur(), "expected a call expression in the call block");
        s->macro = parse_macro_body(std::move(m), "endcall");
        return s;
    }

    StmtPtr parse_filter_block() {
        const Token& at = cur();
        auto s = stmt(SK::FilterBlock, at);
        advance();
        do {
            s->filters.push_back(parse_filter(nullptr, at));
        } while (skip_op("|"));
        expect_block_end();
        std::string end;
        s->body = subparse({"endfilter"}, end);
        advance();
        expect_block_end();
        return s;
    }

    StmtPtr parse_with() {
        auto s = stmt(SK::With, cur());
        advance();
        while (cur().type != Tok::BlockEnd) {
            if (!s->assigns.empty()) expect_op(",");
            std::string target = expect_name();
            expect_op("=");
            s->assigns.emplace_back(std::move(target), parse_expression(true));
        }
        expect_block_end();
        std::string end;
        s->body = subparse({"endwith"}, end);
        advance();
        expect_block_end();
        return s;
    }

    StmtPtr parse_simple_block(SK kind, const char* end_tag) {
        auto s = stmt(kind, cur());
        advance();
        expect_block_end();
        std::string end;
        s->body = subparse({end_tag}, end);
        advance();
        expect_block_end();
        return s;
    }

    StmtPtr parse_loop_control(bool is_break) {
        const Token& at = cur();
        if (loop_depth_ == 0) error(at, std::string("'") + at.text + "' outside of a loop");
        auto s = stmt(is_break ? SK::Break : SK::Continue, at);
        advance();
        expect_block_end();
        return s;
    }

    // ---- expressions

    bool is_tuple_end(std::initializer_list<const char*> extra) const {
        const Token& t = cur();
        if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || t.type == Tok::Eof) return true;
        if (t.type == Tok::Op && t.text == ")") return true;
        if (t.type == Tok::Name)
            for (const char* e : extra)
                if (t.text == e) return true;
        return false;
    }

    ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra, bool explicit_parens) {
        const Token& at = cur();
        std::vector<ExprPtr> args;
        bool is_tuple = false;
        while (true) {
            if (!args.empty()) expect_op(",");
            if (is_tuple_end(extra)) break;
            args.push_back(parse_expression(with_condexpr));
            if (is_op(","))
                is_tuple = true;
            else
                break;
        }
        if (!is_tuple) {
            if (!args.empty()) return std::move(args[0]);
            if (!explicit_parens) error(cur(), "expected an expression, got " + describe(cur()));
        }
        auto t = node(EK::Tuple, at);
        for (auto& a : args) add(*t, std::move(a));
        return t;
    }

    ExprPtr parse_expression(bool with_condexpr) {
        DepthGuard guard(*this);
        return with_condexpr ? parse_condexpr() : parse_or();
    }

    ExprPtr parse_condexpr() {
        ExprPtr expr1 = parse_or();
        while (is_name("if")) {
            const Token& at = cur();
            advance();
            ExprPtr cond = parse_or();
            ExprPtr other;
            if (skip_name("else")) other = parse_condexpr();
            auto c = node(EK::Cond, at);
            add(*c, std::move(cond));
            add(*c, std::move(expr1));
            add(*c, std::move(other));
            expr1 = std::move(c);
        }
        return expr1;
    }

    ExprPtr binary(EK kind, const Token& at, ExprPtr l, ExprPtr r) {
        auto b = node(kind, at);
        add(*b, std::move(l));
        add(*b, std::move(r));
        return b;
    }

    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (is_name("or")) {
            const Token& at = cur();
            advance();
            left = binary(EK::Or, at, std::move(left), parse_and());
        }
        return left;
    }

    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (is_name("and")) {
            const Token& at = cur();
            advance();
            left = binary(EK::And, at, std::move(left), parse_not());
        }
        return left;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            auto n = node(EK::Not, cur());
            advance();
            add(*n, parse_not());
            return n;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        const Token& at = cur();
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        while (true) {
            CmpOp op;
            const Token& t = cur();
            if (t.type == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" ||
                                      t.text == ">" || t.text == ">=")) {
                op = t.text == "==" ? CmpOp::Eq
                     : t.text == "!=" ? CmpOp::Ne
                     : t.text == "<"  ? CmpOp::Lt
                     : t.text == "<=" ? CmpOp::Le
                     : t.text == ">"  ? CmpOp::Gt
                                      : CmpOp::Ge;
                advance();
            } else if (is_name("in")) {
                op = CmpOp::In;
                advance();
            } else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") {
                op = CmpOp::NotIn;
                advance();
                advance();
            } else {
                break;
            }
            if (!cmp) {
                cmp = node(EK::Compare, at);
                add(*cmp, std::move(first));
            }
            cmp->cmps.push_back(op);
            add(*cmp, parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }

    ExprPtr arith(const Token& at, BinOp op, ExprPtr l, ExprPtr r) {
        auto b = binary(EK::Binary, at, std::move(l), std::move(r));
        b->op = op;
        return b;
    }

    ExprPtr parse_math1() {
        ExprPtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& at = cur();
            const BinOp op = at.text == "+" ? BinOp::Add : BinOp::Sub;
            advance();
            left = arith(at, op, std::move(left), parse_concat());
        }
        return left;
    }

    ExprPtr parse_concat() {
        ExprPtr left = parse_math2();
        while (is_op("~")) {
            const Token& at = cur();
            advance();
            left = arith(at, BinOp::Concat, std::move(left), parse_math2());
        }
        return left;
    }

    ExprPtr parse_math2() {
        ExprPtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& at = cur();
            const BinOp op = at.text == "*"  ? BinOp::Mul
                             : at.text == "/" ? BinOp::Div
                             : at.text == "//" ? BinOp::FloorDiv
                                              : BinOp::Mod;
            advance();
            left = arith(at, op, std::move(left), parse_pow());
        }
        return left;
    }

    ExprPtr parse_pow() {
        ExprPtr left = parse_unary(true);
        while (is_op("**")) {
            const Token& at = cur();
            advance();
            left = arith(at, BinOp::Pow, std::move(left), parse_unary(true));
        }
        return left;
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr n;
        if (is_op("-") || is_op("+")) {
            n = node(is_op("-") ? EK::Neg : EK::Pos, cur());
            advance();
            add(*n, parse_unary(false));
        } else {
            n = parse_primary();
        }
        n = parse_postfix(std::move(n));
        if (with_filter) n = parse_filter_expr(std::move(n));
        return n;
    }

    ExprPtr literal(const Token& at, Value v) {
        auto n = node(EK::Literal, at);
        n->value = std::move(v);
        return n;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        switch (t.type) {
        case Tok::Name: {
            advance();
            if (t.text == "true" || t.text == "True") return literal(t, Value(true));
            if (t.text == "false" || t.text == "False") return literal(t, Value(false));
            if (t.text == "none" || t.text == "None") return literal(t, Value::none());
            if (!macros_.empty()) {
                if (t.text == "varargs") macros_.back()->uses_varargs = true;
                if (t.text == "kwargs") macros_.back()->uses_kwargs = true;
                if (t.text == "caller") macros_.back()->uses_caller = true;
            }
            auto n = node(EK::Name, t);
            n->name = t.text;
            return n;
        }
        case Tok::String: {
            std::string s = t.text;
            advance();
            while (cur().type == Tok::String) {
                s += cur().text;
                advance();
            }
            return literal(t, Value(std::move(s)));
        }
        case Tok::Int: advance(); return literal(t, Value(t.ival));
        case Tok::Float: advance(); return literal(t, Value(t.fval));
        case Tok::Op:
            if (t.text == "(") {
                advance();
                ExprPtr e = parse_tuple(true, {}, true);
                expect_op(")");
                return e;
            }
            if (t.text == "[") {
                advance();
                auto n = node(EK::List, t);
                while (!is_op("]")) {
                    if (!n->items.empty()) expect_op(",");
                    if (is_op("]")) break;
                    add(*n, parse_expression(true));
                }
                expect_op("]");
                return n;
            }
            if (t.text == "{") {
                advance();
                auto n = node(EK::Dict, t);
                while (!is_op("}")) {
                    if (!n->items.empty()) expect_op(",");
                    if (is_op("}")) break;
                    add(*n, parse_expression(true));
                    expect_op(":");
                    add(*n, parse_expression(true));
                }
                expect_op("}");
                return n;
            }
            break;
        default: break;
        }
        error(t, "unexpected " + describe(t));
    }

    ExprPtr parse_postfix(ExprPtr n) {
        while (true) {
            const Token& t = cur();
            if (is_op(".")) {
                advance();
                const Token& a = cur();
                if (a.type == Tok::Name) {
                    auto g = node(EK::GetAttr, t);
                    g->name = a.text;
                    add(*g, std::move(n));
                    n = std::move(g);
                } else if (a.type == Tok::Int) {
                    auto g = node(EK::GetItem, t);
                    add(*g, std::move(n));
                    add(*g, literal(a, Value(a.ival)));
                    n = std::move(g);
                } else {
                    error(a, "expected a name or number after '.'");
                }
                advance();
            } else if (is_op("[")) {
                advance();
                n = parse_subscript(std::move(n), t);
            } else if (is_op("(")) {
                n = parse_call(std::move(n));
            } else {
                return n;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj, const Token& at) {
        ExprPtr parts[3];
        int colons = 0;
        if (!is_op(":")) parts[0] = parse_expression(true);
        while (colons < 2 && skip_op(":")) {
            ++colons;
            if (!is_op(":") && !is_op("]")) parts[colons] = parse_expression(true);
        }
        if (is_op(",")) error(cur(), "tuple subscripts are not supported");
        expect_op("]");
        if (colons == 0) {
            auto g = node(EK::GetItem, at);
            add(*g, std::move(obj));
            add(*g, std::move(parts[0]));
            return g;
        }
        auto s = node(EK::Slice, at);
        add(*s, std::move(obj));
        for (auto& p : parts) add(*s, std::move(p));
        return s;
    }

    // Parses `( args )` into n's items (after any already there) and kwargs.
    void parse_call_args(Expr& n) {
        expect_op("(");
        bool first = true;
        while (!is_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (is_op(")")) break;
            if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
            if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
                std::string key = cur().text;
                advance();
                advance();
                add_kw(n, std::move(key), parse_expression(true));
            } else {
                if (!n.kwargs.empty()) error(cur(), "positional argument follows keyword argument");
                add(n, parse_expression(true));
            }
        }
        expect_op(")");
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto c = node(EK::Call, cur());
        add(*c, std::move(callee));
        parse_call_args(*c);
        return c;
    }

    std::string dotted_name() {
        std::string name = expect_name();
        while (is_op(".") && peek().type == Tok::Name) {
            advance();
            name += "." + cur().text;
            advance();
        }
        return name;
    }

    ExprPtr parse_filter(ExprPtr operand, const Token& at) {
        const Token& name_tok = cur();
        auto f = node(EK::Filter, at);
        f->name = dotted_name();
        f->filter = find_filter(f->name);
        if (!f->filter) error(name_tok, "no filter named '" + f->name + "'");
        add(*f, std::move(operand));
        if (is_op("(")) parse_call_args(*f);
        return f;
    }

    ExprPtr parse_test(ExprPtr operand) {
        const Token& at = cur();
        advance();  // 'is'
        auto t = node(EK::Test, at);
        t->negated = skip_name("not");
        const Token& name_tok = cur();
        t->name = dotted_name();
        t->test = find_test(t->name);
        if (!t->test) error(name_tok, "no test named '" + t->name + "'");
        add(*t, std::move(operand));
        const Token& c = cur();
        if (is_op("(")) {
            parse_call_args(*t);
        } else if ((c.type == Tok::Name || c.type == Tok::String || c.type == Tok::Int || c.type == Tok::Float ||
                    (c.type == Tok::Op && (c.text == "[" || c.text == "{"))) &&
                   !(c.type == Tok::Name && (c.text == "else" || c.text == "or" || c.text == "and"))) {
            if (c.type == Tok::Name && c.text == "is") error(c, "you cannot chain multiple tests with is");
            DepthGuard guard(*this);
            add(*t, parse_postfix(parse_primary()));
        }
        return t;
    }

    ExprPtr parse_filter_expr(ExprPtr n) {
        while (true) {
            if (is_op("|")) {
                const Token& at = cur();
                advance();
                n = parse_filter(std::move(n), at);
            } else if (is_name("is")) {
                n = parse_test(std::move(n));
            } else if (is_op("(")) {
                n = parse_call(std::move(n));
            } else {
                return n;
            }
        }
    }
};

}  // namespace

std::shared_ptr<Program> parse_program(std::string_view source) {
    LexResult lx = lex(source);
    auto prog = std::make_shared<Program>();
    prog->body = Parser(lx).parse_template();
    return prog;
}

}  // namespace hearth::tmpl
