// Template parser, expressions: jinja2's precedence climbing from conditional expressions down
// to primaries, postfix subscripts/calls, filters and tests.
#include "template/builtins.h"
#include "template/parser_impl.h"

namespace hearth::tmpl {

// ---- expressions

bool Parser::is_tuple_end(std::initializer_list<const char*> extra) const {
    const Token& t = cur();
    if (t.type == Tok::VarEnd || t.type == Tok::BlockEnd || t.type == Tok::Eof) return true;
    if (t.type == Tok::Op && t.text == ")") return true;
    if (t.type == Tok::Name)
        for (const char* e : extra)
            if (t.text == e) return true;
    return false;
}

ExprPtr Parser::parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra, bool explicit_parens) {
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

ExprPtr Parser::parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
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

ExprPtr Parser::binary(EK kind, const Token& at, ExprPtr l, ExprPtr r) {
    auto b = node(kind, at);
    add(*b, std::move(l));
    add(*b, std::move(r));
    return b;
}

ExprPtr Parser::parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
        const Token& at = cur();
        advance();
        left = binary(EK::Or, at, std::move(left), parse_and());
    }
    return left;
}

ExprPtr Parser::parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
        const Token& at = cur();
        advance();
        left = binary(EK::And, at, std::move(left), parse_not());
    }
    return left;
}

ExprPtr Parser::parse_not() {
    if (is_name("not")) {
        DepthGuard guard(*this);
        auto n = node(EK::Not, cur());
        advance();
        add(*n, parse_not());
        return n;
    }
    return parse_compare();
}

ExprPtr Parser::parse_compare() {
    const Token& at = cur();
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
        CmpOp op;
        static const std::pair<const char*, CmpOp> ops[] = {{"==", CmpOp::Eq}, {"!=", CmpOp::Ne}, {"<", CmpOp::Lt},
                                                            {"<=", CmpOp::Le}, {">", CmpOp::Gt},  {">=", CmpOp::Ge}};
        const auto* hit = std::find_if(std::begin(ops), std::end(ops), [&](const auto& o) { return is_op(o.first); });
        if (hit != std::end(ops)) {
            op = hit->second;
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

ExprPtr Parser::arith(const Token& at, BinOp op, ExprPtr l, ExprPtr r) {
    auto b = binary(EK::Binary, at, std::move(l), std::move(r));
    b->op = op;
    return b;
}

ExprPtr Parser::parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
        const Token& at = cur();
        const BinOp op = at.text == "+" ? BinOp::Add : BinOp::Sub;
        advance();
        left = arith(at, op, std::move(left), parse_concat());
    }
    return left;
}

ExprPtr Parser::parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
        const Token& at = cur();
        advance();
        left = arith(at, BinOp::Concat, std::move(left), parse_math2());
    }
    return left;
}

ExprPtr Parser::parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
        const Token& at = cur();
        const BinOp op = at.text == "*"    ? BinOp::Mul
                         : at.text == "/"  ? BinOp::Div
                         : at.text == "//" ? BinOp::FloorDiv
                                           : BinOp::Mod;
        advance();
        left = arith(at, op, std::move(left), parse_pow());
    }
    return left;
}

ExprPtr Parser::parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
        const Token& at = cur();
        advance();
        left = arith(at, BinOp::Pow, std::move(left), parse_unary(true));
    }
    return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
    ExprPtr n;
    if (is_op("-") || is_op("+")) {
        DepthGuard guard(*this);
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

ExprPtr Parser::literal(const Token& at, Value v) {
    auto n = node(EK::Literal, at);
    n->value = std::move(v);
    return n;
}

ExprPtr Parser::parse_primary() {
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

ExprPtr Parser::parse_postfix(ExprPtr n) {
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

ExprPtr Parser::parse_subscript(ExprPtr obj, const Token& at) {
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
void Parser::parse_call_args(Expr& n) {
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

ExprPtr Parser::parse_call(ExprPtr callee) {
    auto c = node(EK::Call, cur());
    add(*c, std::move(callee));
    parse_call_args(*c);
    return c;
}

std::string Parser::dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == Tok::Name) {
        advance();
        name += "." + cur().text;
        advance();
    }
    return name;
}

ExprPtr Parser::parse_filter(ExprPtr operand, const Token& at) {
    const Token& name_tok = cur();
    auto f = node(EK::Filter, at);
    f->name = dotted_name();
    f->filter = find_filter(f->name);
    if (!f->filter) error(name_tok, "no filter named '" + f->name + "'");
    add(*f, std::move(operand));
    if (is_op("(")) parse_call_args(*f);
    return f;
}

ExprPtr Parser::parse_test(ExprPtr operand) {
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

ExprPtr Parser::parse_filter_expr(ExprPtr n) {
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

}  // namespace hearth::tmpl
