// Template values and the Python semantics they follow (see value.h).
#include "template/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "template/text.h"

namespace hearth::tmpl {

void fail(TemplateErrorKind kind, std::string message) { throw Failure{kind, std::move(message)}; }

std::string Callable::repr() const { return "<function " + name_ + ">"; }

// ---- ObjectData

const Value* ObjectData::find(std::string_view key) const {
    if (!index_.empty()) {
        auto it = index_.find(std::string(key));
        return it == index_.end() ? nullptr : &entries_[it->second].second;
    }
    for (const auto& [k, v] : entries_)
        if (k == key) return &v;
    return nullptr;
}

void ObjectData::set(const std::string& key, Value v) {
    if (!index_.empty()) {
        auto it = index_.find(key);
        if (it != index_.end()) {
            entries_[it->second].second = std::move(v);
            return;
        }
    } else {
        for (auto& e : entries_)
            if (e.first == key) {
                e.second = std::move(v);
                return;
            }
    }
    entries_.emplace_back(key, std::move(v));
    if (entries_.size() > 8) {
        if (index_.empty())
            for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
        else
            index_.emplace(key, entries_.size() - 1);
    }
}

void ObjectData::clear() {
    entries_.clear();
    index_.clear();
}

// ---- Value

Value::Value(std::string s, bool safe) : kind_(Kind::String), safe_(safe), i_(0) {
    p_ = std::make_shared<std::string>(std::move(s));
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}

Value Value::undefined(std::string hint) {
    Value v;
    v.p_ = std::make_shared<std::string>(std::move(hint));
    return v;
}

Value Value::undefined_name(std::string_view name) {
    std::string msg;
    text::repr_string(name, msg);
    return undefined(msg + " is undefined");
}

Value Value::undefined_attr(const Value& obj, std::string_view attr) {
    std::string msg, type;
    text::repr_string(object_type_repr(obj), type);
    msg = type + " has no attribute ";
    text::repr_string(attr, msg);
    return undefined(std::move(msg));
}

uint32_t Value::nesting() const {
    if (kind_ == Kind::Array) return arr().depth;
    if (kind_ == Kind::Object) return obj().depth;
    return 0;
}

Value Value::list(std::vector<Value> items, SeqKind seq, const char* type_name) {
    auto data = std::make_shared<ArrayData>();
    uint32_t depth = 0;
    for (const auto& it : items) depth = std::max(depth, it.nesting());
    if (depth + 1 > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    data->depth = depth + 1;
    data->items = std::move(items);
    data->seq = seq;
    data->type_name = type_name                   ? type_name
                      : seq == SeqKind::Tuple     ? "tuple"
                      : seq == SeqKind::Generator ? "generator"
                      : seq == SeqKind::View      ? "dict_items"
                                                  : "list";
    Value v;
    v.kind_ = Kind::Array;
    v.p_ = std::move(data);
    return v;
}

Value Value::object(std::shared_ptr<ObjectData> obj) {
    uint32_t depth = 0;
    for (const auto& e : obj->entries()) depth = std::max(depth, e.second.nesting());
    if (depth + 1 > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    obj->depth = depth + 1;
    Value v;
    v.kind_ = Kind::Object;
    v.p_ = std::move(obj);
    return v;
}

Value Value::name_space(std::shared_ptr<ObjectData> ns) {
    Value v;
    v.kind_ = Kind::Namespace;
    v.p_ = std::move(ns);
    return v;
}

Value Value::callable(std::shared_ptr<Callable> fn) {
    Value v;
    v.kind_ = Kind::Callable;
    v.p_ = std::move(fn);
    return v;
}

Value Value::loop(std::shared_ptr<LoopData> loop) {
    Value v;
    v.kind_ = Kind::Loop;
    v.p_ = std::move(loop);
    return v;
}

std::string Value::undefined_message() const {
    if (p_) return *static_cast<const std::string*>(p_.get());
    return "value is undefined";
}

// ---- Python semantics

bool truthy(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return v.as_bool();
        case Kind::Int: return v.as_int() != 0;
        case Kind::Float: return v.as_float() != 0.0;
        case Kind::String: return !v.str().empty();
        case Kind::Array: return v.arr().seq == SeqKind::Generator || !v.arr().items.empty();
        case Kind::Object: return v.obj().size() != 0;
        default: return true;
    }
}

std::string type_name(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return v.is_safe() ? "Markup" : "str";
        case Kind::Array: return v.arr().type_name;
        case Kind::Object: return "dict";
        case Kind::Namespace: return "Namespace";
        case Kind::Callable: return "function";
        case Kind::Loop: return "LoopContext";
    }
    return "object";
}

std::string object_type_repr(const Value& v) {
    switch (v.kind()) {
        case Kind::None: return "None";
        case Kind::Undefined: return "jinja2.runtime.Undefined object";
        case Kind::Namespace: return "jinja2.utils.Namespace object";
        case Kind::Loop: return "jinja2.runtime.LoopContext object";
        case Kind::String:
            if (v.is_safe()) return "markupsafe.Markup object";
            break;
        default: break;
    }
    return type_name(v) + " object";
}

std::string to_str(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return "";
        case Kind::String: return v.str();
        case Kind::Int: return std::to_string(v.as_int());
        case Kind::Float: return text::float_repr(v.as_float());
        case Kind::Bool: return v.as_bool() ? "True" : "False";
        case Kind::None: return "None";
        default: {
            std::string out;
            repr(v, out);
            return out;
        }
    }
}

