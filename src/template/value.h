// Template values: JSON-like data (undefined, none, bool, int, float, string, list/tuple,
// dict) plus jinja2's namespace, loop context and callables. Containers are shared and
// immutable once built (the sandbox is immutable); namespaces are the one mutable object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "template/template.h"

namespace hearth::tmpl {

// Internal error: converted to TemplateError (with position) at the render boundary.
struct Failure {
    TemplateErrorKind kind;
    std::string message;
    int line = 0;
    int column = 0;
};
[[noreturn]] void fail(TemplateErrorKind kind, std::string message);
[[noreturn]] inline void type_error(std::string message) { fail(TemplateErrorKind::Type, std::move(message)); }

// Work accounting for the recursive helpers below (repr, equals, to_json, ...): shared
// containers can make a small value expensive to walk, so each visited node is charged to the
// step budget of the render running on this thread (interp.cpp; no-ops outside a render).
void charge_work(uint64_t steps);
void check_output_size(size_t bytes);

// Deepest container nesting allowed (keeps every recursive walk and destructor shallow).
constexpr uint32_t kMaxNesting = 512;

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, Array, Object, Namespace, Callable, Loop };
// Array flavours: what Python object it stands for.
enum class SeqKind : uint8_t {
    List,
    Tuple,
    Generator,  // single use, no len(), not subscriptable, not JSON serialisable, always true
    View,       // dict_items / dict_keys / dict_values: reusable, len(), not subscriptable or JSON
};

class Value;
class Interp;

struct ArrayData {
    std::vector<Value> items;
    SeqKind seq = SeqKind::List;
    uint32_t depth = 1;
    size_t pos = 0;                  // generators: items before pos are consumed
    const char* type_name = "list";  // Python's name for the type, for messages
};

class ObjectData {
public:
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value v);  // replaces in place or appends
    const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
    size_t size() const;  // defined below Value (clang needs Value complete for the vector's size())
    void clear();
    uint32_t depth = 1;

private:
    std::vector<std::pair<std::string, Value>> entries_;
    std::unordered_map<std::string, size_t> index_;  // built once the object grows
};

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;
};

class Callable {
public:
    explicit Callable(std::string name) : name_(std::move(name)) {}
    virtual ~Callable() = default;
    virtual Value call(Interp& in, CallArgs& args) = 0;
    virtual std::string repr() const;
    const std::string& name() const { return name_; }

private:
    std::string name_;
};

struct LoopData {
    std::shared_ptr<ArrayData> items;  // the (filtered) sequence being iterated
    size_t index0 = 0;
    int depth0 = 0;
};

class Value {
public:
    Value() : kind_(Kind::Undefined), safe_(false), i_(0) {}
    Value(bool b) : kind_(Kind::Bool), safe_(false), i_(0) { b_ = b; }
    Value(int v) : Value(static_cast<int64_t>(v)) {}
    Value(int64_t v) : kind_(Kind::Int), safe_(false), i_(v) {}
    Value(double v) : kind_(Kind::Float), safe_(false), f_(v) {}
    Value(std::string s, bool safe = false);
    Value(const char* s) : Value(std::string(s)) {}

    static Value none();
    // An undefined value whose message (used when it is misused) is `hint`.
    static Value undefined(std::string hint);
    static Value undefined_name(std::string_view name);                    // "'x' is undefined"
    static Value undefined_attr(const Value& obj, std::string_view attr);  // "'dict object' has no attribute 'x'"
    static Value list(std::vector<Value> items, SeqKind seq = SeqKind::List, const char* type_name = nullptr);
    static Value object(std::shared_ptr<ObjectData> obj);
    static Value name_space(std::shared_ptr<ObjectData> ns);
    static Value callable(std::shared_ptr<Callable> fn);
    static Value loop(std::shared_ptr<LoopData> loop);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_safe() const { return kind_ == Kind::String && safe_; }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return i_; }
    double as_float() const { return f_; }
    const std::string& str() const { return *static_cast<const std::string*>(p_.get()); }
    ArrayData& arr() const { return *static_cast<ArrayData*>(p_.get()); }
    ObjectData& obj() const { return *static_cast<ObjectData*>(p_.get()); }  // Object or Namespace
    Callable& fn() const { return *static_cast<Callable*>(p_.get()); }
    LoopData& loop() const { return *static_cast<LoopData*>(p_.get()); }
    std::shared_ptr<ArrayData> arr_ptr() const { return std::static_pointer_cast<ArrayData>(p_); }
    std::shared_ptr<ObjectData> obj_ptr() const { return std::static_pointer_cast<ObjectData>(p_); }
    const void* identity() const { return p_.get(); }
    // Undefined: the message to raise when it is misused.
    std::string undefined_message() const;

    // Number as double (bool and int included).
    double number() const { return kind_ == Kind::Float ? f_ : kind_ == Kind::Bool ? (b_ ? 1.0 : 0.0) : double(i_); }
    // Int or bool as int64.
    int64_t integer() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
    uint32_t nesting() const;  // container depth (0 for scalars)

private:
    Kind kind_;
    bool safe_;  // String: markupsafe.Markup
    union {
        bool b_;
        int64_t i_;
        double f_;
    };
    std::shared_ptr<void> p_;
};

inline size_t ObjectData::size() const { return entries_.size(); }

// ---- Python semantics helpers (value.cpp)
bool truthy(const Value& v);
std::string type_name(const Value& v);         // "str", "dict", "NoneType", ...
std::string object_type_repr(const Value& v);  // jinja2's "dict object" / "None"
std::string to_str(const Value& v);            // Python str(); undefined -> ""
void repr(const Value& v, std::string& out, uint32_t depth = 0);
bool equals(const Value& a, const Value& b, uint32_t depth = 0);
int compare(const Value& a, const Value& b, const char* op, uint32_t depth = 0);  // <0, 0, >0 or TypeError
bool contains(const Value& container, const Value& item);                         // Python `item in container`
// Items of an iterable as a vector (consumes generators). Strings give one-character strings,
// dicts their keys, undefined nothing; anything else is a TypeError.
std::vector<Value> iterate(const Value& v);
// len(); TypeError for values without one.
int64_t length(const Value& v);

struct JsonStyle {
    bool ensure_ascii = false;
    bool sort_keys = false;
    bool has_indent = false;
    std::string indent;  // per level, when has_indent
    std::string item_sep = ", ";
    std::string key_sep = ": ";
};
// json.dumps(v, ...) as transformers' tojson calls it.
void to_json(const Value& v, const JsonStyle& style, std::string& out, uint32_t depth = 0);

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

}  // namespace hearth::tmpl
