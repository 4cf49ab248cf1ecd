// Building models in the store: HEAD/POST /api/blobs/:digest (uploads, streamed into a
// verified blob) and POST /api/create (Ollama's current shape and the legacy Modelfile one),
// which gathers the layers, quantizes when asked, writes the config blob and the manifest,
// and streams Ollama's progress statuses.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "gguf/gguf.h"
#include "http/server.h"
#include "model/quantize.h"
#include "tensor/threadpool.h"
#include "server/http_util.h"
#include "server/model_info.h"
#include "server/ollama/ollama.h"
#include "server/request_parse.h"
#include "server/store_resolver.h"
#include "store/modelfile.h"
#include "store/store.h"
#include "template/template.h"

namespace hearth::server::ollama {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
namespace mt = store::media_type;

// ---- Uploads

// Blobs uploaded through /api/blobs stay pinned for a while, so that removing some other
// model (which prunes unreferenced blobs) cannot take them before the /api/create that
// uses them.
class RecentUploads {
public:
    void keep(const store::Digest& d, store::Store::Pin pin) {
        std::lock_guard lk(mu_);
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(pins_, [&](const Entry& e) { return e.expires < now; });
        pins_.push_back(Entry{now + std::chrono::hours(1), d.hex, std::move(pin)});
    }
    // A model now references the blob: the manifest protects it from here on.
    void forget(const store::Digest& d) {
        std::lock_guard lk(mu_);
        std::erase_if(pins_, [&](const Entry& e) { return e.hex == d.hex; });
    }

private:
    struct Entry {
        std::chrono::steady_clock::time_point expires;
        std::string hex;
        store::Store::Pin pin;
    };
    std::mutex mu_;
    std::vector<Entry> pins_;
};

RecentUploads& recent_uploads() {
    static RecentUploads u;
    return u;
}

store::Digest digest_param(const http::Request& req) {
    const std::string text = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
    auto d = store::Digest::try_parse(text);
    if (!d) throw ApiError(400, "invalid digest format: \"" + text + "\" (expected sha256:<64 hex digits>)");
    return *d;
}

void head_blob(ApiEnv& env, const http::Request& req, http::Response& res) {
    if (req.method != "HEAD") throw ApiError(405, "method not allowed");
    store::Store& s = require_store(env);
    const store::Digest d = digest_param(req);
    if (!s.has_blob(d)) throw ApiError(404, "blob \"" + d.str() + "\" not found");
    res.status = 200;
}

// True when a write failed because the disk (or the user's quota) is full: the store's
// errors carry the errno text.
bool out_of_space(const std::exception& e) {
    const std::string_view what = e.what();
    return what.find(std::strerror(ENOSPC)) != std::string_view::npos ||
           what.find(std::strerror(EDQUOT)) != std::string_view::npos;
}

ApiError storage_error(const store::Digest& d, const std::exception& e) {
    if (out_of_space(e))
        return ApiError(507, "no space left on device: blob " + d.str() + " was not stored (nothing of it was kept)");
    return ApiError(500, e.what());
}

// Streams the body into a fresh blob: a temporary file in blobs/ hashed as it is written,
// then checked against the digest, fsynced and renamed into place (store::BlobWriter). Any
// failure (a full disk, the client gone, wrong bytes) removes the temporary file, so no
// partial blob is ever visible. No size limit but the disk's.
void post_blob(ApiEnv& env, const http::Request& req, http::Response& res, http::BodyReader& body) {
    const auto discard = [](const char*, size_t) { return true; };
    bool body_read = false;  // read to its end, or the client is gone
    auto read = [&](const std::function<bool(const char*, size_t)>& sink) {
        try {
            body.read(sink);
        } catch (const http::BodyError&) {
            body_read = true;
            throw ApiError(400, "the upload ended early");
        }
        body_read = true;
    };
    try {
        try {
            store::Store& s = require_store(env);
            const store::Digest d = digest_param(req);
            if (s.has_blob(d)) {
                read(discard);
                res.status = 200;
                return;
            }
            store::Store::Pin pin = s.pin(d);  // no prune may take the blob before keep() below
            store::BlobWriter w = [&] {
                try {
                    return s.begin_blob(d);
                } catch (const std::exception& e) {  // a full disk may refuse the file itself
                    throw storage_error(d, e);
                }
            }();
            std::optional<ApiError> failure;
            read([&](const char* data, size_t n) {
                if (failure) return true;  // the rest is read and dropped
                try {
                    w.write(data, n);
                } catch (const std::exception& e) {
                    failure = storage_error(d, e);
                    w.abort(true);  // frees the space at once
                }
                return true;
            });
            if (failure) throw *failure;
            try {
                w.commit();
            } catch (const store::StoreError& e) {
                if (e.kind() == store::StoreErrorKind::DigestMismatch)
                    throw ApiError(400, std::string("digest mismatch: ") + e.what());
                throw storage_error(d, e);
            }
            recent_uploads().keep(d, std::move(pin));
            res.status = 201;
        } catch (...) {
            // The body is always read to its end, so the client gets the answer rather than a reset.
            if (!body_read) {
                try {
                    body.read(discard);
                } catch (const http::BodyError&) {
                }
            }
            throw;
        }
    } catch (const ApiError& e) {
        send_error(req, res, e.status(), e.what());
    } catch (const std::exception& e) {
        send_error(req, res, 500, e.what());
    }
}

// ---- /api/create: the request

enum class BaseKind { Model, File, Blob };

struct CreateSpec {
    store::ModelName name;
    BaseKind base_kind = BaseKind::Model;
    std::string base_text;                  // as given (messages)
    std::shared_ptr<const StoredModel> base_model;  // BaseKind::Model
    fs::path base_file;                     // BaseKind::File
    store::Digest base_blob;                // BaseKind::Blob
    std::string source_type;                // the base GGUF's quantization ("F16")
    std::optional<std::string> template_text, system;
    std::vector<std::string> licenses;
    json parameters;  // null, or the validated object (typed values)
    std::vector<store::Message> messages;
    std::optional<QuantMix> quantize;
    bool stream = true;
};

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

void check_template(const std::string& text) {
    try {
        Template::parse(text);
    } catch (const TemplateError& e) {
        std::string where;
        if (e.line() > 0) where = " (line " + std::to_string(e.line()) + ", column " + std::to_string(e.column()) + ")";
        throw ApiError(400, std::string("template error: ") + e.what() + where);
    } catch (const std::exception& e) {
        throw ApiError(400, std::string("template error: ") + e.what());
    }
}

// JSON parameters -> the params blob's object, each value checked as a PARAMETER line is.
json validate_parameters(const json& params) {
    if (params.is_null()) return nullptr;
    if (!params.is_object()) throw ApiError(400, "parameters must be an object");
    store::Modelfile mf;
    for (const auto& [key, value] : params.items()) {
        const store::ParameterSpec* spec = store::find_parameter(key);
        if (!spec) throw ApiError(400, "unknown parameter '" + key + "'");
        std::vector<json> items;
        if (value.is_array()) {
            if (!spec->repeatable) throw ApiError(400, "invalid value for parameter " + key + ": a single value is expected");
            items = value.get<std::vector<json>>();
        } else {
            items.push_back(value);
        }
        for (const json& v : items) {
            std::string text;
            if (v.is_string()) text = v.get<std::string>();
            else if (v.is_boolean()) text = v.get<bool>() ? "true" : "false";
            else if (v.is_number_integer() || v.is_number_unsigned()) text = v.dump();
            else if (v.is_number_float() && spec->type == store::ParamType::Int && v.get<double>() == std::floor(v.get<double>()) &&
                     std::fabs(v.get<double>()) < 9e15)
                text = std::to_string(static_cast<int64_t>(v.get<double>()));
            else if (v.is_number_float()) text = v.dump();
            else throw ApiError(400, "invalid value for parameter " + key + ": " + v.dump());
            try {
                mf.parameters.push_back(store::Parameter::make(key, text));
            } catch (const std::invalid_argument& e) {
                throw ApiError(400, e.what());
            }
        }
    }
    return json::parse(mf.params_json());
}

std::vector<store::Message> validate_messages(const json& msgs) {
    std::vector<store::Message> out;
    if (msgs.is_null()) return out;
    if (!msgs.is_array()) throw ApiError(400, "messages must be an array");
    for (size_t i = 0; i < msgs.size(); ++i) {
        const json& m = msgs[i];
        const std::string where = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) throw ApiError(400, where + " must be an object");
        const std::string role = get_string(m, "role", where + ".role").value_or("");
        if (role != "system" && role != "user" && role != "assistant" && role != "tool")
            throw ApiError(400, where + ".role must be system, user, assistant or tool");
        out.push_back({role, get_string(m, "content", where + ".content").value_or("")});
    }
    return out;
}

