// The validating GGUF reader. Every count, length, type id, dimension and offset read from
// the file is checked against the bytes that remain before anything is allocated from it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "gguf/gguf.h"

namespace hearth::gguf {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

// Lower bounds on the encoded size of a metadata entry (key length + value type) and of a
// tensor info (name length + n_dims + type + offset), used to bound the counts.
constexpr size_t kMinKvBytes = 12;
constexpr size_t kMinTensorInfoBytes = 24;
// Counts are checked against the bytes left before anything is reserved, but a large file
// could still claim a count far beyond its real content: reserve at most this many items
// up front and let the vector grow as items are actually read.
constexpr uint64_t kMaxReserve = uint64_t{1} << 20;

size_t reserve_count(uint64_t n) { return static_cast<size_t>(std::min(n, kMaxReserve)); }

bool is_known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::FLOAT64); }

bool is_unsigned_type(ValueType t) {
    return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}

// Encoded bytes of one scalar, or the minimum for a string (its length) / array (type + count).
size_t min_encoded_size(ValueType t) {
    switch (t) {
        case ValueType::UINT8:
        case ValueType::INT8:
        case ValueType::BOOL: return 1;
        case ValueType::UINT16:
        case ValueType::INT16: return 2;
        case ValueType::UINT32:
        case ValueType::INT32:
        case ValueType::FLOAT32: return 4;
        case ValueType::UINT64:
        case ValueType::INT64:
        case ValueType::FLOAT64:
        case ValueType::STRING: return 8;
        case ValueType::ARRAY: return 12;
    }
    return 1;
}

template <class T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

struct ParseResult {
    uint32_t version = 0;
    size_t alignment = kDefaultAlignment;
    size_t data_offset = 0;
    std::vector<std::pair<std::string, Value>> kv;
    std::vector<TensorInfo> tensors;
};

class Parser {
public:
    Parser(const uint8_t* base, size_t size) : base_(base), size_(size) {}

    ParseResult run() {
        read_header();
        read_metadata();
        apply_alignment();
        read_tensor_infos();
        place_data_section();
        check_tensor_ranges();
        return std::move(out_);
    }

private:
    const uint8_t* base_;
    size_t size_;
    size_t pos_ = 0;
    ParseResult out_;
    uint64_t n_tensors_ = 0;
    uint64_t n_kv_ = 0;
    size_t alignment_value_at_ = 0;  // where general.alignment's value starts
    size_t alignment_type_at_ = 0;
    std::vector<size_t> offset_field_at_;  // per tensor: where its offset field starts

    // The key or tensor that errors name.
    SubjectKind subject_kind_ = SubjectKind::None;
    std::string subject_;

    void set_subject(SubjectKind k, std::string_view name) {
        subject_kind_ = k;
        subject_.assign(name);
    }

    [[noreturn]] void fail(ErrorKind kind, size_t at, const std::string& detail) const {
        throw GgufError(kind, subject_kind_, subject_, at, detail);
    }

    size_t remaining() const { return size_ - pos_; }

