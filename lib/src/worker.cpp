// The worker's event loop: one thread polls the two sockets and whatever the task runner needs
// (child pipes, pidfds, the handler pool's eventfd); credit and results are handled here,
// execution in the runner (lib/src/*_runner.cpp).
#include "mtask/worker.hpp"

#include "mtask/clock.hpp"
#include "mtask/error.hpp"
#include "mtask/log.hpp"
#include "mtask/socket.hpp"
#include "mtask/task_runner.hpp"
#include "mtask/wire.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

namespace mtask {
namespace {

std::string worker_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}", host, ::getpid());
}

std::string random_routing_id() {
  std::random_device rd;
  return fmt::format("w{:08x}{:08x}", rd(), rd());
}

std::unique_ptr<task_runner> make_runner(const worker_options& o) {
  if (o.handler) return make_handler_runner(o.handler, o.slots, o.handler_inline);
  runner_options r{.slots = o.slots,
                   .task_timeout_ms = o.task_timeout_ms,
                   .kill_grace_ms = o.kill_grace_ms,
                   .max_output_bytes = o.max_output_bytes};
  if (o.persistent) return make_persistent_runner(o.command, r);
  return make_command_runner(o.command, r);
}

class worker {
 public:
  explicit worker(const worker_options& opts)
      : opts_(opts),
        name_(worker_name()),
        dealer_(connect_socket(ctx_, zmq::socket_type::dealer, opts.common.ventilator, opts.common.policy(),
                               random_routing_id())),
        runner_(make_runner(opts)) {
    if (opts_.common.sink_given) connect_sink(opts_.common.sink);
  }

  int run();

 private:
  void connect_sink(const std::string& endpoint);
  void handle(const incoming& in, time_point now);
  void on_tasks(const incoming& in, time_point now);
  void start_tasks(time_point now);
  void collect();
  void complete(std::uint64_t job, const wire::result& r);
  void flush_results();
  void send_status();
  // Slots bound what runs; finished results waiting for the sink socket bound how much more starts
  // (so a stalled sink stops the worker instead of piling results up in it).
  [[nodiscard]] bool can_start() const {
    return !backlog_.empty() && runner_->has_room() && outbox_count_ < outbox_limit();
  }
  [[nodiscard]] std::size_t outbox_limit() const { return opts_.slots + prefetch(); }
  [[nodiscard]] std::size_t busy() const { return runner_->running() + backlog_.size() + outbox_count_; }
  // Tasks to hold beyond the slots, so a slot never waits a round trip for its next task. Sized so
  // the extra tasks are about `prefetch_budget` of work: thousands of micro-tasks, none of 10 ms ones
  // (which would otherwise wait behind a long task here instead of running on an idle worker).
  [[nodiscard]] std::size_t prefetch() const {
    if (opts_.prefetch >= 0) return static_cast<std::size_t>(opts_.prefetch);
    if (runtime_samples_ == 0) return 0;
    const double budget_us = std::chrono::duration<double, std::micro>(prefetch_budget).count() * opts_.slots;
    return static_cast<std::size_t>(std::min(budget_us / std::max(ewma_runtime_us_, 0.01), double(max_prefetch)));
  }
  // Credit offered: idle slots plus prefetch room, less everything received and not yet sent on.
  [[nodiscard]] std::uint32_t free_slots() const {
    const auto capacity = opts_.slots + prefetch();
    return busy() >= capacity ? 0 : static_cast<std::uint32_t>(capacity - busy());
  }
  static constexpr millis prefetch_budget{2};
  static constexpr std::size_t max_prefetch = 8192;

  const worker_options& opts_;
  std::string name_;
  zmq::context_t ctx_;
  zmq::socket_t dealer_;
  std::optional<zmq::socket_t> push_;
  std::string sink_endpoint_;
  std::unique_ptr<task_runner> runner_;

  std::uint64_t job_ = 0;      // job of the last tasks received
  std::uint64_t received_ = 0; // tasks of job_ received
  std::uint64_t completed_job_ = 0;
  std::deque<job_task> backlog_; // received (prefetched), waiting for room in the runner
  // Finished, not yet handed to the sink socket: one message per job, almost always just one.
  // Each result is encoded as it finishes, into its job's message.
  std::deque<wire::results_builder> outbox_;
  std::size_t outbox_count_ = 0;
  // Buffers kept for reuse: batches of micro-tasks would otherwise allocate (and page-fault in)
  // thousands of results' worth of memory per batch.
  std::vector<finished_task> finished_;
  std::vector<wire::results_builder> spare_builders_;
  std::string frame_;      // reused encoding buffer
  wire::tasks_view batch_; // reused decoding buffer for tasks
  bool status_due_ = true;
  time_point vent_seen_{};
  bool vent_heard_ = false; // a ventilator has spoken to us (for --once: its silence ends our service)
  std::uint64_t malformed_ = 0;
  double ewma_runtime_us_ = 0; // moving average of task run times
  std::uint64_t runtime_samples_ = 0;
};