// Opens a GGUF for the checks before anything is written. A file that does not start with
// the magic gets Ollama's words.
gguf::File open_gguf(const fs::path& p, const std::string& shown) {
    try {
        return gguf::File::open(p.string());
    } catch (const gguf::GgufError& e) {
        const bool no_magic =
            e.kind() == gguf::ErrorKind::BadMagic || (e.kind() == gguf::ErrorKind::Truncated && e.offset() == 0);
        if (no_magic) throw ApiError(400, "supplied file was not in GGUF format: " + shown);
        throw ApiError(400, "cannot read " + shown + " as GGUF: " + e.what());
    } catch (const std::exception& e) {
        throw ApiError(400, "cannot read " + shown + " as GGUF: " + e.what());
    }
}

fs::path expand_path(const std::string& text, const fs::path& relative_to) {
    fs::path p = text;
    if (text == "~" || text.starts_with("~/")) {
        const char* home = std::getenv("HOME");
        if (home && *home) p = fs::path(home) / text.substr(text.size() > 1 ? 2 : 1);
    }
    if (p.is_relative() && !relative_to.empty()) p = relative_to / p;
    return p;
}

// Resolves the base (FROM / from / files) and checks it before anything is written.
void resolve_base(store::Store& s, CreateSpec& spec, const std::string& from, const fs::path& relative_to) {
    spec.base_text = from;
    const store::FromKind kind = store::classify_from(from);
    fs::path model_file;
    if (kind == store::FromKind::Blob) {
        auto d = store::from_blob_digest(from);
        if (!d) throw ApiError(400, "invalid blob reference \"" + from + "\" (expected @sha256:<64 hex digits>)");
        if (!s.has_blob(*d)) throw ApiError(400, "blob \"" + d->str() + "\" not found: upload it with POST /api/blobs first");
        spec.base_kind = BaseKind::Blob;
        spec.base_blob = *d;
        model_file = s.blob_path(*d);
    } else if (kind == store::FromKind::Model) {
        auto n = store::ModelName::try_parse(from);
        if (!n) throw ApiError(400, "invalid model name \"" + from + "\"");
        spec.base_model = load_stored_model(s, *n);
        if (!spec.base_model) throw ApiError(404, "model \"" + from + "\" not found, try pulling it first");
        if (spec.base_model->model_path.empty()) throw ApiError(400, "model \"" + from + "\" has no model layer");
        spec.base_kind = BaseKind::Model;
        model_file = spec.base_model->model_path;
    } else {
        model_file = expand_path(from, relative_to);
        std::error_code ec;
        if (!fs::exists(model_file, ec)) throw ApiError(400, "no such file: " + model_file.string());
        if (!fs::is_regular_file(model_file, ec))
            throw ApiError(400, "supplied file was not in GGUF format: " + model_file.string() +
                                    " is not a file (only GGUF files are supported)");
        spec.base_kind = BaseKind::File;
        spec.base_file = model_file;
    }
    const gguf::File f = open_gguf(model_file, from);
    spec.source_type = quantization_name(f);
}

