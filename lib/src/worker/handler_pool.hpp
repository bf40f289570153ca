// Runs in-process task handlers on their own threads, so a long handler never stalls the worker's
// event loop (heartbeats, credit). Completions wake the loop through an eventfd it polls.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mtask {

class handler_pool {
 public:
  using handler = std::function<std::string(std::string_view payload)>;

  struct completion {
    std::uint64_t key = 0;
    bool ok = true;
    std::string output; // the handler's result, or the exception's message when !ok
    std::uint64_t runtime_us = 0;
  };

  // Throws: error when the eventfd cannot be made.
  handler_pool(handler h, unsigned threads);
  ~handler_pool(); // finishes the handlers already running, drops queued ones, joins
  handler_pool(const handler_pool&) = delete;
  handler_pool& operator=(const handler_pool&) = delete;

  void submit(std::uint64_t key, std::string payload);
  // Readable while completions wait; poll it, then call take_completed().
  [[nodiscard]] int fd() const { return event_fd_; }
  std::vector<completion> take_completed();

 private:
  void run();

  handler handler_;
  int event_fd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::uint64_t, std::string>> queue_;
  std::vector<completion> done_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace mtask
