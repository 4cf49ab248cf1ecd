// Forcing a tool call (OpenAI tool_choice "required" or a named function, Anthropic "any" or
// "tool"): a grammar that only lets the model write one call, in the syntax its chat template
// teaches, to one of the offered tools with arguments that validate against its schema.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sampling/grammar.h"
#include "template/tool_calls.h"

namespace hearth::server {

// A grammar for exactly one call to `only` (or, when empty, to any tool of `tools`, given in
// OpenAI's chat shape [{"type":"function","function":{"name","parameters"}}]). Null when
// the syntax cannot be forced (a template without tool support, or a family not handled
// here: Hermes and Llama 3 JSON are). Throws SchemaError for a schema it cannot compile.
std::shared_ptr<const Grammar> forced_tool_grammar(ToolCallFormat format, const nlohmann::json& tools,
                                                   const std::string& only);

// "" when a tool's parameter schema is acceptable: absent, or an object whose "type" (if
// any) is "object" — a call's arguments are always a JSON object (OpenAI and Anthropic refuse
// other schemas). Else the message, naming `where` ("tools[0].function.parameters").
std::string check_parameters_schema(const nlohmann::json& schema, const std::string& where);

}  // namespace hearth::server