void check_quantize(const CreateSpec& spec) {
    if (!spec.quantize) return;
    const std::string want = upper(spec.quantize->name);
    if (spec.source_type == want) return;
    if (spec.source_type != "F32" && spec.source_type != "F16" && spec.source_type != "BF16")
        throw ApiError(400, "quantization is only supported for F32, F16 and BF16 models (this one is " +
                                (spec.source_type.empty() ? std::string("unknown") : spec.source_type) + ")");
}

std::optional<QuantMix> parse_quantize(const json& body) {
    std::string q = get_string(body, "quantize", "quantize").value_or("");
    if (q.empty()) q = get_string(body, "quantization", "quantization").value_or("");
    if (q.empty()) return std::nullopt;
    auto mix = find_quant_mix(q);
    if (!mix) {
        std::string names;
        for (const QuantMix& m : quant_mixes()) names += (names.empty() ? "" : ", ") + std::string(m.name);
        throw ApiError(400, "unsupported quantization type \"" + q + "\" (supported: " + names + ")");
    }
    return mix;
}

// A relative path without `..`, empty or `.` parts (Go's fs.ValidPath).
bool valid_relative_path(const std::string& p) {
    if (p.empty() || p.front() == '/' || p.back() == '/') return false;
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find('/', start);
        if (end == std::string::npos) end = p.size();
        const std::string part = p.substr(start, end - start);
        if (part.empty() || part == "." || part == "..") return false;
        start = end + 1;
    }
    return p.find('\\') == std::string::npos;
}

