// Chat-template engine: every shared template x case renders byte for byte (or raises where
// jinja2 raised), plus unit tests of the Jinja language, the sandbox and the limits.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/paths.h"
#include "template/template.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

RenderOptions fixed_options() {
    RenderOptions o;
    o.now = RenderOptions::fixed_time(2026, 1, 15);
    return o;
}

std::string render(const std::string& src, const ojson& ctx = ojson::object(), RenderOptions opts = fixed_options()) {
    return Template::parse(src).render(ctx, opts);
}

// Renders and returns the error (fails the test when nothing is thrown).
TemplateError render_error(const std::string& src, const ojson& ctx = ojson::object(),
                           RenderOptions opts = fixed_options()) {
    try {
        render(src, ctx, opts);
    } catch (const TemplateError& e) {
        return e;
    }
    ADD_FAILURE() << "no error from: " << src;
    return TemplateError(TemplateErrorKind::Type, "none");
}

// ---- the shared templates

struct SharedCase {
    std::string name, case_name;
    bool expect_error = false;
    std::string error_kind, error_message;
};

std::vector<SharedCase> shared_cases() {
    std::vector<SharedCase> out;
    const fs::path root = test::shared_path("templates");
    const fs::path index = root / "index.json";
    if (fs::exists(index)) {
        const ojson idx = ojson::parse(slurp(index));
        for (const auto& [name, cases] : idx.at("templates").items())
            for (const auto& [case_name, info] : cases.items()) {
                SharedCase c{name, case_name, false, "", ""};
                c.expect_error = info.at("outcome") == "error";
                if (c.expect_error) {
                    c.error_kind = info.value("error_kind", "");
                    c.error_message = info.value("message", "");
                }
                out.push_back(c);
            }
        return out;
    }
    if (!fs::exists(root)) return out;
    for (const auto& dir : fs::directory_iterator(root)) {
        if (!fs::exists(dir.path() / "template.jinja")) continue;
        for (const auto& c : fs::directory_iterator(dir.path() / "cases")) {
            SharedCase sc{dir.path().filename().string(), c.path().stem().string(), false, "", ""};
            const fs::path err = dir.path() / "expected" / (sc.case_name + ".error.txt");
            sc.expect_error = fs::exists(err);
            out.push_back(sc);
        }
    }
    return out;
}

class SharedTemplates : public ::testing::TestWithParam<SharedCase> {};

TEST_P(SharedTemplates, RendersAsJinja2) {
    const SharedCase& c = GetParam();
    const fs::path dir = fs::path(test::shared_path("templates")) / c.name;
    const Template t = Template::parse(slurp(dir / "template.jinja"));
    const ojson ctx = ojson::parse(slurp(dir / "cases" / (c.case_name + ".json")));
    if (c.expect_error) {
        try {
            const std::string text = t.render(ctx, fixed_options());
            FAIL() << "expected an error, rendered " << text.size() << " bytes";
        } catch (const TemplateError& e) {
            if (c.error_kind == "raise_exception") {
                EXPECT_EQ(e.kind(), TemplateErrorKind::Raised);
                EXPECT_EQ(std::string(e.what()), c.error_message);
                EXPECT_EQ(std::string(e.what()), slurp(dir / "expected" / (c.case_name + ".error.txt")));
            } else {
                EXPECT_NE(e.kind(), TemplateErrorKind::Raised) << e.what();
            }
        }
        return;
    }
    EXPECT_EQ(t.render(ctx, fixed_options()), slurp(dir / "expected" / (c.case_name + ".txt")));
}

std::string case_test_name(const ::testing::TestParamInfo<SharedCase>& info) {
    std::string n = info.param.name + "__" + info.param.case_name;
    for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return n;
}

INSTANTIATE_TEST_SUITE_P(Template, SharedTemplates, ::testing::ValuesIn(shared_cases()), case_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SharedTemplates);

