// The worker's event loop: one thread polls the two sockets and whatever the task runner needs
// (child pipes, pidfds, the handler pool's eventfd) and feeds what happens to the worker's core
// (worker/worker_core.cpp: credit, batches, results); execution is the runner's (lib/src/*_runner.cpp).
#include "mtask/worker.hpp"

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "mtask/error.hpp"
#include "security/security.hpp"
#include "transport/curve.hpp"
#include "transport/socket.hpp"
#include "worker/task_runner.hpp"
#include "worker/worker_core.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <charconv>
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
                   .max_output_bytes = o.max_output_bytes,
                   .colsep = o.colsep,
                   .dry_run = o.dry_run,
                   .framing = o.framing};
  if (o.persistent && !o.dry_run) return make_persistent_runner(o.command, r);
  return make_command_runner(o.command, r);
}

worker_config config_of(const worker_options& o) {
  return worker_config{.name = worker_name(),
                       .slots = o.slots,
                       .once = o.once,
                       .prefetch = o.prefetch,
                       // Rounded up: a delay under a millisecond is still a delay.
                       .delay = std::chrono::ceil<millis>(std::chrono::duration<double>(o.delay_seconds)),
                       .heartbeat = millis(o.common.heartbeat_ms),
                       .heartbeat_timeout = millis(o.common.heartbeat_timeout_ms),
                       .idle_timeout = millis(o.common.idle_timeout_ms),
                       .max_message_bytes = static_cast<std::size_t>(o.common.max_message_bytes),
                       .sink_given = o.common.sink_given,
                       .ventilator_endpoint = o.common.ventilator};
}

// ZMQ_IMMEDIATE makes EAGAIN mean "not connected" as well as "queue full": the core retries either way.
send_result send_on(zmq::socket_t& s, std::string_view frame) {
  return try_send(s, frame) ? send_result::sent : send_result::full;
}

class worker_loop final : public worker_io {
 public:
  explicit worker_loop(const worker_options& opts)
      : opts_(opts),
        sec_(load_security(opts.common, role::worker)),
        dealer_(client_socket(ctx_, zmq::socket_type::dealer,
                              policy_of(opts.common, sec_.client_of(sec_.ventilator_key)), random_routing_id())),
        runner_(make_runner(opts)) {
    vent_watch_ = std::make_unique<handshake_watch>(ctx_, dealer_, "ventilator", "--ventilator-key", our_key());
    connect_to(dealer_, opts.common.ventilator); // watched from its first handshake on
    if (opts_.common.sink_given) connect_sink(opts_.common.sink);
  }

  int run();

  send_result send_to_ventilator(std::string_view frame) override { return send_on(dealer_, frame); }
  send_result send_to_sink(std::string_view frame) override {
    return push_ ? send_on(*push_, frame) : send_result::unreachable;
  }
  void connect_sink(const std::string& endpoint) override {
    // Under CURVE the sink is pinned by --sink-key: an endpoint a ventilator names cannot lead
    // results anywhere else.
    push_.emplace(client_socket(ctx_, zmq::socket_type::push, policy_of(opts_.common, sec_.client_of(sec_.sink_key))));
    sink_watch_ = std::make_unique<handshake_watch>(ctx_, *push_, "sink", "--sink-key", our_key());
    connect_to(*push_, endpoint);
    log::info("pushing results to '{}'", endpoint);
  }

 private:
  void wait(const worker_core& core, time_point now);
  void receive(worker_core& core, time_point now);
  [[nodiscard]] std::string our_key() const { return sec_.curve() ? sec_.own->public_key : std::string(); }

  const worker_options& opts_;
  zmq::context_t ctx_;
  const security_setup sec_;
  zmq::socket_t dealer_;
  std::optional<zmq::socket_t> push_;
  // Why a server will not have us (a key it does not allow, a key that is not its own...).
  std::unique_ptr<handshake_watch> vent_watch_;
  std::unique_ptr<handshake_watch> sink_watch_;
  std::unique_ptr<task_runner> runner_;
  std::vector<pollfd> fds_;            // the runner's descriptors
  std::vector<zmq::pollitem_t> items_; // the sockets, then fds_ in zmq_poll's terms
  std::uint64_t dropped_ = 0;          // multipart frames: our protocol never sends them
};

int worker_loop::run() {
  auto cfg = config_of(opts_);
  log::info("{}: {} slot(s), ventilator '{}'", cfg.name, cfg.slots, cfg.ventilator_endpoint);
  auto now = clock::now();
  worker_core core(std::move(cfg), *runner_, *this, now);
  while (true) {
    if (int sig = stop_signal()) {
      core.stop(sig, now);
    } else {
      core.advance(now);
    }
    if (auto code = core.exit_code()) return *code;
    wait(core, now);
    now = clock::now();
    runner_->on_ready(fds_, now);
    receive(core, now);
    vent_watch_->check();
    if (sink_watch_) {
      sink_watch_->check();
      // Results we cannot deliver would be held for ever, and a worker holding them looks busy to
      // the ventilator, which then waits for ever too: leave, so it requeues them elsewhere.
      if (sink_watch_->rejected())
        core.give_up("giving up: the sink will not take our results (see above); the ventilator requeues our tasks",
                     now);
    }
  }
}

// Polls the sockets and the runner's descriptors until something is ready or the core's next
// deadline. A status that could not be sent waits for the connection (ZMQ_IMMEDIATE: the dealer is
// writable only once connected), so a worker joins the moment its ventilator is there.
void worker_loop::wait(const worker_core& core, time_point now) {
  items_.clear();
  items_.push_back({dealer_.handle(), 0,
                    static_cast<short>(core.wants_to_send_status() ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN), 0});
  if (push_ && core.wants_to_send_results()) items_.push_back({push_->handle(), 0, ZMQ_POLLOUT, 0});
  const std::size_t first_fd = items_.size();
  fds_.clear();
  runner_->poll_items(fds_);
  for (const auto& p : fds_) {
    // zmq_poll has its own event bits (ZMQ_POLLOUT is not POLLOUT).
    const short ev = static_cast<short>((p.events & POLLIN ? ZMQ_POLLIN : 0) | (p.events & POLLOUT ? ZMQ_POLLOUT : 0));
    items_.push_back({nullptr, p.fd, ev, 0});
  }
  const auto timeout = std::max(millis(0), std::chrono::ceil<millis>(core.next_wakeup(now) - now));
  poll_items(items_, timeout);
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    const short ev = items_[first_fd + i].revents;
    fds_[i].revents = static_cast<short>((ev & ZMQ_POLLIN ? POLLIN : 0) | (ev & ZMQ_POLLOUT ? POLLOUT : 0) |
                                         (ev & ZMQ_POLLERR ? POLLERR : 0));
  }
}

void worker_loop::receive(worker_core& core, time_point now) {
  for (int i = 0; i < 1000; ++i) {
    auto in = try_receive(dealer_, false);
    if (!in) break;
    if (in->extra_frames) {
      count_dropped(dropped_, protocol_error("malformed message: unexpected frames"));
      continue;
    }
    core.on_message(body_of(*in), now);
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
  worker_loop w(opts);
  return w.run();
}

} // namespace mtask
