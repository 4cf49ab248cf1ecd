// Python arithmetic, concatenation and `%` formatting on template values.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "template/interp.h"
#include "template/text.h"

namespace hearth::tmpl {

namespace {

const char* op_symbol(BinOp op) {
    switch (op) {
        case BinOp::Add: return "+";
        case BinOp::Sub: return "-";
        case BinOp::Mul: return "*";
        case BinOp::Div: return "/";
        case BinOp::FloorDiv: return "//";
        case BinOp::Mod: return "%";
        case BinOp::Pow: return "** or pow()";
        case BinOp::Concat: return "~";
    }
    return "?";
}

[[noreturn]] void unsupported(BinOp op, const Value& a, const Value& b) {
    type_error(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) + "' and '" +
               type_name(b) + "'");
}

bool intlike(const Value& v) { return v.kind() == Kind::Int || v.kind() == Kind::Bool; }

Value int_result(bool overflow, int64_t r) {
    if (overflow) fail(TemplateErrorKind::Limit, "integer overflow");
    return Value(r);
}

int64_t floor_div(int64_t a, int64_t b) {
    if (b == 0) fail(TemplateErrorKind::Type, "integer division or modulo by zero");
    if (a == INT64_MIN && b == -1) fail(TemplateErrorKind::Limit, "integer overflow");
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

int64_t floor_mod(int64_t a, int64_t b) {
    if (b == 0) fail(TemplateErrorKind::Type, "integer division or modulo by zero");
    if (b == -1) return 0;
    int64_t m = a % b;
    if (m != 0 && ((m < 0) != (b < 0))) m += b;
    return m;
}

Value repeat(Interp& in, const Value& seq, int64_t n) {
    if (n < 0) n = 0;
    if (seq.is_string()) {
        const std::string& s = seq.str();
        if (!s.empty()) in.check_size(size_t(n) > SIZE_MAX / s.size() ? SIZE_MAX : s.size() * size_t(n));
        std::string out;
        out.reserve(s.size() * size_t(n));
        for (int64_t i = 0; i < n; ++i) out += s;
        in.charge_bytes(out.size());
        return Value(std::move(out), seq.is_safe());
    }
    const auto& items = seq.arr().items;
    if (!items.empty() && size_t(n) > (in.options().max_output_bytes / 8) / items.size())
        fail(TemplateErrorKind::Limit, "list repetition too large");
    std::vector<Value> out;
    out.reserve(items.size() * size_t(n));
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
    in.charge_bytes(out.size() * 16);
    return Value::list(std::move(out), seq.arr().seq);
}

bool is_list_or_tuple(const Value& v) {
    return v.is_array() && (v.arr().seq == SeqKind::List || v.arr().seq == SeqKind::Tuple);
}

}  // namespace

Value unary_minus(const Value& v, bool negate) {
    if (v.is_undefined()) fail(TemplateErrorKind::Undefined, v.undefined_message());
    if (v.kind() == Kind::Float) return Value(negate ? -v.as_float() : v.as_float());
    if (intlike(v)) {
        const int64_t x = v.integer();
        if (negate && x == INT64_MIN) fail(TemplateErrorKind::Limit, "integer overflow");
        return Value(negate ? -x : x);
    }
    type_error(std::string("bad operand type for unary ") + (negate ? "-" : "+") + ": '" + type_name(v) + "'");
}

Value binary_op(Interp& in, BinOp op, const Value& a, const Value& b) {
    if (op == BinOp::Concat) {
        std::string s = to_str(a);
        std::string r = to_str(b);
        in.check_size(s.size() + r.size());
        in.charge_bytes(s.size() + r.size());
        s += r;
        return Value(std::move(s));
    }
    if (op == BinOp::Mod && a.is_string()) {
        std::string s = percent_format(in, a.str(), b);
        return Value(std::move(s), a.is_safe());
    }
    if (a.is_undefined()) fail(TemplateErrorKind::Undefined, a.undefined_message());
    if (b.is_undefined()) fail(TemplateErrorKind::Undefined, b.undefined_message());
    const bool nums = a.is_number() && b.is_number();
    const bool ints = nums && intlike(a) && intlike(b);
    int64_t r = 0;
    switch (op) {
        case BinOp::Add:
            if (ints) {
                const bool overflow = __builtin_add_overflow(a.integer(), b.integer(), &r);
                return int_result(overflow, r);
            }
            if (nums) return Value(a.number() + b.number());
            if (a.is_string() && b.is_string()) {
                const bool safe = a.is_safe() || b.is_safe();
                std::string l = (safe && !a.is_safe()) ? text::html_escape(a.str()) : a.str();
                const std::string rs = (safe && !b.is_safe()) ? text::html_escape(b.str()) : b.str();
                in.check_size(l.size() + rs.size());
                in.charge_bytes(l.size() + rs.size());
                l += rs;
                return Value(std::move(l), safe);
            }
            if (is_list_or_tuple(a) && is_list_or_tuple(b)) {
                if (a.arr().seq != b.arr().seq)
                    type_error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
                               type_name(a));
                if (a.arr().items.size() + b.arr().items.size() > in.options().max_output_bytes / 8)
                    fail(TemplateErrorKind::Limit, "list too large");
                std::vector<Value> items = a.arr().items;
                items.insert(items.end(), b.arr().items.begin(), b.arr().items.end());
                in.charge_bytes(items.size() * 16);
                return Value::list(std::move(items), a.arr().seq);
            }
            if (a.is_string() || is_list_or_tuple(a))
                type_error("can only concatenate " + std::string(a.is_string() ? "str" : type_name(a)) + " (not \"" +
                           type_name(b) + "\") to " + (a.is_string() ? "str" : type_name(a)));
            unsupported(op, a, b);
        case BinOp::Sub:
            if (ints) {
                const bool overflow = __builtin_sub_overflow(a.integer(), b.integer(), &r);
                return int_result(overflow, r);
            }
            if (nums) return Value(a.number() - b.number());
            unsupported(op, a, b);
        case BinOp::Mul:
            if (ints) {
                const bool overflow = __builtin_mul_overflow(a.integer(), b.integer(), &r);
                return int_result(overflow, r);
            }
            if (nums) return Value(a.number() * b.number());
            if ((a.is_string() || is_list_or_tuple(a)) && intlike(b)) return repeat(in, a, b.integer());
            if ((b.is_string() || is_list_or_tuple(b)) && intlike(a)) return repeat(in, b, a.integer());
            if (a.is_string() || b.is_string() || a.is_array() || b.is_array())
                type_error("can't multiply sequence by non-int of type '" +
                           type_name(a.is_string() || a.is_array() ? b : a) + "'");
            unsupported(op, a, b);
        case BinOp::Div:
            if (nums) {
                if (b.number() == 0.0) fail(TemplateErrorKind::Type, "division by zero");
                if (ints) return Value(double(a.integer()) / double(b.integer()));
                return Value(a.number() / b.number());
            }
            unsupported(op, a, b);
        case BinOp::FloorDiv:
            if (ints) return Value(floor_div(a.integer(), b.integer()));
            if (nums) {
                const double x = a.number(), y = b.number();
                if (y == 0.0) fail(TemplateErrorKind::Type, "float floor division by zero");
                // CPython's float_floor_div: derived from fmod so that x == y * q + r holds.
                double mod = std::fmod(x, y);
                double div = (x - mod) / y;
                if (mod != 0.0 && ((y < 0) != (mod < 0))) div -= 1.0;
                if (div == 0.0) return Value(std::copysign(0.0, x / y));
                double q = std::floor(div);
                if (div - q > 0.5) q += 1.0;
                return Value(q);
            }
            unsupported(op, a, b);
        case BinOp::Mod:
            if (ints) return Value(floor_mod(a.integer(), b.integer()));
            if (nums) {
                const double x = a.number(), y = b.number();
                if (y == 0.0) fail(TemplateErrorKind::Type, "float modulo");
                double m = std::fmod(x, y);
                if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
                if (m == 0.0) m = std::copysign(0.0, y);
                return Value(m);
            }
            unsupported(op, a, b);
        case BinOp::Pow:
            if (ints) {
                int64_t base = a.integer(), e = b.integer();
                if (e < 0) {
                    if (base == 0) fail(TemplateErrorKind::Type, "0.0 cannot be raised to a negative power");
                    return Value(std::pow(double(base), double(e)));
                }
                int64_t acc = 1;
                while (e > 0) {
                    if (e & 1)
                        if (__builtin_mul_overflow(acc, base, &acc)) fail(TemplateErrorKind::Limit, "integer overflow");
                    e >>= 1;
                    if (e > 0 && __builtin_mul_overflow(base, base, &base)) {
                        if (acc == 0) return Value(int64_t(0));
                        fail(TemplateErrorKind::Limit, "integer overflow");
                    }
                }
                return Value(acc);
            }
            if (nums) {
                if (a.number() == 0.0 && b.number() < 0)
                    fail(TemplateErrorKind::Type, "0.0 cannot be raised to a negative power");
                const double r = std::pow(a.number(), b.number());
                if (std::isinf(r) && std::isfinite(a.number()) && std::isfinite(b.number()) && a.number() != 0.0)
                    fail(TemplateErrorKind::Type, "(34, 'Numerical result out of range')");
                return Value(r);
            }
            unsupported(op, a, b);
        case BinOp::Concat: break;
    }
    unsupported(op, a, b);
}