TEST(TemplateShared, AllThirteenTemplatesPresent) {
    if (!fs::exists(test::shared_path("templates/index.json"))) GTEST_SKIP() << "no shared templates";
    EXPECT_EQ(shared_cases().size(), 143u);
}

// ---- whitespace

TEST(TemplateWhitespace, TrimBlocksRemovesOneNewlineAfterBlockTags) {
    EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny"), "x\ny");
    EXPECT_EQ(render("{# c #}\nx"), "x");
    EXPECT_EQ(render("{{ 'a' }}\nb"), "a\nb");  // never after {{ }}
    EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(TemplateWhitespace, LstripBlocksStripsIndentBeforeBlockTags) {
    EXPECT_EQ(render("a\n    {% if true %}\n    x\n    {% endif %}\nb"), "a\n    x\nb");
    EXPECT_EQ(render("  {# c #}  z"), "  z");
    EXPECT_EQ(render("a  {% if true %}x{% endif %}"), "a  x");  // not at line start
    EXPECT_EQ(render("a\n  {{ 1 }}"), "a\n  1");                // not for {{ }}
    EXPECT_EQ(render("a\n  {%+ if true %}x{% endif %}"), "a\n  x");
}

TEST(TemplateWhitespace, DashModifiersStripAllWhitespace) {
    EXPECT_EQ(render("a  \n {%- if true -%} \n x \n {%- endif -%}\n\n b"), "axb");
    EXPECT_EQ(render("a \n{{- 'b' -}}\n c"), "abc");
    EXPECT_EQ(render("a {#- c -#} b"), "ab");
    EXPECT_EQ(render("{% for i in [1, 2] -%}\n  {{ i }}\n{%- endfor %}"), "12");
}

TEST(TemplateWhitespace, NewlinesAndTrailingNewline) {
    EXPECT_EQ(render("x\n"), "x");
    EXPECT_EQ(render("x\n\n"), "x\n");
    EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
    EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

// ---- statements

TEST(TemplateStatements, IfElifElse) {
    const std::string t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
    EXPECT_EQ(render(t, {{"x", 1}}), "one");
    EXPECT_EQ(render(t, {{"x", 2}}), "two");
    EXPECT_EQ(render(t, {{"x", 3}}), "many");
}

TEST(TemplateStatements, ForLoopVariables) {
    EXPECT_EQ(render("{% for i in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                     "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
              "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
    EXPECT_EQ(render("{% for i in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
    EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
    EXPECT_EQ(render("{% for i in range(6) if i is odd %}{{ i }}{{ loop.last }}{% endfor %}"), "1False3False5True");
    EXPECT_EQ(render("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
}

TEST(TemplateStatements, ForUnpackingDictsAndControls) {
    const ojson ctx = {{"d", ojson::parse(R"({"b": 1, "a": 2})")}};
    EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}", ctx), "b=1 a=2 ");
    EXPECT_EQ(render("{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}", ctx), "b1a2");
    EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", ctx), "ba");
    EXPECT_EQ(render("{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
    EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}"
                     "{% endif %}{{ i }}{% endfor %}"),
              "013");
    EXPECT_EQ(render_error("{% for a, b in [[1, 2, 3]] %}{% endfor %}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render_error("{% for i in none %}{% endfor %}").kind(), TemplateErrorKind::Type);
}

TEST(TemplateStatements, Scoping) {
    EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"), "21");
    EXPECT_EQ(render("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
    EXPECT_EQ(render("{% for i in [1, 2] %}{% if i == 1 %}{% set y = 'a' %}{% endif %}[{{ y }}]{% endfor %}"), "[a][]");
    EXPECT_EQ(render("{% set ns = namespace(n=0, l=[]) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
                     "{% set ns.l = ns.l + [i] %}{% endfor %}{{ ns.n }} {{ ns.l }}"),
              "6 [1, 2, 3]");
    EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.index = 0 %}{{ ns.index }}{{ ns['index'] }}"), "00");
    EXPECT_EQ(render_error("{% set x = 1 %}{% set x.a = 2 %}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
    EXPECT_EQ(render("{% with a = 1 %}{{ a }}{% endwith %}[{{ a }}]"), "1[]");
}

TEST(TemplateStatements, BlockSetAndFilterBlocks) {
    EXPECT_EQ(render("{% set x %} hi {{ 1 }} {% endset %}[{{ x }}]"), "[ hi 1 ]");
    EXPECT_EQ(render("{% set x | trim | upper %}  hi  {% endset %}[{{ x }}]"), "[HI]");
    EXPECT_EQ(render("{% filter upper %}ab{{ 'c' }}{% endfilter %}"), "ABC");
    EXPECT_EQ(render("{%- filter trim -%}\n  text  \n{%- endfilter -%}"), "text");
}

TEST(TemplateStatements, MacrosAndCall) {
    EXPECT_EQ(render("{% macro m(a, b='x', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} "
                     "{{ m(1, c=3) }}"),
              "1xNone 12None 1x3");
    EXPECT_EQ(render("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}"),
              "1(2,){'k': 3}");
    EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
    EXPECT_EQ(render("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}in{% endcall %}"), "[in]");
    EXPECT_EQ(render("{% macro m() %}{{ caller(5) }}{% endmacro %}{% call(x) m() %}got {{ x }}{% endcall %}"), "got 5");
    EXPECT_EQ(render("{% macro m() %}{% set v = 1 %}{{ v }}{% endmacro %}{{ m() }}[{{ v }}]"), "1[]");
    EXPECT_EQ(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").kind(), TemplateErrorKind::Type);
}

TEST(TemplateStatements, GenerationTagRendersBody) {
    EXPECT_EQ(render("{% generation %}abc{% endgeneration %}"), "abc");
}

// ---- expressions

TEST(TemplateExpressions, Arithmetic) {
    EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 6 / 2 }}"),
              "7 3 -4 2 1024 3.5 3.0");
    EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [1] * 2 }} {{ [1, 2] + [3] }} {{ 'a' ~ 1 ~ none ~ x }}"),
              "abab [1, 1] [1, 2, 3] a1None");
    EXPECT_EQ(render("{{ '%s-%d' % ('a', 3) }} {{ -3|abs }} {{ 1 if false else 2 }} [{{ 1 if false }}]"), "a-3 3 2 []");
    EXPECT_EQ(render_error("{{ 'a' + 1 }}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render_error("{{ 1 / 0 }}").kind(), TemplateErrorKind::Type);
}

TEST(TemplateExpressions, NumbersPrintLikePython) {
    EXPECT_EQ(render("{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ 3 }} {{ -0.0 }} {{ 2.5e-3 }}"),
              "1.0 0.30000000000000004 1e+16 1e-05 3 -0.0 0.0025");
    EXPECT_EQ(render("{{ x }} {{ y }} {{ x|tojson }} {{ y|tojson }}", {{"x", 1.0}, {"y", 2}}), "1.0 2 1.0 2");
}

TEST(TemplateExpressions, ComparisonsLogicAndMembership) {
    EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ none == none }} {{ x == none }} {{ 'a' != 'b' }}"),
              "True True True False True");
    EXPECT_EQ(render("{{ 'at' in 'cat' }} {{ 1 in [1] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}"),
              "True True True True");
    EXPECT_EQ(render("{{ 0 or 'y' }} {{ 'x' and 'z' }} {{ not none }} {{ none is none }} {{ 1 is not none }}"),
              "y z True True True");
    EXPECT_EQ(render_error("{{ 'a' in none }}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render_error("{{ 'a' < 1 }}").kind(), TemplateErrorKind::Type);
}

TEST(TemplateExpressions, SubscriptsSlicesAndAttributes) {
    const ojson ctx = {{"s", "héllo"}, {"l", {1, 2, 3, 4}}, {"d", {{"a", {{"b", "c"}}}}}};
    EXPECT_EQ(render("{{ s[1] }} {{ s[::-1] }} {{ s[1:3] }} {{ s[-2:] }} {{ s|length }}", ctx), "é olléh él lo 5");
    EXPECT_EQ(render("{{ l[1:] }} {{ l[::-1] }} {{ l[:-1] }} {{ l[-1] }} {{ l[::2] }} [{{ l[10] }}]", ctx),
              "[2, 3, 4] [4, 3, 2, 1] [1, 2, 3] 4 [1, 3] []");
    EXPECT_EQ(render("{{ d.a.b }} {{ d['a']['b'] }} {{ d.a.get('b') }} {{ l.0 }} [{{ d.zz }}]", ctx), "c c c 1 []");
}

TEST(TemplateExpressions, LiteralsAndStringEscapes) {
    EXPECT_EQ(render("{{ true }} {{ True }} {{ none }} {{ None }} {{ false }}"), "True True None None False");
    EXPECT_EQ(render(R"({{ 'it\'s' }} {{ "a\tb" }} {{ '\u00e9\x41' }} {{ 'a' 'b' }} {{ 1_000 }} {{ 0x10 }})"),
              "it's a\tb éA ab 1000 16");
    EXPECT_EQ(render("{{ {'a': [1, 'x', none, true]} }} {{ (1,) }} {{ ['it\\'s'] }}"),
              "{'a': [1, 'x', None, True]} (1,) [\"it's\"]");
}

// ---- undefined and none

TEST(TemplateUndefined, BehavesLikeJinja2DefaultUndefined) {
    EXPECT_EQ(render("[{{ x }}] {{ x is defined }} {{ x is undefined }} {{ x|length }} {{ x|default('d') }}"),
              "[] False True 0 d");
    EXPECT_EQ(render("{% for i in x %}{{ i }}{% endfor %}{% if x %}t{% else %}f{% endif %}{{ x == y }}"), "fTrue");
    EXPECT_EQ(render("[{{ d.missing }}] {{ d.missing is defined }} [{{ d['missing'] }}]", {{"d", ojson::object()}}),
              "[] False []");
    // jinja2 raises when an undefined value is used further: attribute, call, arithmetic.
    EXPECT_EQ(render_error("{{ x.y }}").kind(), TemplateErrorKind::Undefined);
    EXPECT_EQ(render_error("{{ d.a.b.c }}", {{"d", ojson::object()}}).kind(), TemplateErrorKind::Undefined);
    EXPECT_EQ(render_error("{{ x + 1 }}").kind(), TemplateErrorKind::Undefined);
    EXPECT_EQ(render_error("{{ f() }}").kind(), TemplateErrorKind::Undefined);
    EXPECT_STREQ(render_error("{{ x.y }}").what(), "template UndefinedError at line 1, column 5: 'x' is undefined");
}

TEST(TemplateUndefined, LenientOptionMakesChainsUndefined) {
    RenderOptions o = fixed_options();
    o.lenient_undefined = true;
    EXPECT_EQ(render("[{{ x.y.z }}] [{{ x['a'][0] }}] {{ x.y is defined }} [{{ x[1:] }}]", ojson::object(), o),
              "[] [] False []");
    EXPECT_EQ(render_error("{{ x.y + 1 }}", ojson::object(), o).kind(), TemplateErrorKind::Undefined);
}

TEST(TemplateUndefined, NoneValues) {
    EXPECT_EQ(render("{{ n }} {{ n|trim }} {{ n|string }} [{{ n.attr }}] {{ n.attr is defined }}", {{"n", nullptr}}),
              "None None None [] False");
    const TemplateError e = render_error("{{ n.split('a') }}", {{"n", nullptr}});
    EXPECT_EQ(e.kind(), TemplateErrorKind::Undefined);
    EXPECT_NE(std::string(e.what()).find("'None' has no attribute 'split'"), std::string::npos);
}

// ---- filters

TEST(TemplateFilters, Strings) {
    EXPECT_EQ(render("{{ '  a  '|trim }}|{{ 'xax'|trim('x') }}|{{ 'Ab'|upper }}|{{ 'Ab'|lower }}|{{ 'a b-c'|title }}|"
                     "{{ 'aB'|capitalize }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'abc'|reverse }}|{{ 12|string }}"),
              "a|a|AB|ab|A B-C|Ab|bba|cba|12");
    EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(1, blank=true) }}"),
              "a\n    b\n\n    c|  a\n  b|a\n \n b");
    EXPECT_EQ(render("{{ '%s=%d'|format('a', 1) }} {{ 'abc'|center(7) }}| {{ 'a b'|wordcount }} {{ 'hello world foo "
                     "bar'|truncate(8) }}"),
              "a=1   abc  | 2 hello...");
}

TEST(TemplateFilters, Sequences) {
    EXPECT_EQ(render("{{ [1, 2]|join(', ') }} {{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ [3, 1, 2]|length }} "
                     "{{ [3, 1, 2]|count }} {{ 'ab'|list }} {{ [3, 1, 2]|sort }} {{ [3, 1, 2]|sort(reverse=true) }}"),
              "1, 2 3 2 3 3 ['a', 'b'] [1, 2, 3] [3, 2, 1]");
    EXPECT_EQ(render("{{ [1, 2, 1]|unique|list }} {{ [1, 2]|reverse|list }} {{ [1, 2, 3]|sum }} {{ [1, 3]|max }} "
                     "{{ [1, 3]|min }} {{ [1, 2, 3]|batch(2)|list }} {{ ['b', 'A', 'a']|sort }}"),
              "[1, 2] [2, 1] 6 3 1 [[1, 2], [3]] ['A', 'a', 'b']");
    EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|dictsort }} {{ {'a': 1}|items|list }}"), "[('a', 2), ('b', 1)] [('a', 1)]");
}

TEST(TemplateFilters, SelectMapAndFriends) {
    const ojson ctx = {{"m", ojson::parse(R"([{"role": "user", "n": 1}, {"role": "bot"}, {"role": "user", "n": 2}])")}};
    EXPECT_EQ(render("{{ m|selectattr('role', 'equalto', 'user')|map(attribute='n')|list }}", ctx), "[1, 2]");
    EXPECT_EQ(render("{{ m|rejectattr('role', 'eq', 'user')|list|length }} {{ m|selectattr('n')|list|length }}", ctx),
              "1 2");
    EXPECT_EQ(render("{{ m|map(attribute='n', default=0)|list }} {{ ['a']|map('upper')|list }}", ctx),
              "[1, 0, 2] ['A']");
    EXPECT_EQ(
        render("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('gt', 1)|list }} {{ [0, 1]|select|list }}"),
        "[1, 3] [1] [1]");
    EXPECT_EQ(render("{{ none|selectattr('a')|list }}"), "[]");  // jinja2 skips falsy input
    // Lazy generators: no len(), not JSON serialisable, single use.
    EXPECT_EQ(render_error("{{ [1]|map('string')|length }}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render_error("{{ [1]|map('string')|tojson }}").kind(), TemplateErrorKind::Type);
    EXPECT_EQ(render("{% set g = [1, 2]|map('string') %}{{ g|list }}{{ g|list }}"), "['1', '2'][]");
}

TEST(TemplateFilters, NumbersAndDefaults) {
    EXPECT_EQ(render("{{ '3'|int + 1 }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '1.5'|float }} {{ 2|float }}"),
              "4 0 7 3 1.5 2.0");
    EXPECT_EQ(render("{{ 2.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 5|round }}"),
              "2.0 2.67 3.0 5");
    EXPECT_EQ(render("{{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ x|d(y)|d('z') }}"),
              "d  d z");
}

TEST(TemplateFilters, ToJsonMatchesTransformers) {
    const ojson ctx = {
        {"x", ojson::parse(R"({"b": [1, {"c": null}], "a": "é\"\\\n\u0001/", "e": {}, "f": [], "g": 1.5})")}};
    EXPECT_EQ(render("{{ x|tojson }}", ctx),
              R"({"b": [1, {"c": null}], "a": "é\"\\\n\u0001/", "e": {}, "f": [], "g": 1.5})");
    EXPECT_EQ(render("{{ x|tojson(indent=2) }}", ctx),
              "{\n  \"b\": [\n    1,\n    {\n      \"c\": null\n    }\n  ],\n  \"a\": \"é\\\"\\\\\\n\\u0001/\",\n"
              "  \"e\": {},\n  \"f\": [],\n  \"g\": 1.5\n}");
    EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }} "
                     "{{ 'é😀'|tojson(ensure_ascii=true) }} {{ '<&>'|tojson }}"),
              R"({"a": 2, "b": 1} [1,2] "\u00e9\ud83d\ude00" "<&>")");
    EXPECT_EQ(render_error("{{ x|tojson }}").kind(), TemplateErrorKind::Type);
}

