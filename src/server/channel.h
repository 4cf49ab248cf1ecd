// A small thread-safe FIFO carrying one request's events from the model runner that
// produces them to the HTTP layer that sends them back. Unbounded: the producer never
// blocks (a cancelled request stops producing within one token). A consumer either blocks
// in pop() or registers a listener that is told (on the producer's thread) when items arrive
// and drains them with try_pop() elsewhere.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

namespace hearth::server {

template <class T>
class Channel {
public:
    void push(T value) {
        std::function<void()> tell;
        {
            std::lock_guard<std::mutex> lk(mu_);
            q_.push_back(std::move(value));
            tell = listener_;
        }
        cv_.notify_one();
        if (tell) tell();
    }

    // `fn` is called after each push (and at once when items are already waiting). It must
    // not block. An empty function removes the listener.
    void set_listener(std::function<void()> fn) {
        bool now;
        {
            std::lock_guard<std::mutex> lk(mu_);
            listener_ = fn;
            now = !q_.empty();
        }
        if (fn && now) fn();
    }

    std::optional<T> try_pop() {
        std::lock_guard<std::mutex> lk(mu_);
        if (q_.empty()) return std::nullopt;
        T v = std::move(q_.front());
        q_.pop_front();
        return v;
    }

    // The next value, or nullopt when none arrived within `timeout`.
    template <class Rep, class Period>
    std::optional<T> pop_for(std::chrono::duration<Rep, Period> timeout) {
        std::unique_lock<std::mutex> lk(mu_);
        if (!cv_.wait_for(lk, timeout, [&] { return !q_.empty(); })) return std::nullopt;
        T v = std::move(q_.front());
        q_.pop_front();
        return v;
    }

    T pop() {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return !q_.empty(); });
        T v = std::move(q_.front());
        q_.pop_front();
        return v;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<T> q_;
    std::function<void()> listener_;
};

}  // namespace hearth::server
