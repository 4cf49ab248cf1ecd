// Metadata values, error kinds and GgufError.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

#include "gguf/gguf.h"

namespace hearth::gguf {

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::UINT8: return "uint8";
        case ValueType::INT8: return "int8";
        case ValueType::UINT16: return "uint16";
        case ValueType::INT16: return "int16";
        case ValueType::UINT32: return "uint32";
        case ValueType::INT32: return "int32";
        case ValueType::FLOAT32: return "float32";
        case ValueType::BOOL: return "bool";
        case ValueType::STRING: return "string";
        case ValueType::ARRAY: return "array";
        case ValueType::UINT64: return "uint64";
        case ValueType::INT64: return "int64";
        case ValueType::FLOAT64: return "float64";
    }
    return "unknown";
}

const char* error_kind_name(ErrorKind k) {
    switch (k) {
        case ErrorKind::Io: return "io error";
        case ErrorKind::Truncated: return "truncated";
        case ErrorKind::BadMagic: return "bad magic";
        case ErrorKind::BadVersion: return "bad version";
        case ErrorKind::BadCount: return "bad count";
        case ErrorKind::BadString: return "bad string";
        case ErrorKind::BadValueType: return "bad value type";
        case ErrorKind::BadArray: return "bad array";
        case ErrorKind::DuplicateKey: return "duplicate key";
        case ErrorKind::BadAlignment: return "bad alignment";
        case ErrorKind::BadTensorName: return "bad tensor name";
        case ErrorKind::BadDims: return "bad dims";
        case ErrorKind::BadTensorType: return "bad tensor type";
        case ErrorKind::BadOffset: return "bad offset";
    }
    return "unknown error";
}

