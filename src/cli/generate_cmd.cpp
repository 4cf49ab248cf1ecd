// `hearth generate`: text from a GGUF file without the daemon; `hearth dev logits`: one
// forward pass printing the top log-probabilities per position.
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/engine_common.h"
#include "cluster/pipeline_stage.h"
#include "model/encoder.h"
#include "model/model.h"
#include "runtime/embedding.h"
#include "runtime/generate.h"
#include "tensor/threadpool.h"

namespace hearth::cli {

namespace {

struct GenerateArgs {
    EngineArgs engine;
    std::string prompt, prompt_ids;
    int n_predict = 128;
    bool ids = false, no_bos = false;
    SamplingParams sp;
    std::vector<std::string> stop;
    bool pipeline = false;  // one stage of a model split across `mpirun` ranks (cluster/pipeline_*)
    std::string split = "auto";
};

void run_generate(const GenerateArgs& args, const Model& model, Context& ctx);
void generate_pipeline(const GenerateArgs& a);

}  // namespace

void add_generate_command(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    // llama.cpp's sampling defaults, so `--temp 0` is plain greedy like llama-cli's.
    a->sp.temperature = 0.8f;
    a->sp.top_k = 40;
    a->sp.top_p = 0.95f;
    a->sp.min_p = 0.05f;
    a->sp.repeat_penalty = 1.0f;
    CLI::App* cmd = app.add_subcommand("generate", "Generate text from a GGUF model (no daemon)");
    a->engine.add_to(*cmd);
    auto* p = cmd->add_option("-p,--prompt", a->prompt, "Prompt text");
    auto* pi = cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as token ids, e.g. \"1 403 407\"");
    p->excludes(pi);
    cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate (-1: until end of text)")->capture_default_str();
    cmd->add_option("--temp", a->sp.temperature, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--seed", a->sp.seed, "Random seed (default: random)");
    cmd->add_option("--top-k", a->sp.top_k, "Top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", a->sp.top_p, "Top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", a->sp.min_p, "Min-p (0: off)")->capture_default_str();
    cmd->add_option("--typical", a->sp.typical_p, "Typical-p (1: off)")->capture_default_str();
    cmd->add_option("--repeat-penalty", a->sp.repeat_penalty, "Repetition penalty (1: off)")->capture_default_str();
    cmd->add_option("--repeat-last-n", a->sp.repeat_last_n, "Tokens the penalties look back")->capture_default_str();
    cmd->add_option("--presence-penalty", a->sp.presence_penalty, "Presence penalty")->capture_default_str();
    cmd->add_option("--frequency-penalty", a->sp.frequency_penalty, "Frequency penalty")->capture_default_str();
    cmd->add_option("--stop", a->stop, "Stop string (repeatable)");
    cmd->add_flag("--ids", a->ids, "Print the generated token ids instead of text");
    cmd->add_flag("--no-bos", a->no_bos, "Do not add BOS to a text prompt");
    cmd->add_flag("--pipeline", a->pipeline,
                  "Under mpirun: split the model's layers between the ranks (rank 0 prints; needs an MPI build)");
    cmd->add_option("--split", a->split, "With --pipeline: 'auto' (by weight bytes) or layers per rank, e.g. 11,11")
        ->capture_default_str();
    cmd->callback([a] {
        const std::string err = a->sp.validate();
        if (!err.empty()) throw CLI::ValidationError("sampling", err);
        if (a->pipeline) return generate_pipeline(*a);
        auto model = Model::load(a->engine.model);
        Context ctx(*model, a->engine.context_params());
        run_generate(*a, *model, ctx);
    });
}

namespace {

void run_generate(const GenerateArgs& args, const Model& model_ref, Context& ctx) {
    const GenerateArgs* a = &args;
    const Model* model = &model_ref;
    std::vector<int32_t> prompt = a->prompt_ids.empty()
                                      ? model->tokenizer().encode(a->prompt, !a->no_bos, /*parse_special=*/true)
                                      : parse_ids(a->prompt_ids);
    if (prompt.empty()) {
        if (model->tokenizer().bos() < 0) throw CLI::ValidationError("--prompt", "the prompt is empty and the model has no BOS token");
        prompt.push_back(model->tokenizer().bos());
    }
    GenerateOptions opts;
    opts.n_predict = a->n_predict;
    opts.sampling = a->sp;
    opts.stop = a->stop;
    const bool ids = a->ids;
    GenerateResult r = generate(ctx, prompt, opts, [ids](int32_t, const std::string& text) {
        if (!ids) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        }
        return true;
    });
    if (ids) std::printf("%s\n", join_ids(r.tokens).c_str());
    else std::printf("\n");
    std::fflush(stdout);
    const double pp = r.prompt_seconds > 0 ? r.n_prompt / r.prompt_seconds : 0;
    const double tg = r.gen_seconds > 0 && r.tokens.size() > 1 ? double(r.tokens.size() - 1) / r.gen_seconds : 0;
    std::fprintf(stderr, "prompt: %d tokens in %.1f ms (%.2f tok/s)\n", r.n_prompt, r.prompt_seconds * 1e3, pp);
    std::fprintf(stderr, "generation: %zu tokens in %.1f ms (%.2f tok/s), stop: %s, threads %d\n", r.tokens.size(),
                 r.gen_seconds * 1e3, tg, r.stop_reason.c_str(), ctx.n_threads());
}

// `mpirun -np N hearth generate --pipeline ...`: every rank loads its layers; rank 0 runs the
// generation loop and prints, the others serve their stage until rank 0 is done. An error on
// any rank ends the whole group (MPI_Abort), since the others would wait forever.
void generate_pipeline(const GenerateArgs& a) {
    std::unique_ptr<pipeline::Comm> comm = pipeline::make_mpi_comm();
    const bool group = comm->size() > 1;
    try {
        pipeline::Member m = pipeline::join(*comm, a.engine.model, a.split);
        Context ctx(*m.model, m.rank() > 0 ? pipeline::later_stage_params(a.engine.context_params()) : a.engine.context_params());
        if (m.rank() > 0) {
            pipeline::run_stage(ctx, *m.comm);
            return;
        }
        if (group) std::fprintf(stderr, "pipeline: %d stages, layers %s\n", m.size(), pipeline::describe(m.ranges).c_str());
        pipeline::CommDownstream down(*m.comm, *m.model);
        if (group) ctx.set_downstream(&down);
        run_generate(a, *m.model, ctx);
        down.finish();
    } catch (const std::exception& e) {
        if (!group) throw;
        std::fprintf(stderr, "hearth: error: %s\n", e.what());
        std::fflush(stderr);
        comm->abort(1);
    }
}

}  // namespace