CreateSpec parse_create(ApiEnv& env, const json& body) {
    store::Store& s = require_store(env);
    CreateSpec spec;
    const std::string name = get_model_name(body);
    if (name.empty()) throw ApiError(400, "model is required");
    std::string why;
    auto parsed = store::ModelName::try_parse(name, &why);
    if (!parsed) throw ApiError(400, "invalid model name \"" + name + "\": " + why);
    spec.name = s.resolve(*parsed);
    spec.stream = get_bool(body, "stream", "stream").value_or(true);
    spec.quantize = parse_quantize(body);

    std::string modelfile = get_string(body, "modelfile", "modelfile").value_or("");
    const std::string path = get_string(body, "path", "path").value_or("");
    const bool has_from = !get_string(body, "from", "from").value_or("").empty();
    const bool has_files = body.contains("files") && !body["files"].is_null();
    if (modelfile.empty() && !path.empty() && !has_from && !has_files) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw ApiError(400, "cannot read the Modelfile " + path);
        modelfile.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }

    if (!modelfile.empty()) {  // the legacy shape: {name|model, modelfile, path?}
        store::Modelfile mf;
        try {
            mf = store::Modelfile::parse(modelfile);
        } catch (const store::ModelfileError& e) {
            throw ApiError(400, std::string("invalid Modelfile: ") + e.what());
        }
        if (mf.from.size() > 1)
            throw ApiError(400, "only one FROM is supported (Hearth has no multimodal projectors)");
        if (!mf.adapters.empty()) throw ApiError(400, "adapters are not supported: Hearth's engine does not apply LoRA adapters");
        if (mf.template_text) check_template(*mf.template_text);
        spec.template_text = mf.template_text;
        spec.system = mf.system;
        spec.licenses = mf.licenses;
        spec.messages = mf.messages;
        if (!mf.parameters.empty()) {
            store::Modelfile params;
            params.parameters = mf.parameters;
            spec.parameters = json::parse(params.params_json());
        }
        const fs::path relative_to = path.empty() ? fs::path() : fs::path(path).parent_path();
        resolve_base(s, spec, mf.base(), relative_to);
        check_quantize(spec);
        return spec;
    }

    // Ollama's current shape.
    if (auto it = body.find("adapters"); it != body.end() && !it->is_null() && !it->empty())
        throw ApiError(400, "adapters are not supported: Hearth's engine does not apply LoRA adapters");
    spec.template_text = get_string(body, "template", "template");
    if (spec.template_text && spec.template_text->empty()) spec.template_text.reset();
    if (spec.template_text) check_template(*spec.template_text);
    spec.system = get_string(body, "system", "system");
    if (spec.system && spec.system->empty()) spec.system.reset();
    if (auto it = body.find("license"); it != body.end() && !it->is_null()) {
        if (it->is_string()) {
            if (!it->get<std::string>().empty()) spec.licenses.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const json& l : *it) {
                if (!l.is_string()) throw ApiError(400, "license must be a string or an array of strings");
                spec.licenses.push_back(l.get<std::string>());
            }
        } else {
            throw ApiError(400, "license must be a string or an array of strings");
        }
    }
    spec.parameters = validate_parameters(body.value("parameters", json()));
    spec.messages = validate_messages(body.value("messages", json()));

    if (has_from) {
        resolve_base(s, spec, get_string(body, "from", "from").value_or(""), {});
    } else if (has_files) {
        const json& files = body["files"];
        if (!files.is_object()) throw ApiError(400, "files must be an object of file name -> digest");
        if (files.empty()) throw ApiError(400, "no files provided to convert");
        if (files.size() > 1) throw ApiError(400, "only one GGUF file is supported per model");
        const auto first = files.items().begin();  // a copy: the proxy must outlive key() and value()
        const std::string file = first.key();
        const json& digest = first.value();
        if (!valid_relative_path(file)) throw ApiError(400, "file path must be relative");
        if (!digest.is_string() || !store::Digest::valid(digest.get<std::string>()))
            throw ApiError(400, "invalid digest for " + file + " (expected sha256:<64 hex digits>)");
        resolve_base(s, spec, "@" + digest.get<std::string>(), {});
    } else {
        throw ApiError(400, "neither 'from' or 'files' was specified");
    }
    check_quantize(spec);
    return spec;
}

