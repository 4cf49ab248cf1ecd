// libFuzzer target for the GGUF reader: parse arbitrary bytes, then read every value and
// every tensor byte range. A file the reader accepts must also survive a writer round trip
// unchanged. Anything but a GgufError escaping from the reader is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gguf/gguf.h"

using namespace hearth;
using namespace hearth::gguf;

namespace {

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "fuzz_gguf: %s\n", what);
    std::abort();
}

// Calls every accessor; a mismatch may only throw std::invalid_argument.
size_t walk(const Value& v) {
    size_t sum = static_cast<size_t>(v.type()) + v.is_integer() + v.is_float();
    const auto quiet = [&](auto&& f) {
        try {
            f();
        } catch (const std::invalid_argument&) {
            ++sum;
        }
    };
    quiet([&] { sum += static_cast<size_t>(v.as_u64()); });
    quiet([&] { sum += static_cast<size_t>(v.as_i64()); });
    quiet([&] { sum += v.as_f64() > 0; });
    quiet([&] { sum += v.as_bool(); });
    quiet([&] { sum += v.as_string().size(); });
    if (v.type() == ValueType::ARRAY) {
        const Array& a = v.as_array();
        for (const Value& item : a.items) {
            if (item.type() != a.elem_type) finding("array item of the wrong type");
            sum += walk(item);
        }
    }
    return sum;
}

size_t touch(const File& f) {
    size_t sum = f.version() + f.alignment() + f.data_offset();
    if (f.data_offset() > f.file_size()) finding("data section starts past the end");
    for (const auto& kv : f.metadata()) {
        const std::string& key = kv.first;
        const Value& v = kv.second;
        sum += walk(v) + v.to_string().size() + v.to_string(2).size();
        if (f.find(key) != &v) finding("find() does not return the first entry");
        const auto quiet = [&](auto&& get) {
            try {
                (void)get();
            } catch (const GgufError& e) {
                if (e.kind() != ErrorKind::BadValueType || e.subject() != key) finding("getter threw a wrong error");
            }
        };
        quiet([&] { return f.get_u64(key); });
        quiet([&] { return f.get_i64(key); });
        quiet([&] { return f.get_u32(key); });
        quiet([&] { return f.get_f64(key); });
        quiet([&] { return f.get_bool(key); });
        quiet([&] { return f.get_string(key); });
        quiet([&] { return f.get_array(key); });
    }
    try {
        sum += f.architecture().size();
    } catch (const GgufError&) {
    }
    for (const TensorInfo& t : f.tensors()) {
        if (t.nbytes == 0 || t.data < f.bytes() + f.data_offset() || t.data + t.nbytes > f.bytes() + f.file_size())
            finding("tensor data outside the file");
        sum += t.data[0] + t.data[t.nbytes - 1] + t.row_bytes() + static_cast<size_t>(t.n_rows());
        if (f.tensor(t.name) != &t) finding("tensor() does not find a tensor");
    }
    return sum;
}

// Rewrites the file with the Writer and checks the reader gets the same contents back.
void round_trip(const File& f) {
    Writer w;
    for (const auto& [key, v] : f.metadata()) w.set(key, v);
    for (const TensorInfo& t : f.tensors()) w.add_tensor(t.name, t.type, t.dims, t.data);
    const std::vector<uint8_t> bytes = w.to_bytes();
    File g = File::from_memory(bytes);
    if (g.metadata().size() != f.metadata().size() || g.tensors().size() != f.tensors().size() ||
        g.alignment() != f.alignment())
        finding("round trip changed the counts or alignment");
    for (size_t i = 0; i < f.metadata().size(); ++i) {
        const auto& [k1, v1] = f.metadata()[i];
        const auto& [k2, v2] = g.metadata()[i];
        if (k1 != k2 || v1.type() != v2.type() || v1.to_string(SIZE_MAX) != v2.to_string(SIZE_MAX))
            finding("round trip changed a metadata entry");
    }
    for (size_t i = 0; i < f.tensors().size(); ++i) {
        const TensorInfo& a = f.tensors()[i];
        const TensorInfo& b = g.tensors()[i];
        if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.nbytes != b.nbytes ||
            std::memcmp(a.data, b.data, a.nbytes) != 0)
            finding("round trip changed a tensor");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        File f = File::from_memory({data, size});
        touch(f);
        if (f.alignment() <= 4096) round_trip(f);  // huge alignments would pad to gigabytes
    } catch (const GgufError&) {
    }
    return 0;
}
