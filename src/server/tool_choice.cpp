#include "server/tool_choice.h"

#include "sampling/json_schema.h"

namespace hearth::server {

std::shared_ptr<const Grammar> forced_tool_grammar(ToolCallFormat format, const nlohmann::json& tools,
                                                   const std::string& only) {
    if (format != ToolCallFormat::Hermes && format != ToolCallFormat::Llama3Json) return nullptr;
    const char* args_key = format == ToolCallFormat::Hermes ? "arguments" : "parameters";
    nlohmann::json any = nlohmann::json::array();
    for (const auto& t : tools) {
        const nlohmann::json& fn = t.contains("function") ? t["function"] : t;
        const std::string name = fn.value("name", "");
        if (name.empty() || (!only.empty() && name != only)) continue;
        if (auto p = fn.find("parameters"); p != fn.end())
            if (std::string err = check_parameters_schema(*p, "the parameters of tool \"" + name + "\""); !err.empty())
                throw SchemaError(err);
        nlohmann::json params = fn.contains("parameters") && fn["parameters"].is_object()
                                    ? fn["parameters"]
                                    : nlohmann::json{{"type", "object"}};
        if (!params.contains("type")) params["type"] = "object";
        any.push_back({{"type", "object"},
                       {"properties", {{"name", {{"const", name}}}, {args_key, params}}},
                       {"required", {"name", args_key}}});
    }
    if (any.empty()) return nullptr;
    const nlohmann::json schema = any.size() == 1 ? any[0] : nlohmann::json{{"anyOf", any}};
    std::string gbnf = json_schema_to_gbnf(schema);
    // A call is written compact: no whitespace between JSON tokens (the schema grammar allows
    // spaces, newlines and indentation, which a small model can spend its whole budget on).
    if (size_t at = gbnf.find("\nws ::= "); at != std::string::npos)
        gbnf.replace(at + 1, gbnf.find('\n', at + 1) - at - 1, "ws ::= \"\"");
    if (format == ToolCallFormat::Hermes)
        gbnf += "\nforced-call ::= \"<tool_call>\\n\" root \"\\n</tool_call>\"\n";
    else
        gbnf += "\nforced-call ::= root\n";
    return Grammar::parse(gbnf, "forced-call");
}

std::string check_parameters_schema(const nlohmann::json& schema, const std::string& where) {
    if (schema.is_null()) return "";
    if (!schema.is_object()) return where + " must be a JSON schema object";
    if (auto t = schema.find("type"); t != schema.end() && *t != "object")
        return where + " must be a JSON schema of type \"object\" (a call's arguments are an object), got type " + t->dump();
    return "";
}

}  // namespace hearth::server