TEST(TemplateFilters, MarkupEscaping) {
    EXPECT_EQ(
        render("{{ '<a>'|e }} {{ ('<'|safe) + '<' }} {{ '<' + ('&'|safe) }} {{ '<'|safe ~ '<' }} {{ '\"'|escape }}"),
        "&lt;a&gt; <&lt; &lt;& << &#34;");
}

TEST(TemplateFilters, UnknownFilterIsASyntaxError) {
    EXPECT_THROW(Template::parse("{{ x|nosuch }}"), TemplateError);
    EXPECT_THROW(Template::parse("{{ x is nosuch }}"), TemplateError);
}

// ---- tests

TEST(TemplateTests, BuiltinTests) {
    EXPECT_EQ(render("{{ 1 is number }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1 is iterable }}"
                     "{{ [] is sequence }}{{ true is boolean }}{{ 1 is boolean }}{{ 1 is integer }}{{ 1.0 is float }}"),
              "TrueTrueTrueTrueFalseTrueTrueFalseTrueTrue");
    EXPECT_EQ(render("{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is eq 1 }}{{ 'a' is equalto 'a' }}"
                     "{{ 1 is ne 2 }}{{ true is true }}{{ false is false }}{{ 2 is in [1, 2] }}{{ 3 is gt 2 }}"),
              "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
    EXPECT_EQ(render("{{ x is none }}{{ x is not none }}{{ y is defined }}{{ not y is defined }}", {{"x", nullptr}}),
              "TrueFalseFalseTrue");
}

// ---- methods

TEST(TemplateMethods, StringMethods) {
    EXPECT_EQ(render("{{ ' a '.strip() }}|{{ 'xay'.strip('xy') }}|{{ '\n\nb'.lstrip('\n') }}|{{ 'a  '.rstrip() }}|"
                     "{{ 'a,b'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.rsplit(',', 1) }}"),
              "a|a|b|a|['a', 'b']|['a', 'b']|['a,b', 'c']");
    EXPECT_EQ(
        render(
            "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'ab'.upper() }} {{ 'AB'.lower() }} "
            "{{ 'ab cd'.title() }} {{ 'a-b'.replace('-', '+') }} {{ 'hello'.find('l') }} {{ ', '.join(['a', 'b']) }}"),
        "True True AB ab Ab Cd a+b 2 a, b");
    EXPECT_EQ(render("{{ '{} {x}'.format(1, x='y') }} {{ 'a=b'.partition('=') }} {{ 'ab'.count('a') }}"),
              "1 y ('a', '=', 'b') 1");
    EXPECT_EQ(render("{{ c.split('</think>')[-1].lstrip('\\n') }}", {{"c", "<think>r</think>\n\nans"}}), "ans");
}

TEST(TemplateMethods, DictMethodsAndSandbox) {
    const ojson ctx = {{"d", ojson::parse(R"({"b": 1, "a": 2})")}, {"l", {1}}};
    EXPECT_EQ(render("{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }} "
                     "{{ d.items()|list }}",
                     ctx),
              "['b', 'a'] [1, 2] 2 None 0 [('b', 1), ('a', 2)]");
    EXPECT_EQ(render("{{ dict(a=1) }} {{ l.count(1) }} {{ l.index(1) }}", ctx), "{'a': 1} 1 0");
    EXPECT_EQ(render_error("{{ l.append(2) }}", ctx).kind(), TemplateErrorKind::Security);
    EXPECT_EQ(render_error("{{ d.update({}) }}", ctx).kind(), TemplateErrorKind::Security);
    EXPECT_EQ(render("[{{ d.__class__ }}] [{{ ''.__class__ }}]", ctx), "[] []");  // no Python internals
}

// ---- globals

TEST(TemplateGlobals, RangeNamespaceRaiseAndStrftime) {
    EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(3, 0, -1)|list }}"),
              "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
    const TemplateError e = render_error("{{ raise_exception('Bad role: ' ~ r) }}", {{"r", "x"}});
    EXPECT_EQ(e.kind(), TemplateErrorKind::Raised);
    EXPECT_STREQ(e.what(), "Bad role: x");
    EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}"), "15 Jan 2026");
    RenderOptions o;
    o.now = RenderOptions::fixed_time(2024, 7, 26, 13, 5, 9);
    EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M:%S %A') }}", ojson::object(), o), "2024-07-26 13:05:09 Friday");
    EXPECT_EQ(render_error("{{ range(100001) }}").kind(), TemplateErrorKind::Limit);
}