void worker::connect_sink(const std::string& endpoint) {
  if (push_ && endpoint == sink_endpoint_) return;
  push_.emplace(connect_socket(ctx_, zmq::socket_type::push, endpoint, opts_.common.policy()));
  sink_endpoint_ = endpoint;
  log::info("pushing results to '{}'", endpoint);
}

void worker::handle(const incoming& in, time_point now) {
  if (wire::peek_type(body_of(in)) == wire::msg_type::tasks) {
    on_tasks(in, now);
    return;
  }
  auto msg = decode_or_count(in, static_cast<std::size_t>(opts_.common.max_message_bytes), malformed_);
  if (!msg) return;
  vent_seen_ = now;
  vent_heard_ = true;
  if (auto* v = std::get_if<wire::vent_status>(&*msg)) {
    if (v->complete && completed_job_ != v->job) {
      completed_job_ = v->job;
      status_due_ = true; // tell the ventilator we know, so it need not wait for us
      log::info("job {:016x} complete", v->job);
    }
  } else {
    ++malformed_;
    log::info("dropped a message a ventilator does not send");
  }
}

void worker::on_tasks(const incoming& in, time_point now) {
  // Decoded as views into the frame, into a reused batch: each payload is copied once, into the
  // task the runner gets.
  const auto max = static_cast<std::size_t>(opts_.common.max_message_bytes);
  if (!decode_or_count(in, malformed_, [&](std::string_view frame) { wire::decode_tasks(frame, batch_, max); })) return;
  vent_seen_ = now;
  vent_heard_ = true;
  if (!opts_.common.sink_given) {
    try {
      const std::string endpoint(batch_.sink_endpoint);
      check_endpoint("sink endpoint", endpoint);
      connect_sink(endpoint);
    } catch (const error& e) {
      ++malformed_;
      log::warn("dropped tasks: {}", e.what());
      return;
    }
  }
  if (batch_.job != job_) {
    job_ = batch_.job;
    received_ = 0;
  }
  received_ += batch_.tasks.size();
  const std::string terminator(batch_.terminator);
  for (const auto& t : batch_.tasks) {
    backlog_.push_back(job_task{
        batch_.job,
        wire::task{.id = t.id, .attempt = t.attempt, .payload = std::string(t.payload), .retries_left = t.retries_left},
        terminator});
  }
  status_due_ = true;
}

void worker::start_tasks(time_point now) {
  runner_->set_prefetch(prefetch());
  // At most half the capacity per turn: the results and the credit for that half go out before the
  // other half runs, so the next batch is already on its way when this one is done.
  const std::size_t budget = std::max<std::size_t>(1, (opts_.slots + prefetch()) / 2);
  const std::size_t outbox_room = outbox_limit() > outbox_count_ ? outbox_limit() - outbox_count_ : 0;
  runner_->start_from(backlog_, std::min(budget, outbox_room), now);
}

void worker::collect() {
  runner_->take_finished(finished_);
  for (const auto& f : finished_) {
    ewma_runtime_us_ = runtime_samples_++ == 0 ? f.runtime_us : 0.9 * ewma_runtime_us_ + 0.1 * f.runtime_us;
    complete(f.job, f.result);
  }
  auto returned = runner_->take_returned();
  // Back to the front, in their order: they were next.
  backlog_.insert(backlog_.begin(), std::make_move_iterator(returned.begin()), std::make_move_iterator(returned.end()));
}

void worker::complete(std::uint64_t job, const wire::result& r) {
  if (outbox_.empty() || outbox_.back().job() != job) {
    if (spare_builders_.empty()) {
      outbox_.emplace_back();
    } else {
      outbox_.push_back(std::move(spare_builders_.back())); // its buffer keeps its capacity
      spare_builders_.pop_back();
    }
    outbox_.back().start(job, name_);
  }
  outbox_.back().add(r);
  ++outbox_count_;
}

void worker::flush_results() {
  if (!push_) return;
  while (!outbox_.empty()) {
    // Not connected to the sink yet, or its queue is full: keep them (they still hold their slots).
    if (!try_send(*push_, outbox_.front().frame())) break;
    outbox_count_ -= outbox_.front().count();
    spare_builders_.push_back(std::move(outbox_.front()));
    outbox_.pop_front();
    status_due_ = true; // slots freed: new credit
  }
}

