// Parsed template: expression and statement trees the interpreter walks.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace hearth::tmpl {

class Interp;
using FilterFn = Value (*)(Interp& in, const Value& operand, CallArgs& args);
using TestFn = bool (*)(Interp& in, const Value& operand, CallArgs& args);

enum class EK : uint8_t {
    Literal,  // value
    Name,     // name
    List,     // items
    Tuple,    // items
    Dict,     // items: key0, value0, key1, value1, ...
    GetAttr,  // items[0].name
    GetItem,  // items[0][items[1]]
    Slice,    // items[0][items[1]:items[2]:items[3]] (null parts allowed)
    Call,     // items[0](items[1..], kwargs)
    Filter,   // items[0]|name(items[1..], kwargs); items[0] null in filter blocks
    Test,     // items[0] is [not] name(items[1..], kwargs)
    Neg,      // -items[0]
    Pos,      // +items[0]
    Not,      // not items[0]
    And,      // items[0] and items[1]
    Or,       // items[0] or items[1]
    Binary,   // items[0] op items[1]
    Compare,  // items[0] cmp[0] items[1] cmp[1] items[2] ...
    Cond,     // items[1] if items[0] else items[2] (else may be null)
};

enum class BinOp : uint8_t { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat };
enum class CmpOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    EK kind;
    int line = 0, col = 0;
    uint32_t height = 1;  // tree height, bounded by the parser
    std::string name;
    Value value;
    std::vector<ExprPtr> items;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<CmpOp> cmps;
    BinOp op = BinOp::Add;
    bool negated = false;
    FilterFn filter = nullptr;
    TestFn test = nullptr;
};

enum class SK : uint8_t {
    Text,         // text
    Output,       // {{ expr }}
    If,           // branches, else_body
    For,          // for targets in expr [if cond]: body else else_body
    Set,          // set targets = expr | set targets[0].attr = expr
    SetBlock,     // set targets[0] [| filters] %}body{% endset
    Macro,        // macro
    CallBlock,    // call [(macro params)] expr %}body{% endcall
    FilterBlock,  // filter filters %}body{% endfilter
    Break,
    Continue,
    With,   // with assigns: body
    Block,  // body rendered in place ({% generation %})
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroDef {
    std::string name;
    std::vector<std::string> params;
    std::vector<ExprPtr> defaults;  // one per param, null when none
    Body body;
    bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
};

struct Stmt {
    SK kind;
    int line = 0, col = 0;
    std::string text;
    ExprPtr expr;
    ExprPtr cond;
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body body, else_body;
    std::vector<std::string> targets;
    bool target_tuple = false;
    std::string ns_attr;           // Set/SetBlock on a namespace attribute
    std::vector<ExprPtr> filters;  // Filter expressions with a null operand
    std::shared_ptr<MacroDef> macro;
    std::vector<std::pair<std::string, ExprPtr>> assigns;
};

}  // namespace hearth::tmpl

namespace hearth {
struct Program {
    tmpl::Body body;
};
}  // namespace hearth
