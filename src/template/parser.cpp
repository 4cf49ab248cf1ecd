// Template parser (see parser.h): statements and the token stream plumbing; expressions are
// in parse_expr.cpp.
#include "template/parser.h"

#include "template/parser_impl.h"

namespace hearth::tmpl {

// ---- statements

// Parses until a block tag whose name is in `ends`; leaves the parser on that name.
Body Parser::subparse(std::initializer_list<const char*> ends, std::string& found) {
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
                    if (!open_blocks_.empty())
                        msg += ". The innermost block that needs to be closed is '" + open_blocks_.back() + "'";
                    error(t, msg);
                }
                return body;
            default: error(t, "unexpected " + describe(t));
        }
    }
}

StmtPtr Parser::parse_statement() {
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

StmtPtr Parser::parse_if() {
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
void Parser::parse_targets(Stmt& s, const char* end_name) {
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

StmtPtr Parser::parse_for() {
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

StmtPtr Parser::parse_set() {
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

void Parser::parse_signature(MacroDef& m) {
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

std::shared_ptr<MacroDef> Parser::parse_macro_body(std::shared_ptr<MacroDef> m, const char* end_tag) {
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

StmtPtr Parser::parse_macro() {
    auto s = stmt(SK::Macro, cur());
    advance();
    auto m = std::make_shared<MacroDef>();
    m->name = expect_name();
    parse_signature(*m);
    s->macro = parse_macro_body(std::move(m), "endmacro");
    return s;
}

StmtPtr Parser::parse_call_block() {
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

StmtPtr Parser::parse_filter_block() {
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

StmtPtr Parser::parse_with() {
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

StmtPtr Parser::parse_simple_block(SK kind, const char* end_tag) {
    auto s = stmt(kind, cur());
    advance();
    expect_block_end();
    std::string end;
    s->body = subparse({end_tag}, end);
    advance();
    expect_block_end();
    return s;
}

StmtPtr Parser::parse_loop_control(bool is_break) {
    const Token& at = cur();
    if (loop_depth_ == 0) error(at, std::string("'") + at.text + "' outside of a loop");
    auto s = stmt(is_break ? SK::Break : SK::Continue, at);
    advance();
    expect_block_end();
    return s;
}

std::shared_ptr<Program> parse_program(std::string_view source) {
    LexResult lx = lex(source);
    auto prog = std::make_shared<Program>();
    prog->body = Parser(lx).parse_template();
    return prog;
}

}  // namespace hearth::tmpl
