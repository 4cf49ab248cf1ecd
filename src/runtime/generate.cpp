#include "runtime/generate.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "model/model.h"
#include "runtime/context.h"

namespace hearth {

GenerateResult generate(Context& ctx, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                        const TokenCallback& on_token) {
    using clock = std::chrono::steady_clock;
    const Tokenizer& tok = ctx.model().tokenizer();
    const int32_t n_prompt = static_cast<int32_t>(prompt.size());
    if (n_prompt == 0) throw std::invalid_argument("the prompt is empty");
    if (n_prompt > ctx.n_ctx())
        throw std::invalid_argument("the prompt has " + std::to_string(n_prompt) + " tokens, which does not fit the context of " +
                                    std::to_string(ctx.n_ctx()) + " tokens");

    GenerateResult res;
    res.n_prompt = n_prompt;
    ctx.clear(opts.seq);
    Sampler sampler(opts.sampling);
    for (int32_t id : prompt) sampler.accept(id);

    auto t0 = clock::now();
    Batch batch;
    for (int32_t i = 0; i < n_prompt; ++i) batch.add(prompt[static_cast<size_t>(i)], i, opts.seq, i == n_prompt - 1);
    ctx.decode(batch);
    res.prompt_seconds = std::chrono::duration<double>(clock::now() - t0).count();

    StreamDecoder detok(tok, opts.render_special);
    StopMatcher stops(opts.stop);
    std::vector<float> logits(static_cast<size_t>(ctx.n_vocab()));
    auto t1 = clock::now();
    int32_t pos = n_prompt;
    res.stop_reason = "length";
    // Passes newly decoded text through the stop matcher to the caller; false ends generation.
    auto emit = [&](int32_t id, const std::string& piece) {
        const std::string out = stops.push(piece);
        res.text += out;
        const bool keep = !on_token || on_token(id, out);
        if (stops.stopped()) res.stop_reason = "stop";
        else if (!keep) res.stop_reason = "cancelled";
        return keep && !stops.stopped();
    };
    for (int32_t n = 0; opts.n_predict != 0; ++n) {
        std::copy(ctx.logits(0), ctx.logits(0) + ctx.n_vocab(), logits.begin());
        SampleResult s = sampler.sample(logits.data(), ctx.n_vocab());
        if (tok.is_eog(s.id)) {
            res.stop_reason = "stop";
            break;
        }
        sampler.accept(s.id);
        res.tokens.push_back(s.id);
        res.samples.push_back(std::move(s));
        const int32_t id = res.tokens.back();
        if (!emit(id, detok.push(id))) break;
        if (opts.n_predict > 0 && n + 1 >= opts.n_predict) break;  // no forward pass for a token we won't sample
        if (pos >= ctx.n_ctx()) break;                               // context full: "length"
        batch.clear();
        batch.add(id, pos++, opts.seq, true);
        ctx.decode(batch);
    }
    // Text still held back: an incomplete UTF-8 tail and a possible stop-string prefix.
    if (!stops.stopped() && res.stop_reason != "cancelled") {
        std::string rest = stops.push(detok.flush());
        if (stops.stopped()) res.stop_reason = "stop";
        else rest += stops.flush();
        res.text += rest;
        if (on_token && !rest.empty()) on_token(-1, rest);
    }
    res.gen_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return res;
}

}  // namespace hearth
