// Template lexer: splits source into text and tag tokens with jinja2's whitespace rules as
// transformers configures them (trim_blocks, lstrip_blocks, `-`/`+` modifiers, one trailing
// newline dropped, newlines normalised to \n).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::tmpl {

enum class Tok : uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
    Tok type;
    std::string text;  // Data text, name, decoded string literal, operator
    int64_t ival = 0;
    double fval = 0;
    uint32_t offset = 0;  // byte offset in the normalised source
};

struct LexResult {
    std::string source;  // normalised source the offsets refer to
    std::vector<Token> tokens;
    std::vector<uint32_t> line_starts;
    void position(uint32_t offset, int& line, int& column) const;
};

// Throws Failure (Syntax) with the position set.
LexResult lex(std::string_view source);

}  // namespace hearth::tmpl