    void need(size_t n, const char* what) const {
        if (remaining() < n)
            fail(ErrorKind::Truncated, pos_,
                 std::string("file ends inside ") + what + " (needs " + std::to_string(n) + " bytes, " +
                     std::to_string(remaining()) + " left)");
    }

    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v = load<T>(base_ + pos_);
        pos_ += sizeof(T);
        return v;
    }

    // A u64 length followed by that many bytes; the view points into the file.
    std::string_view read_string(const char* what) {
        const size_t at = pos_;
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            fail(ErrorKind::BadString, at,
                 std::string(what) + " length " + std::to_string(len) + " runs past the end of the file (" +
                     std::to_string(remaining()) + " bytes left)");
        std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
        pos_ += static_cast<size_t>(len);
        return s;
    }

    void read_header() {
        if (size_ < 4)
            fail(ErrorKind::Truncated, 0, "file is " + std::to_string(size_) + " bytes, too short for a GGUF header");
        const uint32_t magic = read<uint32_t>("magic");
        if (magic != kMagic) fail(ErrorKind::BadMagic, 0, "not a GGUF file (magic bytes are not \"GGUF\")");
        const uint32_t version = read<uint32_t>("version");
        if (version == 1) fail(ErrorKind::BadVersion, 4, "GGUF version 1 is not supported (only 2 and 3)");
        if (version != 2 && version != 3) {
            if (version == 0x02000000u || version == 0x03000000u)
                fail(ErrorKind::BadVersion, 4, "big-endian GGUF files are not supported");
            fail(ErrorKind::BadVersion, 4, "unsupported GGUF version " + std::to_string(version) + " (only 2 and 3)");
        }
        out_.version = version;
        n_tensors_ = read<uint64_t>("tensor count");
        n_kv_ = read<uint64_t>("metadata count");
        if (n_kv_ > remaining() / kMinKvBytes)
            fail(ErrorKind::BadCount, 16,
                 "metadata count " + std::to_string(n_kv_) + " is impossible for the " + std::to_string(remaining()) +
                     " bytes after the header");
        check_tensor_count();
    }

    // Each tensor info takes at least 24 bytes; checked again after the metadata with the
    // bytes that are left then, before anything is reserved.
    void check_tensor_count() const {
        if (n_tensors_ > remaining() / kMinTensorInfoBytes)
            fail(ErrorKind::BadCount, 8,
                 "tensor count " + std::to_string(n_tensors_) + " is impossible for the " +
                     std::to_string(remaining()) + " bytes left in the file");
    }

    void read_metadata() {
        out_.kv.reserve(reserve_count(n_kv_));
        std::unordered_set<std::string_view> seen;
        seen.reserve(reserve_count(n_kv_));
        for (uint64_t i = 0; i < n_kv_; ++i) {
            set_subject(SubjectKind::None, {});
            const size_t key_at = pos_;
            const std::string_view key = read_string("metadata key");
            if (key.empty()) fail(ErrorKind::BadString, key_at, "metadata key #" + std::to_string(i) + " is empty");
            set_subject(SubjectKind::Key, key);
            if (key.size() > kMaxKeyLength)
                fail(ErrorKind::BadString, key_at,
                     "metadata key is " + std::to_string(key.size()) + " bytes (at most " +
                         std::to_string(kMaxKeyLength) + ")");
            if (!seen.insert(key).second) fail(ErrorKind::DuplicateKey, key_at, "metadata key appears twice");

            const size_t type_at = pos_;
            const uint32_t type = read<uint32_t>("metadata value type");
            if (!is_known_value_type(type))
                fail(ErrorKind::BadValueType, type_at, "unknown metadata value type " + std::to_string(type));
            if (key == "general.alignment") {
                alignment_type_at_ = type_at;
                alignment_value_at_ = pos_;
            }
            Value v = read_value(static_cast<ValueType>(type), 0);
            out_.kv.emplace_back(std::string(key), std::move(v));
        }
        set_subject(SubjectKind::None, {});
    }

    Value read_value(ValueType t, int depth) {
        switch (t) {
            case ValueType::UINT8: return Value::u8(read<uint8_t>("uint8 value"));
            case ValueType::INT8: return Value::i8(read<int8_t>("int8 value"));
            case ValueType::UINT16: return Value::u16(read<uint16_t>("uint16 value"));
            case ValueType::INT16: return Value::i16(read<int16_t>("int16 value"));
            case ValueType::UINT32: return Value::u32(read<uint32_t>("uint32 value"));
            case ValueType::INT32: return Value::i32(read<int32_t>("int32 value"));
            case ValueType::UINT64: return Value::u64(read<uint64_t>("uint64 value"));
            case ValueType::INT64: return Value::i64(read<int64_t>("int64 value"));
            case ValueType::FLOAT32: return Value::f32(read<float>("float32 value"));
            case ValueType::FLOAT64: return Value::f64(read<double>("float64 value"));
            case ValueType::BOOL: return read_bool();
            case ValueType::STRING: return Value::string(std::string(read_string("string value")));
            case ValueType::ARRAY: return read_array(depth + 1);
        }
        fail(ErrorKind::BadValueType, pos_, "unknown metadata value type");  // unreachable: type checked
    }

    Value read_bool() {
        const size_t at = pos_;
        const uint8_t b = read<uint8_t>("bool value");
        if (b > 1) fail(ErrorKind::BadValueType, at, "bool byte is " + std::to_string(b) + ", not 0 or 1");
        return Value::boolean(b != 0);
    }

    // An array: u32 element type, u64 count, the items. `depth` is 1 for a top-level array.
    Value read_array(int depth) {
        const size_t type_at = pos_;
        if (depth > kMaxArrayDepth)
            fail(ErrorKind::BadArray, type_at,
                 "arrays nested more than " + std::to_string(kMaxArrayDepth) + " levels deep");
        const uint32_t elem_id = read<uint32_t>("array element type");
        if (!is_known_value_type(elem_id))
            fail(ErrorKind::BadValueType, type_at, "unknown array element type " + std::to_string(elem_id));
        const auto elem = static_cast<ValueType>(elem_id);
        const size_t count_at = pos_;
        const uint64_t count = read<uint64_t>("array length");
        const size_t min_size = min_encoded_size(elem);
        if (count > remaining() / min_size)
            fail(ErrorKind::BadArray, count_at,
                 "array of " + std::to_string(count) + " " + value_type_name(elem) + " items needs at least " +
                     std::to_string(min_size) + " bytes each; " + std::to_string(remaining()) + " bytes left");
        std::vector<Value> items;
        items.reserve(reserve_count(count));
        switch (elem) {
            case ValueType::UINT8: read_scalars<uint8_t>(items, count, Value::u8); break;
            case ValueType::INT8: read_scalars<int8_t>(items, count, Value::i8); break;
            case ValueType::UINT16: read_scalars<uint16_t>(items, count, Value::u16); break;
            case ValueType::INT16: read_scalars<int16_t>(items, count, Value::i16); break;
            case ValueType::UINT32: read_scalars<uint32_t>(items, count, Value::u32); break;
            case ValueType::INT32: read_scalars<int32_t>(items, count, Value::i32); break;
            case ValueType::UINT64: read_scalars<uint64_t>(items, count, Value::u64); break;
            case ValueType::INT64: read_scalars<int64_t>(items, count, Value::i64); break;
            case ValueType::FLOAT32: read_scalars<float>(items, count, Value::f32); break;
            case ValueType::FLOAT64: read_scalars<double>(items, count, Value::f64); break;
            default:
                for (uint64_t i = 0; i < count; ++i) items.push_back(read_value(elem, depth));
        }
        return Value::array(elem, std::move(items));
    }

    // Fixed-size items: the count was checked against the remaining bytes, so read them all.
    template <class T, class Make>
    void read_scalars(std::vector<Value>& items, uint64_t count, Make make) {
        const uint8_t* p = base_ + pos_;
        for (uint64_t i = 0; i < count; ++i) items.push_back(make(load<T>(p + i * sizeof(T))));
        pos_ += static_cast<size_t>(count) * sizeof(T);
    }

    void apply_alignment() {
        const auto it = std::find_if(out_.kv.begin(), out_.kv.end(),
                                     [](const auto& kv) { return kv.first == "general.alignment"; });
        if (it == out_.kv.end()) return;
        set_subject(SubjectKind::Key, it->first);
        const Value& v = it->second;
        if (!is_unsigned_type(v.type()))
            fail(ErrorKind::BadAlignment, alignment_type_at_,
                 std::string("alignment must be an unsigned integer, not ") + value_type_name(v.type()));
        const uint64_t a = v.as_u64();
        if (a == 0 || !std::has_single_bit(a))
            fail(ErrorKind::BadAlignment, alignment_value_at_,
                 "alignment " + std::to_string(a) + " is not a non-zero power of two");
        out_.alignment = static_cast<size_t>(a);
        set_subject(SubjectKind::None, {});
    }

    void read_tensor_infos() {
        check_tensor_count();
        out_.tensors.reserve(reserve_count(n_tensors_));
        offset_field_at_.reserve(reserve_count(n_tensors_));
        std::unordered_set<std::string_view> seen;
        seen.reserve(reserve_count(n_tensors_));
        for (uint64_t i = 0; i < n_tensors_; ++i) {
            set_subject(SubjectKind::None, {});
            TensorInfo t;
            const std::string_view name = read_tensor_name(i, seen);
            t.name.assign(name);
            read_tensor_shape(t);
            offset_field_at_.push_back(pos_);
            t.offset = read<uint64_t>("tensor offset");
            if (t.offset % out_.alignment != 0)
                fail(ErrorKind::BadOffset, offset_field_at_.back(),
                     "data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                         std::to_string(out_.alignment));
            out_.tensors.push_back(std::move(t));
        }
        set_subject(SubjectKind::None, {});
    }

    std::string_view read_tensor_name(uint64_t index, std::unordered_set<std::string_view>& seen) {
        const size_t at = pos_;
        const std::string_view name = read_string("tensor name");
        if (name.empty()) fail(ErrorKind::BadTensorName, at, "tensor #" + std::to_string(index) + " has an empty name");
        set_subject(SubjectKind::Tensor, name);
        if (name.size() > kMaxTensorNameLength)
            fail(ErrorKind::BadTensorName, at,
                 "tensor name is " + std::to_string(name.size()) + " bytes (must be under " +
                     std::to_string(kMaxTensorNameLength + 1) + ")");
        if (!seen.insert(name).second) fail(ErrorKind::BadTensorName, at, "tensor name appears twice");
        return name;
    }

    // n_dims, the dims, the type; computes nbytes.
    void read_tensor_shape(TensorInfo& t) {
        const size_t ndims_at = pos_;
        const uint32_t n_dims = read<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims))
            fail(ErrorKind::BadDims, ndims_at,
                 "tensor has " + std::to_string(n_dims) + " dimensions (must be 1 to " + std::to_string(kMaxDims) +
                     ")");
        const size_t dims_at = pos_;
        t.dims.resize(n_dims);
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const size_t at = pos_;
            const int64_t dim = read<int64_t>("tensor dimension");
            if (dim <= 0)
                fail(ErrorKind::BadDims, at,
                     "dimension " + std::to_string(d) + " is " + std::to_string(dim) + " (must be > 0)");
            if (__builtin_mul_overflow(n_elements, dim, &n_elements))
                fail(ErrorKind::BadDims, at, "element count overflows int64");
            t.dims[d] = dim;
        }
        const size_t type_at = pos_;
        const uint32_t type_id = read<uint32_t>("tensor type");
        const TypeTraits* tr = type_traits(type_id);
        if (!tr) fail(ErrorKind::BadTensorType, type_at, "unknown tensor type id " + std::to_string(type_id));
        t.type = tr->type;
        if (t.dims[0] % tr->block_size != 0)
            fail(ErrorKind::BadDims, dims_at,
                 "row of " + std::to_string(t.dims[0]) + " elements is not a multiple of " + tr->name +
                     "'s block size " + std::to_string(tr->block_size));
        const uint64_t rows = static_cast<uint64_t>(n_elements / t.dims[0]);
        const uint64_t blocks_per_row = static_cast<uint64_t>(t.dims[0] / tr->block_size);
        uint64_t row_bytes = 0, nbytes = 0;
        if (__builtin_mul_overflow(blocks_per_row, static_cast<uint64_t>(tr->type_size), &row_bytes) ||
            __builtin_mul_overflow(row_bytes, rows, &nbytes))
            fail(ErrorKind::BadDims, dims_at, "tensor byte size overflows");
        t.nbytes = static_cast<size_t>(nbytes);
    }

    void place_data_section() {
        const size_t a = out_.alignment;
        const size_t pad = (a - pos_ % a) % a;
        if (pad > remaining()) {
            // Vocab-only files may end without the final padding: there is no data to place.
            if (out_.tensors.empty()) {
                out_.data_offset = size_;
                return;
            }
            fail(ErrorKind::Truncated, pos_,
                 "file ends before the data section (aligned to " + std::to_string(a) + " bytes)");
        }
        out_.data_offset = pos_ + pad;
    }

    // Each tensor's bytes lie inside the data section and no two tensors overlap.
    void check_tensor_ranges() {
        auto& ts = out_.tensors;
        const size_t data_size = size_ - out_.data_offset;
        for (size_t i = 0; i < ts.size(); ++i) {
            TensorInfo& t = ts[i];
            uint64_t end = 0;
            if (__builtin_add_overflow(t.offset, static_cast<uint64_t>(t.nbytes), &end) || end > data_size) {
                set_subject(SubjectKind::Tensor, t.name);
                fail(ErrorKind::BadOffset, offset_field_at_[i],
                     "data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
                         ") runs past the end of the data section (" + std::to_string(data_size) + " bytes)");
            }
            t.data = base_ + out_.data_offset + t.offset;
        }
        std::vector<size_t> order(ts.size());
        std::iota(order.begin(), order.end(), size_t{0});
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return ts[a].offset != ts[b].offset ? ts[a].offset < ts[b].offset : a < b;
        });
        for (size_t k = 1; k < order.size(); ++k) {
            const TensorInfo& prev = ts[order[k - 1]];
            const TensorInfo& cur = ts[order[k]];
            if (prev.offset + prev.nbytes > cur.offset) {
                set_subject(SubjectKind::Tensor, cur.name);
                fail(ErrorKind::BadOffset, offset_field_at_[order[k]],
                     "data at offset " + std::to_string(cur.offset) + " overlaps tensor '" + prev.name + "'");
            }
        }
    }
};

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err) {
    throw GgufError(ErrorKind::Io, SubjectKind::None, "", 0, what + " '" + path + "': " + std::strerror(err));
}

}  // namespace