void repr(const Value& v, std::string& out, uint32_t depth) {
    if (depth > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    charge_work(1);
    check_output_size(out.size());
    switch (v.kind()) {
        case Kind::Undefined: out += "Undefined"; return;
        case Kind::String:
            if (v.is_safe()) {
                out += "Markup(";
                text::repr_string(v.str(), out);
                out += ')';
            } else {
                text::repr_string(v.str(), out);
            }
            return;
        case Kind::Array: {
            const ArrayData& a = v.arr();
            if (a.seq == SeqKind::Generator) {
                out += "<";
                out += a.type_name;
                out += " object>";
                return;
            }
            const bool tuple = a.seq == SeqKind::Tuple;
            if (a.seq == SeqKind::View) {
                out += a.type_name;
                out += '(';
            }
            out += tuple ? '(' : '[';
            for (size_t i = 0; i < a.items.size(); ++i) {
                if (i) out += ", ";
                repr(a.items[i], out, depth + 1);
            }
            if (tuple && a.items.size() == 1) out += ',';
            out += tuple ? ')' : ']';
            if (a.seq == SeqKind::View) out += ')';
            return;
        }
        case Kind::Object:
        case Kind::Namespace: {
            const bool ns = v.kind() == Kind::Namespace;
            if (ns) out += "<Namespace ";
            out += '{';
            bool first = true;
            for (const auto& [k, item] : v.obj().entries()) {
                if (!first) out += ", ";
                first = false;
                text::repr_string(k, out);
                out += ": ";
                repr(item, out, depth + 1);
            }
            out += '}';
            if (ns) out += '>';
            return;
        }
        case Kind::Callable: out += v.fn().repr(); return;
        case Kind::Loop: {
            const LoopData& l = v.loop();
            out += "<LoopContext " + std::to_string(l.index0 + 1) + "/" + std::to_string(l.items->items.size()) + ">";
            return;
        }
        default: out += to_str(v); return;
    }
}

bool equals(const Value& a, const Value& b, uint32_t depth) {
    if (depth > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    charge_work(1);
    if (a.is_number() && b.is_number()) {
        if (a.kind() != Kind::Float && b.kind() != Kind::Float) return a.integer() == b.integer();
        return a.number() == b.number();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return a.str() == b.str();
        case Kind::Array: {
            const ArrayData &x = a.arr(), &y = b.arr();
            if (&x == &y) return true;
            if (x.seq != y.seq || x.seq == SeqKind::Generator || x.items.size() != y.items.size()) return false;
            for (size_t i = 0; i < x.items.size(); ++i)
                if (!equals(x.items[i], y.items[i], depth + 1)) return false;
            return true;
        }
        case Kind::Object: {
            const ObjectData &x = a.obj(), &y = b.obj();
            if (x.size() != y.size()) return false;
            for (const auto& [k, v] : x.entries()) {
                const Value* other = y.find(k);
                if (!other || !equals(v, *other, depth + 1)) return false;
            }
            return true;
        }
        default: return a.identity() == b.identity();
    }
}

int compare(const Value& a, const Value& b, const char* op, uint32_t depth) {
    if (depth > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    charge_work(1);
    if (a.is_undefined()) fail(TemplateErrorKind::Undefined, a.undefined_message());
    if (b.is_undefined()) fail(TemplateErrorKind::Undefined, b.undefined_message());
    if (a.is_number() && b.is_number()) {
        if (a.kind() != Kind::Float && b.kind() != Kind::Float)
            return a.integer() < b.integer() ? -1 : a.integer() > b.integer() ? 1 : 0;
        double x = a.number(), y = b.number();
        return x < y ? -1 : x > y ? 1 : 0;  // NaN compares "equal": every ordering test is false
    }
    if (a.is_string() && b.is_string()) {
        int c = a.str().compare(b.str());
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (a.is_array() && b.is_array() && a.arr().seq == b.arr().seq && a.arr().seq != SeqKind::Generator &&
        a.arr().seq != SeqKind::View) {
        const auto &x = a.arr().items, &y = b.arr().items;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (equals(x[i], y[i], depth + 1)) continue;
            return compare(x[i], y[i], op, depth + 1);
        }
        return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
    }
    type_error(std::string("'") + op + "' not supported between instances of '" + type_name(a) + "' and '" +
               type_name(b) + "'");
}

std::vector<Value> iterate(const Value& v) {
    charge_work(1);
    switch (v.kind()) {
        case Kind::Undefined: return {};
        case Kind::String: {
            std::vector<Value> out;
            const std::string& s = v.str();
            charge_work(s.size());  // one value per character: pay before allocating
            for (size_t i = 0; i < s.size();) {
                size_t at = i;
                text::next_cp(s, i);
                out.emplace_back(s.substr(at, i - at));  // iterating a Markup yields plain str
            }
            return out;
        }
        case Kind::Array: {
            ArrayData& a = v.arr();
            charge_work(a.items.size() >> 4);
            if (a.seq == SeqKind::Generator) {
                std::vector<Value> out(a.items.begin() + std::ptrdiff_t(std::min(a.pos, a.items.size())),
                                       a.items.end());
                a.pos = a.items.size();
                return out;
            }
            return a.items;
        }
        case Kind::Object: {
            std::vector<Value> out;
            out.reserve(v.obj().size());
            for (const auto& e : v.obj().entries()) out.emplace_back(e.first);
            return out;
        }
        default: type_error("'" + type_name(v) + "' object is not iterable");
    }
}

int64_t length(const Value& v) {
    switch (v.kind()) {
        case Kind::Undefined: return 0;
        case Kind::String: return int64_t(text::cp_count(v.str()));
        case Kind::Array:
            if (v.arr().seq == SeqKind::Generator) type_error("object of type '" + type_name(v) + "' has no len()");
            return int64_t(v.arr().items.size());
        case Kind::Object: return int64_t(v.obj().size());
        default: type_error("object of type '" + type_name(v) + "' has no len()");
    }
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (!item.is_string()) type_error("'in <string>' requires string as left operand, not " + type_name(item));
            return container.str().find(item.str()) != std::string::npos;
        case Kind::Object:
            if (item.is_string()) return container.obj().find(item.str()) != nullptr;
            if ((item.is_array() && item.arr().seq == SeqKind::List) || item.is_object() ||
                item.kind() == Kind::Namespace)
                type_error("unhashable type: '" + type_name(item) + "'");
            return false;
        case Kind::Array:
            for (const auto& x : iterate(container))
                if (equals(x, item)) return true;
            return false;
        default: type_error("argument of type '" + type_name(container) + "' is not iterable");
    }
}

void to_json(const Value& v, const JsonStyle& st, std::string& out, uint32_t depth) {
    if (depth > kMaxNesting) fail(TemplateErrorKind::Limit, "data nested too deeply");
    charge_work(1);
    check_output_size(out.size());
    auto newline = [&](uint32_t level) {
        out += '\n';
        for (uint32_t i = 0; i < level; ++i) out += st.indent;
    };
    switch (v.kind()) {
        case Kind::None: out += "null"; return;
        case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Kind::Int: out += std::to_string(v.as_int()); return;
        case Kind::Float: {
            double d = v.as_float();
            if (std::isnan(d))
                out += "NaN";
            else if (std::isinf(d))
                out += d > 0 ? "Infinity" : "-Infinity";
            else
                out += text::float_repr(d);
            return;
        }
        case Kind::String: text::json_string(v.str(), st.ensure_ascii, out); return;
        case Kind::Array: {
            const ArrayData& a = v.arr();
            if (a.seq == SeqKind::Generator || a.seq == SeqKind::View) break;
            if (a.items.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t i = 0; i < a.items.size(); ++i) {
                if (i) out += st.item_sep;
                if (st.has_indent) newline(depth + 1);
                to_json(a.items[i], st, out, depth + 1);
            }
            if (st.has_indent) newline(depth);
            out += ']';
            return;
        }
        case Kind::Object: {
            const auto& entries = v.obj().entries();
            if (entries.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<std::string, Value>*> order;
            order.reserve(entries.size());
            for (const auto& e : entries) order.push_back(&e);
            if (st.sort_keys)
                std::stable_sort(order.begin(), order.end(), [](auto* x, auto* y) { return x->first < y->first; });
            out += '{';
            for (size_t i = 0; i < order.size(); ++i) {
                if (i) out += st.item_sep;
                if (st.has_indent) newline(depth + 1);
                text::json_string(order[i]->first, st.ensure_ascii, out);
                out += st.key_sep;
                to_json(order[i]->second, st, out, depth + 1);
            }
            if (st.has_indent) newline(depth);
            out += '}';
            return;
        }
        default: break;
    }
    type_error("Object of type " + type_name(v) + " is not JSON serializable");
}

namespace {

template <class J>
Value convert(const J& j, uint32_t depth) {
    if (depth > kMaxNesting) fail(TemplateErrorKind::Limit, "context data nested too deeply");
    switch (j.type()) {
        case nlohmann::json::value_t::null: return Value::none();
        case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
        case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            auto u = j.template get<uint64_t>();
            if (u <= uint64_t(INT64_MAX)) return Value(int64_t(u));
            return Value(double(u));
        }
        case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
        case nlohmann::json::value_t::string: return Value(j.template get_ref<const std::string&>());
        case nlohmann::json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto& x : j) items.push_back(convert(x, depth + 1));
            return Value::list(std::move(items));
        }
        case nlohmann::json::value_t::object: {
            auto obj = std::make_shared<ObjectData>();
            for (auto it = j.begin(); it != j.end(); ++it) obj->set(it.key(), convert(it.value(), depth + 1));
            return Value::object(std::move(obj));
        }
        default: fail(TemplateErrorKind::Type, "unsupported JSON value in the context (binary)");
    }
}

}  // namespace

Value from_json(const nlohmann::json& j) { return convert(j, 0); }
Value from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }

}  // namespace hearth::tmpl