void worker::send_status() {
  wire::worker_status s{.job = job_,
                        .name = name_,
                        .slots = opts_.slots,
                        .free = free_slots(),
                        .received = received_,
                        .completed_job = completed_job_,
                        .busy = static_cast<std::uint32_t>(busy())};
  wire::encode_to(frame_, s);
  // Not connected yet (or the queue is full): stay due and retry in a few ms, not at the next
  // heartbeat, so a ventilator that just came up hears of us at once.
  status_due_ = !try_send(dealer_, frame_);
}

int worker::run() {
  log::info("{}: {} slot(s), ventilator '{}'", name_, opts_.slots, opts_.common.ventilator);
  const millis tick(opts_.common.heartbeat_ms);
  auto now = clock::now();
  vent_seen_ = now;
  time_point next_tick = now;
  std::vector<pollfd> fds;
  while (true) {
    if (int sig = stop_signal()) {
      (void)try_send(dealer_, wire::encode(wire::worker_bye{.job = job_}));
      runner_->stop(SIGTERM);
      log::info("stopped by signal {}", sig);
      return 128 + sig;
    }
    if (opts_.once && completed_job_ != 0) {
      send_status();
      return exit_ok;
    }
    start_tasks(now);
    collect(); // inline handlers finish inside start(): send their results before sleeping
    flush_results();
    if (status_due_ || now >= next_tick) {
      send_status();
      next_tick = now + tick;
    }

    // A status that could not be sent waits for the connection (ZMQ_IMMEDIATE: the dealer is
    // writable only once connected), so a worker joins the moment its ventilator is there.
    std::vector<zmq::pollitem_t> items{
        {dealer_.handle(), 0, static_cast<short>(status_due_ ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN), 0}};
    if (push_ && !outbox_.empty()) items.push_back({push_->handle(), 0, ZMQ_POLLOUT, 0});
    const std::size_t first_fd = items.size();
    fds.clear();
    runner_->poll_items(fds);
    for (const auto& p : fds) {
      // zmq_poll has its own event bits (ZMQ_POLLOUT is not POLLOUT).
      const short ev =
          static_cast<short>((p.events & POLLIN ? ZMQ_POLLIN : 0) | (p.events & POLLOUT ? ZMQ_POLLOUT : 0));
      items.push_back({nullptr, p.fd, ev, 0});
    }
    auto timeout = std::max(millis(0), std::chrono::duration_cast<millis>(runner_->next_deadline(next_tick) - now));
    if (!outbox_.empty() && push_) timeout = std::min(timeout, millis(10)); // retry an unsent batch soon
    if (status_due_) timeout = std::min(timeout, millis(10));
    if (can_start()) timeout = millis(0); // more work is waiting right here
    poll_items(items, timeout);
    now = clock::now();
    for (std::size_t i = 0; i < fds.size(); ++i) {
      const short ev = items[first_fd + i].revents;
      fds[i].revents = static_cast<short>((ev & ZMQ_POLLIN ? POLLIN : 0) | (ev & ZMQ_POLLOUT ? POLLOUT : 0) |
                                          (ev & ZMQ_POLLERR ? POLLERR : 0));
    }
    runner_->on_ready(fds, now);
    collect();
    for (int i = 0; i < 1000; ++i) {
      auto in = try_receive(dealer_, false);
      if (!in) break;
      handle(*in, now);
    }
    if (opts_.once && vent_heard_ && now - vent_seen_ > millis(opts_.common.heartbeat_timeout_ms)) {
      log::error("the ventilator at '{}' went away before its job completed", opts_.common.ventilator);
      return exit_failure;
    }
    if (opts_.common.idle_timeout_ms > 0 && now - vent_seen_ > millis(opts_.common.idle_timeout_ms)) {
      log::error("giving up after {} ms without a ventilator at '{}'", opts_.common.idle_timeout_ms,
                 opts_.common.ventilator);
      return exit_failure;
    }
  }
}

} // namespace

builtin builtin_handler(std::string_view name) {
  if (name == "echo") return {[](std::string_view payload) { return std::string(payload); }, true};
  if (name == "sleep") {
    // The task is a number of seconds (like sleep(1)'s argument): a stand-in for work of known
    // length that costs no process start, to measure dispatch alone. Runs on the handler threads.
    return {[](std::string_view payload) {
              double seconds = 0;
              auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), seconds);
              if (ec != std::errc() || end != payload.data() + payload.size() || !(seconds >= 0) || seconds > 86400) {
                throw std::runtime_error(fmt::format("sleep: '{}' is not a number of seconds", payload));
              }
              // Sleep as long as asked, not up to the default 50 us timer slack longer: the point
              // of this built-in is a task of exactly known length.
              thread_local const bool precise = ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) == 0;
              (void)precise;
              std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
              return std::string(payload);
            },
            false};
  }
  return {};
}

int run_worker(const worker_options& opts) {
  worker w(opts);
  return w.run();
}

} // namespace mtask