int64_t TensorInfo::n_elements() const {
    if (dims.empty()) return 0;
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
}

File File::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_io("cannot open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail_io("cannot stat", path, err);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail_io("cannot map", path, S_ISDIR(st.st_mode) ? EISDIR : ENODEV);
    }
    File f;
    f.path_ = path;
    f.size_ = static_cast<size_t>(st.st_size);
    if (f.size_ == 0) {
        ::close(fd);
        throw GgufError(ErrorKind::Truncated, SubjectKind::None, "", 0, "file '" + path + "' is empty");
    }
    void* m = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (m == MAP_FAILED) fail_io("cannot mmap", path, err);
    f.map_ = m;
    f.base_ = static_cast<const uint8_t*>(m);
    f.parse();  // on failure, ~File unmaps
    return f;
}

File File::from_memory(std::span<const uint8_t> bytes) {
    File f;
    f.base_ = bytes.data();
    f.size_ = bytes.size();
    f.parse();
    return f;
}

void File::parse() {
    ParseResult r = Parser(base_, size_).run();
    version_ = r.version;
    alignment_ = r.alignment;
    data_offset_ = r.data_offset;
    kv_ = std::move(r.kv);
    tensors_ = std::move(r.tensors);
}

File::File(File&& o) noexcept
    : path_(std::move(o.path_)),
      version_(o.version_),
      alignment_(o.alignment_),
      size_(o.size_),
      data_offset_(o.data_offset_),
      base_(std::exchange(o.base_, nullptr)),
      map_(std::exchange(o.map_, nullptr)),
      kv_(std::move(o.kv_)),
      tensors_(std::move(o.tensors_)) {
    o.size_ = 0;
}

