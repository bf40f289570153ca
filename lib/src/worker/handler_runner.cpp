// The handler runner: in-process task handlers, inline on the event loop or on a thread pool.
#include "worker/handler_pool.hpp"
#include "worker/task_runner.hpp"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <utility>

namespace mtask {
namespace {

class handler_runner final : public task_runner {
 public:
  handler_runner(task_handler handler, unsigned slots, bool run_inline) : handler_(std::move(handler)), slots_(slots) {
    if (!run_inline) pool_.emplace(handler_, slots);
  }

  // Inline handlers finish inside start(), so they always have room. On threads, the worker's
  // prefetch waits in the pool's queue, shared by all threads: a thread that finishes takes its
  // next task at once instead of waiting for the event loop to hand it one.
  bool has_room() const override { return !pool_ || waiting_.size() < slots_ + prefetch_; }
  void set_prefetch(std::size_t tasks) override { prefetch_ = tasks; }
  std::size_t running() const override { return waiting_.size(); }

  void start(job_task t, time_point) override {
    if (pool_) {
      pool_->submit(next_key_, t.task.payload);
      waiting_.emplace(next_key_++, std::move(t));
      return;
    }
    const auto started = clock::now();
    run_inline(t);
    auto& f = finished_.back();
    f.result.runtime_us = micros_between(started, clock::now());
    f.runtime_us = static_cast<double>(f.result.runtime_us);
  }

  std::size_t start_from(std::deque<job_task>& backlog, std::size_t max, time_point now) override {
    if (pool_) return task_runner::start_from(backlog, max, now);
    // Inline handlers are trivially quick (a clock read would cost as much as the task): the whole
    // burst is timed once and each task reports its mean. The times size the worker's prefetch,
    // so loop overhead must not count: only the handlers run between the two reads.
    const std::size_t n = std::min(max, backlog.size());
    if (n == 0) return 0;
    const auto first = finished_.size();
    const auto started = clock::now();
    for (std::size_t i = 0; i < n; ++i) {
      run_inline(backlog.front());
      backlog.pop_front();
    }
    const auto each =
        std::chrono::duration<double, std::micro>(clock::now() - started).count() / static_cast<double>(n);
    for (auto k = first; k < finished_.size(); ++k) {
      finished_[k].runtime_us = each;
      finished_[k].result.runtime_us = static_cast<std::uint64_t>(each);
    }
    return n;
  }

  void poll_items(std::vector<pollfd>& fds) const override {
    if (pool_) fds.push_back({pool_->fd(), POLLIN, 0});
  }

  void on_ready(const std::vector<pollfd>& fds, time_point) override {
    if (!pool_) return;
    bool ready = false;
    for (const auto& p : fds) ready = ready || (p.fd == pool_->fd() && p.revents != 0);
    if (!ready) return;
    for (auto& c : pool_->take_completed()) {
      auto it = waiting_.find(c.key);
      if (it == waiting_.end()) continue;
      auto r = result_for(it->second);
      if (c.ok)
        r.output = std::move(c.output);
      else
        fail(r, std::move(c.output));
      r.runtime_us = c.runtime_us;
      report(it->second, std::move(r));
      waiting_.erase(it);
    }
  }

  void stop(int) override {} // threads cannot be interrupted; the pool's destructor drops queued work

 private:
  // Runs `t` on this thread. Its result is built in place at the back of finished_: with
  // micro-tasks, moving tasks and results from struct to struct was most of the worker's copying.
  void run_inline(job_task& t) {
    auto& f = finished_.emplace_back();
    f.job = t.job;
    auto& r = f.result;
    r.id = t.task.id;
    r.attempt = t.task.attempt;
    r.retries_left = t.task.retries_left;
    add_details(r, t);
    try {
      r.output = handler_(t.task.payload);
    } catch (const std::exception& e) {
      fail(r, e.what());
      r.payload = std::move(t.task.payload); // as report() does: a failure carries its payload
    }
  }

  static void fail(wire::result& r, std::string why) {
    r.status = wire::task_status::failed;
    r.code = 1;
    r.error = std::move(why);
  }

  task_handler handler_;
  unsigned slots_;
  std::size_t prefetch_ = 0;
  std::optional<handler_pool> pool_;
  std::unordered_map<std::uint64_t, job_task> waiting_;
  std::uint64_t next_key_ = 0;
};

} // namespace

std::unique_ptr<task_runner> make_handler_runner(task_handler handler, unsigned slots, bool run_inline) {
  return std::make_unique<handler_runner>(std::move(handler), slots, run_inline);
}

} // namespace mtask
