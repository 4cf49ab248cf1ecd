// A small thread-safe FIFO carrying one request's events from the model runner that
// produces them to the HTTP thread that streams them back. Unbounded: the producer never
// blocks (a cancelled request stops producing within one token).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace hearth::server {

template <class T>
class Channel {
public:
    void push(T value) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            q_.push_back(std::move(value));
        }
        cv_.notify_one();
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
};

}  // namespace hearth::server