void add_logits_command(CLI::App& dev) {
    auto engine = std::make_shared<EngineArgs>();
    auto ids = std::make_shared<std::string>();
    auto top = std::make_shared<int>(5);
    CLI::App* cmd = dev.add_subcommand("logits", "One forward pass over token ids; top log-probs per position as JSON lines");
    engine->add_to(*cmd);
    cmd->add_option("--prompt-ids", *ids, "Token ids")->required();
    cmd->add_option("--top", *top, "Entries per position")->capture_default_str();
    cmd->callback([engine, ids, top] {
        auto model = Model::load(engine->model);
        Context ctx(*model, engine->context_params());
        const std::vector<int32_t> prompt = parse_ids(*ids);
        if (prompt.empty()) throw CLI::ValidationError("--prompt-ids", "no ids given");
        Batch b;
        for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, true);
        ctx.decode(b);
        const int32_t nv = ctx.n_vocab();
        std::vector<std::pair<float, int32_t>> c(static_cast<size_t>(nv));
        for (size_t i = 0; i < prompt.size(); ++i) {
            const float* l = ctx.logits(static_cast<int32_t>(i));
            float mx = -INFINITY;
            for (int32_t t = 0; t < nv; ++t) mx = std::max(mx, l[t]);
            double sum = 0;
            for (int32_t t = 0; t < nv; ++t) sum += std::exp(double(l[t]) - mx);
            const double lse = mx + std::log(sum);
            for (int32_t t = 0; t < nv; ++t) c[static_cast<size_t>(t)] = {l[t], t};
            const int k = std::min(*top, nv);
            std::partial_sort(c.begin(), c.begin() + k, c.end(), [](auto& x, auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
            std::printf("{\"pos\": %zu, \"top\": [", i);
            for (int j = 0; j < k; ++j)
                std::printf("%s[%d, %.6f]", j ? ", " : "", c[static_cast<size_t>(j)].second, double(c[static_cast<size_t>(j)].first) - lse);
            std::printf("]}\n");
        }
    });
}

}  // namespace hearth::cli

namespace hearth::cli {

void add_embed_command(CLI::App& dev) {
    auto engine = std::make_shared<EngineArgs>();
    auto text = std::make_shared<std::string>();
    auto raw = std::make_shared<bool>(false);
    CLI::App* cmd = dev.add_subcommand("embed", "Print the pooled embedding of a text as a JSON array (encoder or decoder models)");
    engine->add_to(*cmd);
    cmd->add_option("text", *text, "Text to embed")->required();
    cmd->add_flag("--raw", *raw, "Do not L2-normalize");
    cmd->callback([engine, text, raw] {
        auto model = Model::load(engine->model);
        const auto ids = model->tokenizer().encode(*text, true, false);
        std::vector<float> v;
        if (model->is_encoder()) {
            ThreadPool pool(resolve_threads(engine->threads));
            v = encode_embedding(*model, ids, pool, !*raw);
        } else {
            Context ctx(*model, engine->context_params());
            v = embed_sequence(ctx, 0, ids, model->pooling(), !*raw);
        }
        std::printf("[");
        for (size_t i = 0; i < v.size(); ++i) std::printf("%s%.7g", i ? ", " : "", double(v[i]));
        std::printf("]\n");
    });
}

}  // namespace hearth::cli