// ---- /api/create: the work

struct Cancelled {};

using Emit = std::function<void(const json&)>;

void status(const Emit& emit, const std::string& text) { emit(json{{"status", text}}); }

// Copies a local file into the store with "copying file" progress; returns its digest.
store::Digest copy_file(store::Store& s, const fs::path& file, const Emit& emit) {
    if (auto named = store::Digest::from_blob_name(file.filename().string())) {
        std::error_code ec;
        if (fs::equivalent(file.parent_path(), s.blobs_dir(), ec)) {  // already one of ours
            const store::ImportResult r = s.import_file(file);
            status(emit, "copying file " + r.digest.str() + " 100%");
            return r.digest;
        }
    }
    if (!std::ifstream(file, std::ios::binary)) throw ApiError(400, "cannot read " + file.string());
    auto progress = [&](const store::Digest& d, uint64_t done, uint64_t total) {
        const int pct = total ? static_cast<int>(done * 100 / total) : 100;
        emit(json{{"status", "copying file " + d.str() + " " + std::to_string(pct) + "%"},
                  {"digest", d.str()},
                  {"total", total},
                  {"completed", done}});
    };
    int last_pct = -1;  // a line per percent while copying, then the final 100%
    const store::ImportResult r = s.import_file(file, std::nullopt, [&](const store::Digest& d, uint64_t done, uint64_t total) {
        const int pct = total ? static_cast<int>(done * 100 / total) : 100;
        if (pct != last_pct && pct < 100) {
            progress(d, done, total);
            last_pct = pct;
        }
    });
    progress(r.digest, r.size, r.size);
    return r.digest;
}

// Removes a file when it goes out of scope.
struct TempFile {
    fs::path path;
    ~TempFile() {
        std::error_code ec;
        if (!path.empty()) fs::remove(path, ec);
    }
};