// ---- limits

TEST(TemplateLimits, StepBudgetAbortsRunawayLoops) {
    RenderOptions o = fixed_options();
    o.max_steps = 200000;
    const TemplateError e = render_error(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", ojson::object(), o);
    EXPECT_EQ(e.kind(), TemplateErrorKind::Limit);
    EXPECT_NE(std::string(e.what()).find("step budget"), std::string::npos);
    EXPECT_EQ(render("{% for i in range(1000) %}{% endfor %}ok", ojson::object(), o), "ok");
}

TEST(TemplateLimits, RecursionAndNesting) {
    EXPECT_EQ(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").kind(), TemplateErrorKind::Limit);
    EXPECT_EQ(render_error("{% set ns = namespace(x=[]) %}{% for i in range(2000) %}{% set ns.x = [ns.x] %}"
                           "{% endfor %}")
                  .kind(),
              TemplateErrorKind::Limit);
    std::string deep = "{{ " + std::string(2000, '(') + "1" + std::string(2000, ')') + " }}";
    EXPECT_THROW(Template::parse(deep), TemplateError);
    std::string chain = "{{ 1";
    for (int i = 0; i < 5000; ++i) chain += " + 1";
    EXPECT_THROW(Template::parse(chain + " }}"), TemplateError);
    std::string ifs;
    for (int i = 0; i < 1000; ++i) ifs += "{% if 1 %}";
    EXPECT_THROW(Template::parse(ifs), TemplateError);
    // Cycles through namespaces and closures are broken after the render (LeakSanitizer checks).
    EXPECT_EQ(
        render("{% set ns = namespace() %}{% set ns.me = ns %}{% macro m() %}{{ ns.me.me is defined }}{% endmacro %}"
               "{% set ns.m = m %}{{ ns.m() }}"),
        "True");
}

TEST(TemplateLimits, SharedStructuresCannotAmplify) {
    // 2^40 leaves behind 40 small lists: every walk is charged to the budget and the output cap.
    const std::string build =
        "{% set ns = namespace(x=[1], y=[1]) %}{% for i in range(40) %}{% set ns.x = [ns.x, ns.x] %}"
        "{% set ns.y = [ns.y, ns.y] %}{% endfor %}";
    EXPECT_EQ(render_error(build + "{{ ns.x }}").kind(), TemplateErrorKind::Limit);
    EXPECT_EQ(render_error(build + "{{ ns.x|tojson }}").kind(), TemplateErrorKind::Limit);
    EXPECT_EQ(render_error(build + "{{ ns.x == ns.y }}").kind(), TemplateErrorKind::Limit);
    EXPECT_EQ(render_error("{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}"
                           "{% endfor %}")
                  .kind(),
              TemplateErrorKind::Limit);
}

TEST(TemplateLimits, OutputCap) {
    RenderOptions o = fixed_options();
    o.max_output_bytes = 1000;
    EXPECT_EQ(render_error("{% for i in range(2000) %}x{% endfor %}", ojson::object(), o).kind(),
              TemplateErrorKind::Limit);
    EXPECT_EQ(render_error("{{ 'x' * 5000 }}", ojson::object(), o).kind(), TemplateErrorKind::Limit);
    EXPECT_EQ(render_error("{% set ns = namespace(s='xx') %}{% for i in range(20) %}{% set ns.s = ns.s + ns.s %}"
                           "{% endfor %}",
                           ojson::object(), o)
                  .kind(),
              TemplateErrorKind::Limit);
}

// ---- syntax errors

TEST(TemplateSyntax, ErrorsCarryLineAndColumn) {
    auto check = [](const std::string& src, int line, int col) {
        try {
            Template::parse(src);
            ADD_FAILURE() << "parsed: " << src;
        } catch (const TemplateError& e) {
            EXPECT_EQ(e.kind(), TemplateErrorKind::Syntax) << src;
            EXPECT_EQ(e.line(), line) << src << ": " << e.what();
            EXPECT_EQ(e.column(), col) << src << ": " << e.what();
        }
    };
    check("a\nb {{ 1 + }}", 2, 10);
    check("{% if x %}\n  {% endfor %}", 2, 6);
    check("line1\n{% foo %}", 2, 4);
    check("{{ (1 }}", 1, 7);
    check("{{ 'abc }}", 1, 4);
    check("x\n\n  {# open", 3, 3);
    check("{% if x %}", 1, 11);
    check("{% break %}", 1, 4);
    try {
        Template::parse("\n{{ x | }}");
    } catch (const TemplateError& e) {
        EXPECT_STREQ(e.what(),
                     "template syntax error at line 2, column 8: expected a name, got end of print statement");
    }
}

TEST(TemplateApi, ConcurrentRendersOfOneTemplate) {
    const fs::path dir = fs::path(test::shared_path("templates")) / "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use";
    if (!fs::exists(dir)) GTEST_SKIP() << "no shared templates";
    const Template t = Template::parse(slurp(dir / "template.jinja"));
    const ojson ctx = ojson::parse(slurp(dir / "cases" / "parallel_tool_calls.json"));
    const std::string expected = slurp(dir / "expected" / "parallel_tool_calls.txt");
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&] {
            for (int i = 0; i < 10; ++i) ok += t.render(ctx) == expected;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(ok.load(), 40);
}

TEST(TemplateApi, DefaultTemplateAndJsonFlavours) {
    const Template t = Template::parse(default_chat_template());
    const ojson ctx = ojson::parse(R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant",
        "content": null}], "add_generation_prompt": true})");
    EXPECT_EQ(t.render(ctx),
              "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n");
    // nlohmann::json sorts keys; ordered_json keeps them.
    const std::string src = "{{ d|tojson }}";
    EXPECT_EQ(Template::parse(src).render(nlohmann::json::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"a": 2, "b": 1})");
    EXPECT_EQ(Template::parse(src).render(ojson::parse(R"({"d": {"b": 1, "a": 2}})")), R"({"b": 1, "a": 2})");
    // A parsed template is immutable and reusable; the default one is empty.
    EXPECT_EQ(t.render(ctx), t.render(ctx));
    EXPECT_EQ(Template().render(ctx), "");
}

}  // namespace
}  // namespace hearth