namespace {

SubjectKind infer_subject_kind(ErrorKind kind, const std::string& subject) {
    if (subject.empty()) return SubjectKind::None;
    switch (kind) {
        case ErrorKind::BadTensorName:
        case ErrorKind::BadDims:
        case ErrorKind::BadTensorType:
        case ErrorKind::BadOffset: return SubjectKind::Tensor;
        default: return SubjectKind::Key;
    }
}

std::string error_message(ErrorKind kind, SubjectKind sk, const std::string& subject, uint64_t offset,
                          const std::string& detail) {
    std::string m = "gguf: ";
    m += error_kind_name(kind);
    m += ": ";
    m += detail;
    m += " (";
    if (sk == SubjectKind::Key) m += "key '" + subject + "', ";
    if (sk == SubjectKind::Tensor) m += "tensor '" + subject + "', ";
    m += "at byte " + std::to_string(offset) + ")";
    return m;
}

bool is_unsigned_type(ValueType t) {
    return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}

bool is_signed_type(ValueType t) {
    return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}

[[noreturn]] void type_mismatch(ValueType have, bool empty, const char* want) {
    if (empty) throw std::invalid_argument(std::string("empty gguf value is not ") + want);
    throw std::invalid_argument(std::string("gguf value of type ") + value_type_name(have) + " is not " + want);
}

void append_quoted(std::string& out, const std::string& s) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

template <class I>
void append_integer(std::string& out, I v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Shortest round-trip digits; plain notation for exponents in [-4, 16), like Python's repr.
template <class F>
void append_float(std::string& out, F v) {
    char buf[512];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    const std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
    const size_t e = s.find('e');
    if (e != std::string_view::npos) {
        int exp = 0;
        const char* p = s.data() + e + 1;
        if (*p == '+') ++p;  // from_chars takes '-' but not '+'
        std::from_chars(p, s.data() + s.size(), exp);
        if (exp >= -4 && exp < 16) r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    }
    out.append(buf, r.ptr);
}

void append_value(std::string& out, const Value& v, size_t max_items);

void append_array(std::string& out, const Array& a, size_t max_items) {
    out += '[';
    const size_t shown = std::min(max_items, a.items.size());
    for (size_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        append_value(out, a.items[i], max_items);
    }
    if (shown < a.items.size()) {
        if (shown) out += ", ";
        out += "... (" + std::to_string(a.items.size()) + " items)";
    }
    out += ']';
}

void append_value(std::string& out, const Value& v, size_t max_items) {
    const ValueType t = v.type();
    if (is_unsigned_type(t)) {
        append_integer(out, v.as_u64());
    } else if (is_signed_type(t)) {
        append_integer(out, v.as_i64());
    } else if (t == ValueType::FLOAT32) {
        append_float(out, static_cast<float>(v.as_f64()));
    } else if (t == ValueType::FLOAT64) {
        append_float(out, v.as_f64());
    } else if (t == ValueType::BOOL) {
        out += v.as_bool() ? "true" : "false";
    } else if (t == ValueType::STRING) {
        append_quoted(out, v.as_string());
    } else {
        append_array(out, v.as_array(), max_items);
    }
}

}  // namespace

GgufError::GgufError(ErrorKind kind, std::string subject, uint64_t offset, const std::string& detail)
    : GgufError(kind, infer_subject_kind(kind, subject), subject, offset, detail) {}

GgufError::GgufError(ErrorKind kind, SubjectKind subject_kind, std::string subject, uint64_t offset,
                     const std::string& detail)
    : std::runtime_error(error_message(kind, subject_kind, subject, offset, detail)),
      kind_(kind),
      subject_kind_(subject_kind),
      subject_(std::move(subject)),
      offset_(offset) {}

Value Value::array(ValueType elem, std::vector<Value> items) {
    if (static_cast<uint32_t>(elem) > static_cast<uint32_t>(ValueType::FLOAT64))
        throw std::invalid_argument("gguf array: unknown element type " + std::to_string(static_cast<uint32_t>(elem)));
    for (const Value& item : items) {
        if (item.type_ != elem || std::holds_alternative<std::monostate>(item.v_))
            throw std::invalid_argument(std::string("gguf array of ") + value_type_name(elem) +
                                        " holds an item of type " + value_type_name(item.type_));
    }
    auto a = std::make_shared<Array>();
    a->elem_type = elem;
    a->items = std::move(items);
    return Value(ValueType::ARRAY, std::shared_ptr<const Array>(std::move(a)));
}

Value Value::string_array(const std::vector<std::string>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (const auto& s : items) v.push_back(Value::string(s));
    return array(ValueType::STRING, std::move(v));
}

Value Value::f32_array(const std::vector<float>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (float f : items) v.push_back(Value::f32(f));
    return array(ValueType::FLOAT32, std::move(v));
}

Value Value::i32_array(const std::vector<int32_t>& items) {
    std::vector<Value> v;
    v.reserve(items.size());
    for (int32_t i : items) v.push_back(Value::i32(i));
    return array(ValueType::INT32, std::move(v));
}

bool Value::is_integer() const { return is_unsigned_type(type_) || is_signed_type(type_); }

uint64_t Value::as_u64() const {
    if (const auto* u = std::get_if<uint64_t>(&v_)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v_)) {
        if (*i < 0)
            throw std::invalid_argument("gguf value " + std::to_string(*i) + " of type " + value_type_name(type_) +
                                        " is negative, not an unsigned integer");
        return static_cast<uint64_t>(*i);
    }
    if (const auto* b = std::get_if<bool>(&v_)) return *b ? 1 : 0;
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "an unsigned integer");
}

int64_t Value::as_i64() const {
    if (const auto* i = std::get_if<int64_t>(&v_)) return *i;
    if (const auto* u = std::get_if<uint64_t>(&v_)) {
        if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            throw std::invalid_argument("gguf value " + std::to_string(*u) + " of type " + value_type_name(type_) +
                                        " is out of range for int64");
        return static_cast<int64_t>(*u);
    }
    if (const auto* b = std::get_if<bool>(&v_)) return *b ? 1 : 0;
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "an integer");
}

double Value::as_f64() const {
    if (const auto* d = std::get_if<double>(&v_)) return *d;
    if (const auto* u = std::get_if<uint64_t>(&v_)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<int64_t>(&v_)) return static_cast<double>(*i);
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "a number");
}

bool Value::as_bool() const {
    if (const auto* b = std::get_if<bool>(&v_)) return *b;
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "a bool");
}

const std::string& Value::as_string() const {
    if (const auto* s = std::get_if<std::string>(&v_)) return *s;
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "a string");
}

const Array& Value::as_array() const {
    if (const auto* a = std::get_if<std::shared_ptr<const Array>>(&v_)) return **a;
    type_mismatch(type_, std::holds_alternative<std::monostate>(v_), "an array");
}

std::string Value::to_string(size_t max_items) const {
    if (std::holds_alternative<std::monostate>(v_)) return "<empty>";
    std::string out;
    append_value(out, *this, max_items);
    return out;
}

}  // namespace hearth::gguf