// Quantizes the model blob `src` and returns the new blob's digest.
store::Digest quantize_blob(ApiEnv& env, store::Store& s, const store::Digest& src, const CreateSpec& spec,
                            const Emit& emit) {
    const std::string text = "quantizing " + spec.source_type + " model to " + upper(spec.quantize->name);
    status(emit, text);
    fs::create_directories(s.blobs_dir());
    // Named like the store's temporary files, so a prune after a crash removes it.
    TempFile tmp{s.blobs_dir() / (src.blob_name() + "-partial-quantize-" +
                                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))};
    QuantizeOptions q;
    q.input = s.blob_path(src).string();
    q.output = tmp.path.string();
    q.mix = *spec.quantize;
    q.threads = env.config.manager.n_threads > 0 ? env.config.manager.n_threads : physical_core_count();
    const uint64_t total = s.blob_size(src).value_or(0);
    int last_pct = -1;
    q.progress = [&](size_t i, size_t n, const std::string&, GgmlType) {
        const int pct = n ? static_cast<int>(i * 100 / n) : 0;
        if (pct == last_pct) return;
        last_pct = pct;
        emit(json{{"status", text}, {"digest", "0000000000000000000"}, {"total", total}, {"completed", total * i / (n ? n : 1)}});
    };
    quantize_model(q);
    emit(json{{"status", text}, {"digest", "0000000000000000000"}, {"total", total}, {"completed", total}});
    return s.import_file(tmp.path).digest;
}

void run_create(ApiEnv& env, const CreateSpec& spec, const Emit& emit) {
    store::Store& s = require_store(env);
    std::vector<store::Store::Pin> pins;  // every blob of the new model, until its manifest exists
    std::vector<store::Layer> layers;
    std::map<std::string, std::string> statuses;  // digest hex -> "using existing" / "creating new"
    status(emit, "gathering model components");

    std::optional<store::Digest> model_digest;
    if (spec.base_kind == BaseKind::Model) {
        const StoredModel& base = *spec.base_model;
        for (const store::Layer& l : base.manifest.layers) {
            pins.push_back(s.pin(l.digest));
            if (!s.has_blob(l.digest)) throw ApiError(500, "the blob " + l.digest.str() + " of " + spec.base_text + " is missing");
            store::Layer copy = l;
            copy.from = base.name.display();
            layers.push_back(copy);
            if (l.media_type == mt::kModel && !model_digest) model_digest = l.digest;
        }
    } else {
        const store::Digest d = spec.base_kind == BaseKind::Blob ? spec.base_blob : copy_file(s, spec.base_file, emit);
        pins.push_back(s.pin(d));
        status(emit, "parsing GGUF");
        layers.push_back(store::Layer{std::string(mt::kModel), d, s.blob_size(d).value_or(0), ""});
        model_digest = d;
    }

    // Quantize the model layer when asked and the type differs.
    if (spec.quantize && upper(spec.quantize->name) != spec.source_type) {
        const store::Digest q = quantize_blob(env, s, *model_digest, spec, emit);
        pins.push_back(s.pin(q));
        for (store::Layer& l : layers)
            if (l.media_type == mt::kModel && l.digest == *model_digest) l = store::Layer{std::string(mt::kModel), q, s.blob_size(q).value_or(0), ""};
        statuses[q.hex] = "creating new layer ";
        model_digest = q;
    }

    // The config blob's model fields, from the GGUF.
    store::ModelConfig config;
    {
        const gguf::File f = gguf::File::open(s.blob_path(*model_digest).string());
        const ModelDetails d = model_details(f);
        config.model_format = "gguf";
        config.model_family = d.family;
        config.model_families = d.families;
        config.model_type = d.parameter_size;
        config.file_type = d.quantization_level;
    }

    auto put = [&](std::string_view media_type, const std::string& bytes, bool replace) {
        if (replace) std::erase_if(layers, [&](const store::Layer& l) { return l.media_type == media_type; });
        const store::Digest d = store::Digest::of(bytes);
        const bool existed = s.has_blob(d);
        pins.push_back(s.pin(d));
        s.put_blob(bytes);
        if (!existed) statuses[d.hex] = "creating new layer ";
        for (const store::Layer& l : layers)
            if (l.media_type == media_type && l.digest == d) return;  // the same layer is there already
        layers.push_back(store::Layer{std::string(media_type), d, bytes.size(), ""});
    };
    if (spec.template_text) put(mt::kTemplate, *spec.template_text, true);
    if (spec.system) put(mt::kSystem, *spec.system, true);
    for (const std::string& l : spec.licenses) put(mt::kLicense, l, false);

    // Parameters: the base model's, overridden key by key by the new ones.
    json params = json::object();
    for (const store::Layer& l : layers)
        if (l.media_type == mt::kParams) {
            json old = json::parse(s.read_blob_text(l.digest, 16u << 20), nullptr, false);
            if (old.is_object()) params.update(old);
        }
    if (spec.parameters.is_object()) params.update(spec.parameters);
    if (!params.empty()) put(mt::kParams, params.dump(), true);
    if (!spec.messages.empty()) {
        store::Modelfile mf;
        mf.messages = spec.messages;
        put(mt::kMessages, mf.messages_json(), true);
    }

    config.set_layers(layers);
    const std::string config_bytes = config.to_json();
    const store::Digest config_digest = store::Digest::of(config_bytes);
    pins.push_back(s.pin(config_digest));
    s.put_blob(config_bytes);

    for (const store::Layer& l : layers) {
        auto it = statuses.find(l.digest.hex);
        status(emit, (it == statuses.end() ? std::string("using existing layer ") : it->second) + l.digest.str());
    }
    status(emit, "writing manifest");
    store::Manifest m;
    m.config = store::Layer{std::string(mt::kConfig), config_digest, config_bytes.size(), ""};
    m.layers = layers;
    const bool replacing = s.has_model(spec.name);
    s.write_manifest(spec.name, m);
    pins.clear();
    for (const store::Layer& l : layers) recent_uploads().forget(l.digest);
    if (replacing) {
        unload_model(env, spec.name.display());  // a loaded older version must not keep serving
        // As Ollama: the replaced model's layers go unless another model uses them (blobs
        // still pinned, e.g. fresh uploads or a running pull, are kept).
        store::PruneOptions opts;
        opts.partial_max_age = std::chrono::seconds::max();
        opts.temp_max_age = std::chrono::seconds::max();
        opts.empty_manifest_dirs = false;
        // prune_at_start honours HEARTH_NOPRUNE, as this prune must.
        for (const std::string& e : s.prune_at_start(opts).errors) std::fprintf(stderr, "hearth: create: %s\n", e.c_str());
    }
    status(emit, "success");
}