File& File::operator=(File&& o) noexcept {
    if (this != &o) {
        if (map_) ::munmap(map_, size_);
        path_ = std::move(o.path_);
        version_ = o.version_;
        alignment_ = o.alignment_;
        size_ = std::exchange(o.size_, 0);
        data_offset_ = o.data_offset_;
        base_ = std::exchange(o.base_, nullptr);
        map_ = std::exchange(o.map_, nullptr);
        kv_ = std::move(o.kv_);
        tensors_ = std::move(o.tensors_);
    }
    return *this;
}

File::~File() {
    if (map_) ::munmap(map_, size_);
}

const Value* File::find(std::string_view key) const {
    for (const auto& [k, v] : kv_)
        if (k == key) return &v;
    return nullptr;
}

namespace {

// Runs an accessor, turning its std::invalid_argument into GgufError(BadValueType, key).
template <class F>
auto typed(std::string_view key, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::invalid_argument& e) {
        throw GgufError(ErrorKind::BadValueType, SubjectKind::Key, std::string(key), 0, e.what());
    }
}

}  // namespace

std::optional<uint64_t> File::get_u64(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] { return v->as_u64(); });
}

std::optional<int64_t> File::get_i64(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] { return v->as_i64(); });
}

std::optional<uint32_t> File::get_u32(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] {
        const uint64_t u = v->as_u64();
        if (u > std::numeric_limits<uint32_t>::max())
            throw std::invalid_argument("gguf value " + std::to_string(u) + " of type " + value_type_name(v->type()) +
                                        " is out of range for uint32");
        return static_cast<uint32_t>(u);
    });
}

std::optional<double> File::get_f64(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] { return v->as_f64(); });
}

std::optional<bool> File::get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] { return v->as_bool(); });
}

std::optional<std::string> File::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return std::nullopt;
    return typed(key, [&] { return v->as_string(); });
}

const Array* File::get_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return nullptr;
    return typed(key, [&] { return &v->as_array(); });
}

std::string File::architecture() const { return get_string("general.architecture").value_or(""); }

const TensorInfo* File::tensor(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

}  // namespace hearth::gguf
