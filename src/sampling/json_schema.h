// Structured output: JSON schema -> GBNF grammar (for GrammarConstraint), the generic
// JSON grammar for format "json", and a validator to check outputs against a schema.
//
// What the grammar guarantees: every sentence parses as JSON and validates against the
// schema under the semantics below (validate_json implements the same semantics). Where a
// keyword can't be expressed exactly the grammar generates a valid subset, and keywords it
// can't honour at all are refused with SchemaError naming them (a 400 for the daemon).
//
// Supported: type (one or an array of them), properties + required, additionalProperties
// (true, false or a schema), items, prefixItems, minItems/maxItems, enum, const, anyOf,
// oneOf, allOf with one subschema, $ref to local JSON pointers (#/$defs/X, #/definitions/X,
// #, recursion allowed), minLength/maxLength, pattern (ECMAScript subset: literals, escapes,
// classes, ., groups, alternation, quantifiers; ^ and $ at the ends only), format (date,
// time, date-time, uuid, email; other formats are annotations), minimum/maximum/
// exclusiveMinimum/exclusiveMaximum. Annotations (title, description, default, examples,
// $comment, ...) and unknown keywords are ignored, as JSON Schema says.
//
// Semantics and limits:
//  - Objects that list properties allow only those unless additionalProperties says
//    otherwise (OpenAI strict semantics); without properties any keys are allowed.
//    Required properties come first, in the order of "required"; then the optional ones,
//    each of which may be left out, in the schema object's key order (alphabetical, as
//    nlohmann::json keeps keys sorted); then additional ones.
//  - Integer bounds are enforced exactly. Number bounds are enforced on integral bounds;
//    a fractional bound is rounded inward (minimum 0.5 generates values >= 1), and bounded
//    numbers are written without an exponent.
//  - oneOf is generated like anyOf: exclusivity is not enforced (keep branches disjoint).
//  - Whitespace between tokens is limited to nothing, one space, or a newline plus at most
//    20 spaces/tabs, so a model cannot loop on whitespace; integers have at most 16 digits
//    (bounded ones up to 17), fractions 16 digits, exponents 2 digits. Strings may not use
//    \u escapes for surrogates (a model writes astral characters as UTF-8).
//  - Patterns are generated as JSON string contents: characters that JSON must escape are
//    written escaped; control characters other than \b \f \n \r \t are left out.
//  - Unsupported (SchemaError): not, if/then/else, patternProperties, propertyNames,
//    min/maxProperties, dependentRequired/Schemas, dependencies, unevaluated*, contains,
//    uniqueItems: true, multipleOf, additionalItems, allOf with several subschemas,
//    $ref next to other constraints, non-local $ref, pattern together with
//    minLength/maxLength or format.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sampling/grammar.h"

namespace hearth {

class SchemaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// GBNF text (root rule "root") for JSON texts that validate against `schema`.
// Throws SchemaError.
std::string json_schema_to_gbnf(const nlohmann::json& schema);

// GBNF for any JSON object (Ollama's format "json") or, with object_only false, any value.
std::string json_gbnf(bool object_only = true);

std::shared_ptr<const Grammar> grammar_from_json_schema(const nlohmann::json& schema);

// Ollama's request `format`: "json" -> a JSON object; an object -> that schema; null or ""
// -> nullptr (unconstrained). Anything else throws SchemaError.
std::shared_ptr<const Grammar> grammar_for_format(const nlohmann::json& format);

// OpenAI's `response_format`: {"type":"text"} -> nullptr; {"type":"json_object"} -> any
// JSON object; {"type":"json_schema","json_schema":{"schema":{...}}} -> that schema.
std::shared_ptr<const Grammar> grammar_for_response_format(const nlohmann::json& response_format);

// "" when `value` validates against `schema`, else the first violation, as
// "at /json/pointer: message". Supports what the converter supports plus allOf, not,
// multipleOf, uniqueItems, min/maxProperties; unknown formats are not checked. Objects
// with properties and no additionalProperties allow only the listed keys (as above).
// A schema the validator can't use (bad $ref, bad pattern) also yields a message.
std::string validate_json(const nlohmann::json& schema, const nlohmann::json& value);

namespace json_schema_detail {
// A GBNF literal ("...", escaped) for UTF-8 text.
std::string gbnf_literal(std::string_view utf8);
// A GBNF character class ("[...]" or "[^...]") for code point ranges (no surrogates).
std::string gbnf_class(const std::vector<std::pair<uint32_t, uint32_t>>& ranges, bool negate = false);
// A GBNF expression for the contents (between the quotes) of JSON strings whose decoded
// value matches the ECMAScript `pattern` with JSON Schema's unanchored semantics.
// `any_char` names a rule for one JSON string character (raw or escaped). Throws
// SchemaError("unsupported pattern ...").
std::string pattern_to_gbnf(std::string_view pattern, const std::string& any_char);
// Validation against `schema` where $refs resolve in `root`.
std::string validate_at(const nlohmann::json& root, const nlohmann::json& schema, const nlohmann::json& value);
}  // namespace json_schema_detail

}  // namespace hearth