void create(ApiEnv& env, const http::Request& req, http::Response& res) {
    const json body = parse_json_object(req.body, env.config.max_json_depth);
    const CreateSpec spec = parse_create(env, body);  // every 4xx happens here
    if (!spec.stream) {
        json last;
        run_create(env, spec, [&](const json& j) { last = j; });
        send_json(res, json{{"status", last.value("status", "success")}});
        return;
    }
    // The work runs on this handler thread, its statuses streamed as they come; a client that
    // goes away stops it at the next status.
    std::shared_ptr<http::Stream> out = res.defer();
    http::Response head;
    head.status = 200;
    head.set_header("Content-Type", "application/x-ndjson");
    out->begin(std::move(head));
    auto write = [&](const json& j) { return out->write(j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"); };
    try {
        run_create(env, spec, [&](const json& j) {
            if (!write(j)) throw Cancelled{};
        });
    } catch (const Cancelled&) {
    } catch (const std::exception& ex) {
        write(json{{"error", ex.what()}});
    }
    out->end();
}

}  // namespace

void add_create_routes(http::Server& http, ApiEnv& env) {
    http.Get(R"(/api/blobs/([^/]+))", guarded(env, head_blob));
    http.Post(R"(/api/blobs/([^/]+))", [&env](const http::Request& req, http::Response& res, http::BodyReader& body) {
        post_blob(env, req, res, body);
    });
    http.Post("/api/create", guarded(env, create));
}

}  // namespace hearth::server::ollama
