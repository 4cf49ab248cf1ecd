// Template parser: tokens -> statement/expression trees, following jinja2.parser's grammar
// and operator precedence. Unknown filters and tests are rejected here, as jinja2 does.
#pragma once

#include <memory>
#include <string_view>

#include "template/ast.h"

namespace hearth::tmpl {

// Throws Failure (Syntax) with line and column set.
std::shared_ptr<Program> parse_program(std::string_view source);

}  // namespace hearth::tmpl