// ---- printf-style formatting

std::string percent_format(Interp& in, const std::string& fmt, const Value& args) {
    std::vector<Value> list;
    const bool mapping = args.kind() == Kind::Object;
    if (args.is_array() && args.arr().seq == SeqKind::Tuple)
        list = args.arr().items;
    else if (!mapping)
        list.push_back(args);
    size_t next = 0;
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        if (++i >= fmt.size()) fail(TemplateErrorKind::Type, "incomplete format");
        const Value* arg = nullptr;
        if (fmt[i] == '(') {
            const size_t close = fmt.find(')', i);
            if (close == std::string::npos) fail(TemplateErrorKind::Type, "incomplete format key");
            if (!mapping) type_error("format requires a mapping");
            arg = args.obj().find(fmt.substr(i + 1, close - i - 1));
            if (!arg) fail(TemplateErrorKind::Type, "KeyError: " + fmt.substr(i + 1, close - i - 1));
            i = close + 1;
        }
        std::string flags;
        while (i < fmt.size() && std::string_view("#0- +").find(fmt[i]) != std::string_view::npos) flags += fmt[i++];
        int width = -1, prec = -1;
        auto read_num = [&](int& dst) {
            if (i < fmt.size() && fmt[i] == '*') {
                if (next >= list.size()) type_error("not enough arguments for format string");
                dst = int(std::clamp<int64_t>(list[next++].integer(), 0, 4096));
                ++i;
                return;
            }
            if (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
                dst = 0;
                while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9')
                    dst = std::min(dst * 10 + (fmt[i++] - '0'), 4096);
            }
        };
        read_num(width);
        if (i < fmt.size() && fmt[i] == '.') {
            ++i;
            prec = 0;
            read_num(prec);
        }
        while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
        if (i >= fmt.size()) fail(TemplateErrorKind::Type, "incomplete format");
        const char conv = fmt[i];
        if (conv == '%') {
            out += '%';
            continue;
        }
        if (!arg) {
            if (mapping) type_error("format requires a mapping");
            if (next >= list.size()) type_error("not enough arguments for format string");
            arg = &list[next++];
        }
        std::string piece;
        char buf[8192];
        const std::string spec_head =
            "%" + flags + (width >= 0 ? std::to_string(width) : "") +
            (prec >= 0 && std::string_view("feEgGFs").find(conv) != std::string_view::npos ? "." + std::to_string(prec)
                                                                                           : "");
        switch (conv) {
            case 's':
            case 'r':
            case 'a': {
                piece = conv == 's' ? to_str(*arg) : std::string();
                if (conv != 's') repr(*arg, piece);
                if (prec >= 0) {
                    auto offs = text::cp_offsets(piece);
                    if (offs.size() - 1 > size_t(prec)) piece.resize(offs[size_t(prec)]);
                }
                const size_t n = text::cp_count(piece);
                if (width >= 0 && n < size_t(width)) {
                    const std::string pad(size_t(width) - n, ' ');
                    piece = flags.find('-') != std::string::npos ? piece + pad : pad + piece;
                }
                break;
            }
            case 'd':
            case 'i':
            case 'u':
            case 'x':
            case 'X':
            case 'o':
            case 'c': {
                if (!arg->is_number())
                    type_error(std::string("%") + conv + " format: a real number is required, not " + type_name(*arg));
                const int64_t v = arg->kind() == Kind::Float ? int64_t(arg->as_float()) : arg->integer();
                if (conv == 'c') {
                    text::append_utf8(piece, char32_t(v));
                    break;
                }
                const char c = conv == 'i' || conv == 'u' ? 'd' : conv;
                std::snprintf(buf, sizeof buf, (spec_head + "ll" + c).c_str(), static_cast<long long>(v));
                piece = buf;
                break;
            }
            case 'f':
            case 'F':
            case 'e':
            case 'E':
            case 'g':
            case 'G': {
                if (!arg->is_number()) type_error("must be real number, not " + type_name(*arg));
                std::snprintf(buf, sizeof buf, (spec_head + conv).c_str(), arg->number());
                piece = buf;
                break;
            }
            default: fail(TemplateErrorKind::Type, std::string("unsupported format character '") + conv + "'");
        }
        in.check_size(out.size() + piece.size());
        out += piece;
    }
    // CPython skips this check when the argument could be a mapping (lists and dicts do).
    const bool maybe_mapping = mapping || args.is_undefined() || (args.is_array() && args.arr().seq == SeqKind::List);
    if (!maybe_mapping && next < list.size()) type_error("not all arguments converted during string formatting");
    in.charge_bytes(out.size());
    return out;
}

}  // namespace hearth::tmpl
