// handler_pool: a fixed set of threads, a queue in, a vector out, an eventfd to wake the loop.
#include "worker/handler_pool.hpp"

#include "common/clock.hpp"
#include "mtask/error.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mtask {

handler_pool::handler_pool(handler h, unsigned threads) : handler_(std::move(h)) {
  event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw error(fmt::format("cannot create an eventfd: {}", std::strerror(errno)));
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

handler_pool::~handler_pool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  ::close(event_fd_);
}

void handler_pool::submit(std::uint64_t key, std::string payload) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(key, std::move(payload));
  }
  wake_.notify_one();
}

std::vector<handler_pool::completion> handler_pool::take_completed() {
  std::uint64_t count = 0;
  (void)::read(event_fd_, &count, sizeof count); // reset the eventfd; EAGAIN just means none yet
  std::lock_guard lock(mutex_);
  return std::exchange(done_, {});
}

void handler_pool::run() {
  while (true) {
    std::pair<std::uint64_t, std::string> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    completion c{.key = job.first};
    const auto start = clock::now();
    try {
      c.output = handler_(job.second);
    } catch (const std::exception& e) {
      c.ok = false;
      c.output = e.what();
    } catch (...) {
      c.ok = false;
      c.output = "the handler threw something that is not a std::exception";
    }
    c.runtime_us = micros_between(start, clock::now());
    {
      std::lock_guard lock(mutex_);
      done_.push_back(std::move(c));
    }
    const std::uint64_t one = 1;
    (void)::write(event_fd_, &one, sizeof one);
  }
}

} // namespace mtask
