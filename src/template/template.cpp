// Public API of template/: Template::parse / render and the ChatML fallback.
#include "template/template.h"

#include <new>

#include <nlohmann/json.hpp>

#include "template/interp.h"
#include "template/parser.h"

namespace hearth {

TemplateError::TemplateError(TemplateErrorKind kind, const std::string& message, int line, int column)
    : std::runtime_error(message), kind_(kind), line_(line), column_(column) {}

std::function<std::tm()> RenderOptions::fixed_time(int year, int month, int day, int hour, int minute, int second) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const time_t t = timegm(&tm);  // normalises and fills tm_wday / tm_yday
    std::tm out{};
    gmtime_r(&t, &out);
    return [out] { return out; };
}

namespace {

const char* kind_name(TemplateErrorKind k) {
    switch (k) {
        case TemplateErrorKind::Syntax: return "syntax error";
        case TemplateErrorKind::Raised: return "raised";
        case TemplateErrorKind::Type: return "TypeError";
        case TemplateErrorKind::Undefined: return "UndefinedError";
        case TemplateErrorKind::Security: return "SecurityError";
        case TemplateErrorKind::Limit: return "limit exceeded";
    }
    return "error";
}

TemplateError to_error(const tmpl::Failure& f) {
    if (f.kind == TemplateErrorKind::Raised) return TemplateError(f.kind, f.message, f.line, f.column);
    std::string where = f.line ? " at line " + std::to_string(f.line) + ", column " + std::to_string(f.column) : "";
    return TemplateError(f.kind, std::string("template ") + kind_name(f.kind) + where + ": " + f.message, f.line,
                         f.column);
}

template <class Json>
std::string render_impl(const Program& program, const Json& context, const RenderOptions& options) {
    try {
        tmpl::Value ctx = context.is_object() ? tmpl::from_json(context) : tmpl::Value();
        if (!context.is_object() && !context.is_null())
            throw TemplateError(TemplateErrorKind::Type, "template context must be a JSON object");
        tmpl::Interp in(options, std::move(ctx));
        return in.render(program);
    } catch (const tmpl::Failure& f) {
        throw to_error(f);
    } catch (const std::bad_alloc&) {
        throw TemplateError(TemplateErrorKind::Limit, "template rendering ran out of memory");
    }
}

}  // namespace

Template::Template() : program_(std::make_shared<Program>()) {}

Template Template::parse(std::string_view source) {
    try {
        return Template(tmpl::parse_program(source));
    } catch (const tmpl::Failure& f) {
        throw to_error(f);
    }
}

std::string Template::render(const nlohmann::json& context, const RenderOptions& options) const {
    return render_impl(*program_, context, options);
}

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
    return render_impl(*program_, context, options);
}

const char* default_chat_template() {
    return "{%- for message in messages -%}\n"
           "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
           "{{- message['content'] if message['content'] is string else '' -}}\n"
           "{{- '<|im_end|>\\n' -}}\n"
           "{%- endfor -%}\n"
           "{%- if add_generation_prompt -%}\n"
           "{{- '<|im_start|>assistant\\n' -}}\n"
           "{%- endif -%}\n";
}

}  // namespace hearth
