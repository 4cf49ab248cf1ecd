// The runner's generation of one request: prompt ids, one prompt pass, then sample /
// stream / stop token by token, checking the request's cancel flag before every token.
// (One sequence at a time; the serving engine's scheduler will take this over.)
#include <cmath>
#include <optional>
#include <thread>

#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/context.h"
#include "server/prompt.h"
#include "server/runner.h"

namespace hearth::server {

namespace {

TokenProb token_prob(const Tokenizer& tok, const SampleResult& s) {
    TokenProb p;
    p.token = tok.token_to_piece(s.id, true);
    p.logprob = s.logprob;
    for (const TokenLogprob& t : s.top) p.top.emplace_back(tok.token_to_piece(t.id, true), t.logprob);
    return p;
}

}  // namespace

void Runner::run_generate(Request& job, Nanos load_time) {
    RequestState& st = *job.state;
    if (engine_model_->is_encoder()) {
        st.events.push(Event::error(400, "\"" + model_.name + "\" does not support generate"));
        mgr_.count_done("error");
        return;
    }
    ensure_context(job.gen);
    Context& ctx = *ctx_;
    const Tokenizer& tok = engine_model_->tokenizer();

    std::vector<int32_t> prompt;
    try {
        prompt = build_prompt(*engine_model_, template_, job.gen.prompt);
    } catch (const PromptError& e) {
        st.events.push(Event::error(400, e.what()));
        mgr_.count_done("error");
        return;
    }
    const int32_t n_prompt = static_cast<int32_t>(prompt.size());
    if (n_prompt == 0) {  // e.g. a template that renders nothing: nothing to continue from
        st.events.push(Event::error(400, "the prompt is empty after applying the template"));
        mgr_.count_done("error");
        return;
    }
    if (n_prompt > ctx.n_ctx()) {
        st.events.push(Event::error(400, "the prompt has " + std::to_string(n_prompt) +
                                             " tokens, more than the context length of " + std::to_string(ctx.n_ctx()) +
                                             " tokens (num_ctx)"));
        mgr_.count_done("error");
        return;
    }
    Event started;
    started.kind = Event::Kind::Started;
    started.tool_format = job.gen.prompt.template_override ? detect_tool_call_format(*job.gen.prompt.template_override)
                                                           : tool_format_;
    st.events.push(std::move(started));

    const GenerateJob& g = job.gen;
    const bool want_probs = g.options.sampling.logprobs || g.options.sampling.n_probs > 0;
    Sampler sampler(g.options.sampling);
    for (int32_t id : prompt) sampler.accept(id);
    // Structured output: sample freely first and only when the grammar rejects the token
    // mask the logits and sample again (most steps need no full mask).
    std::optional<GrammarConstraint> grammar;
    if (g.grammar) grammar.emplace(g.grammar, tok);

    Stats stats;
    stats.load = load_time;
    stats.prompt_eval_count = n_prompt;
    ctx.clear(0);
    const auto t0 = Clock::now();
    Batch batch;
    for (int32_t i = 0; i < n_prompt; ++i) batch.add(prompt[static_cast<size_t>(i)], i, 0, i == n_prompt - 1);
    ctx.decode(batch);
    const auto t1 = Clock::now();
    stats.prompt_eval = t1 - t0;

    StreamDecoder detok(tok);
    StopMatcher stops(g.options.stop);
    std::vector<float> logits(static_cast<size_t>(ctx.n_vocab()));
    std::vector<int32_t> generated;
    std::string reason = "length";
    int32_t pos = n_prompt;
    const auto delay = mgr_.options().debug_token_delay;
    auto emit = [&](std::string text, std::optional<TokenProb> prob) {
        Event e;
        e.kind = Event::Kind::Token;
        e.text = std::move(text);
        e.prob = std::move(prob);
        st.events.push(std::move(e));
    };
    for (int32_t n = 0; g.options.n_predict != 0; ++n) {
        if (st.cancelled) {
            reason = "cancelled";
            break;
        }
        std::copy(ctx.logits(0), ctx.logits(0) + ctx.n_vocab(), logits.begin());
        SampleResult s = sampler.sample(logits.data(), ctx.n_vocab());
        if (grammar && !grammar->allows(s.id)) {
            std::copy(ctx.logits(0), ctx.logits(0) + ctx.n_vocab(), logits.begin());
            grammar->apply(logits.data(), ctx.n_vocab());
            s = sampler.sample(logits.data(), ctx.n_vocab());
            if (!grammar->allows(s.id)) {  // no token can continue: end here
                reason = "stop";
                break;
            }
        }
        if (tok.is_eog(s.id)) {
            reason = "stop";
            break;
        }
        if (grammar) grammar->accept(s.id);
        sampler.accept(s.id);
        generated.push_back(s.id);
        std::string out = stops.push(detok.push(s.id));
        emit(std::move(out), want_probs ? std::optional<TokenProb>(token_prob(tok, s)) : std::nullopt);
        if (stops.stopped() || (grammar && grammar->done())) {
            reason = "stop";
            break;
        }
        if (g.options.n_predict > 0 && n + 1 >= g.options.n_predict) break;
        if (pos >= ctx.n_ctx()) break;  // context full: "length"
        batch.clear();
        batch.add(s.id, pos++, 0, true);
        ctx.decode(batch);
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
    }
    if (!stops.stopped() && reason != "cancelled") {
        std::string tail = stops.push(detok.flush());
        if (stops.stopped()) reason = "stop";
        else tail += stops.flush();
        if (!tail.empty()) emit(std::move(tail), std::nullopt);
    }
    stats.eval = Clock::now() - t1;
    stats.eval_count = static_cast<int32_t>(generated.size());
    stats.total = Clock::now() - job.received;

    Event done;
    done.kind = Event::Kind::Done;
    done.done_reason = reason;
    done.stats = stats;
    done.context = std::move(prompt);
    done.context.insert(done.context.end(), generated.begin(), generated.end());
    st.events.push(std::move(done));
    mgr_.count_done(reason);
}

}  // namespace hearth::server
