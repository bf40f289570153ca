// The sink's I/O loop: its sockets, stdout and --failures around sink_core (lib/src/sink/), which
// holds the whole protocol. See docs/ARCHITECTURE.md for the message flow.
#include "mtask/sink.hpp"

#include "common/cli.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "mtask/error.hpp"
#include "security/security.hpp"
#include "sink/output_writer.hpp"
#include "sink/sink_core.hpp"
#include "transport/curve.hpp"
#include "transport/socket.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>

namespace mtask {
namespace {

// Opens --failures for writing (truncating), or returns -1 when not asked for.
// Throws: error "cannot open 'PATH' for writing: reason".
int open_failures(const std::string& path) {
  if (path.empty()) return -1;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error(fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
  return fd;
}

// Like a worker's: a connection that drops and comes back is the same sink to the ventilator's
// ROUTER (ROUTER_HANDOVER), not a stranger with the old one's acks lost.
std::string random_routing_id() {
  std::random_device rd;
  return fmt::format("s{:08x}{:08x}", rd(), rd());
}

sink_config config_of(const sink_options& o) {
  return sink_config{.keep_order = o.keep_order,
                     .jsonl = o.jsonl,
                     .failures = !o.failures_path.empty(),
                     .make_aggregator = o.make_aggregator,
                     .heartbeat = millis(o.common.heartbeat_ms),
                     .heartbeat_timeout = millis(o.common.heartbeat_timeout_ms),
                     .idle_timeout = millis(o.common.idle_timeout_ms),
                     .max_message_bytes = static_cast<std::size_t>(o.common.max_message_bytes),
                     .ventilator_endpoint = o.common.ventilator};
}

// A frame's bytes for the core. A message of several frames (our protocol has none) is handed on
// as an empty frame, which the core counts as malformed like any it cannot decode.
std::string_view frame_of(const incoming& in) { return in.extra_frames ? std::string_view() : body_of(in); }

class sink_loop final : public sink_io {
 public:
  explicit sink_loop(const sink_options& opts)
      : opts_(opts),
        cfg_(config_of(opts)),
        sec_(load_security(opts.common, role::sink)),
        failures_fd_(open_failures(opts.failures_path)),
        // Before the bind: libzmq asks the ZAP handler about every client from the first one on.
        zap_(sec_.curve() ? std::make_unique<zap_authenticator>(ctx_, sec_.allowed) : nullptr),
        pull_(bind_socket(ctx_, zmq::socket_type::pull, opts.common.sink, policy_of(opts.common, sec_.server()))),
        dealer_(connect_socket(ctx_, zmq::socket_type::dealer, opts.common.ventilator,
                               policy_of(opts.common, sec_.client_of(sec_.ventilator_key)), random_routing_id())),
        pull_watch_(ctx_, pull_, "", "", ""),
        watch_(ctx_, dealer_, "ventilator", "--ventilator-key", sec_.curve() ? sec_.own->public_key : ""),
        out_(STDOUT_FILENO),
        failures_(failures_fd_ >= 0 ? failures_fd_ : STDERR_FILENO) {}
  ~sink_loop() override {
    if (failures_fd_ >= 0) ::close(failures_fd_);
  }
  sink_loop(const sink_loop&) = delete;
  sink_loop& operator=(const sink_loop&) = delete;

  int run() {
    log::info("bound '{}', ventilator '{}'", opts_.common.sink, opts_.common.ventilator);
    sink_core core(cfg_, *this, clock::now());
    bool stopping = false;
    bool failure_told = false;
    for (auto now = clock::now(); !core.exit_code(); now = clock::now()) {
      if (int sig = stop_signal(); sig != 0 && !stopping) {
        stopping = true;
        drain(); // what a stuck reader does not take is lost
        core.stop(sig, now);
      }
      if (failure_ && !failure_told) {
        failure_told = true;
        core.fail(*failure_, now);
      }
      core.advance(now);
      if (core.exit_code()) break;
      output([&] { out_.flush(); }); // before waiting: whatever is ready goes to the writer thread now
      wait(core, now);
      take(core, clock::now());
      watch_.check();
      pull_watch_.check();
    }
    if (pull_watch_.failures() > 0)
      log::warn("refused {} handshake(s): clients without CURVE or not on --allow", pull_watch_.failures());
    if (!stopping) drain(); // after giving up, what was written so far still reaches the reader
    return *core.exit_code();
  }

  // sink_io
  send_result send_control(std::string_view frame) override {
    // A DEALER with ZMQ_IMMEDIATE fails with EAGAIN alike when it has no connection yet and when
    // the connection's queue is full, and nothing tells the two apart: both are `full` here. The
    // core treats them alike (keeps its acks, asks for POLLOUT), so nothing is lost by it.
    return try_send(dealer_, frame) ? send_result::sent : send_result::full;
  }
  void write_output(std::string_view bytes) override { out_.append(bytes); } // the core applied the output rule
  void write_failure(std::string_view line) override { failures_.write(line); }
  [[nodiscard]] std::size_t output_backlog() const override { return out_.backlog(); }
  [[nodiscard]] bool output_drained() override {
    output([&] {
      out_.flush();
      if (failures_fd_ >= 0) failures_.flush();
    });
    drain_awaited_ = !failure_ && !out_.drained();
    return !drain_awaited_ && !failure_;
  }

 private:
  // Waits for a frame, the writer thread, or the core's next_wakeup().
  void wait(const sink_core& core, time_point now) {
    // A control frame that could not be sent waits for the connection (ZMQ_IMMEDIATE: the dealer
    // is writable only once connected), so it goes out the moment the ventilator is there.
    const auto dealer_events = static_cast<short>(core.wants_to_send() ? ZMQ_POLLIN | ZMQ_POLLOUT : ZMQ_POLLIN);
    // Held back, results are left in the socket (ZeroMQ's queues then stop the workers). The
    // writer thread's eventfd says when stdout has taken a batch; it is polled only when something
    // waits on that (a batch not yet handed over, held-back results, the end of the job), or each
    // batch it writes would wake the loop once more for nothing.
    const bool wait_for_writer = !failure_ && (out_.has_pending() || !core.wants_results() || drain_awaited_);
    std::vector<zmq::pollitem_t> items{
        {dealer_.handle(), 0, dealer_events, 0},
        {nullptr, out_.fd(), static_cast<short>(wait_for_writer ? ZMQ_POLLIN : 0), 0},
        {pull_.handle(), 0, static_cast<short>(core.wants_results() ? ZMQ_POLLIN : 0), 0}};
    const auto until = std::chrono::ceil<millis>(core.next_wakeup() - now);
    poll_items(items, std::clamp(until, millis(0), millis(60'000)));
    if (items[1].revents != 0) output([&] { out_.on_ready(); });
  }

  // Hands what arrived to the core: control frames first, then results while it takes them.
  void take(sink_core& core, time_point now) {
    for (int i = 0; i < 1000; ++i) {
      auto in = try_receive(dealer_, false);
      if (!in) break;
      core.on_control(frame_of(*in), now);
    }
    for (int i = 0; i < 1000 && core.wants_results(); ++i) {
      auto in = try_receive(pull_, false);
      if (!in) break;
      const auto sender = sec_.name_of(in->user_id);
      // Under CURVE only allowed keys get here (the ZAP handler); checked again, as the
      // ventilator does. An empty frame is what the core counts as malformed.
      core.on_results(sec_.curve() && sender.empty() ? std::string_view() : frame_of(*in), now, sender);
      if (out_.backlog() >= cfg_.output_limit) output([&] { out_.flush(); }); // keep the writer busy
    }
  }

  // Runs an output call; its error (stdout closed...) is kept for the core, which aborts the job.
  template <typename F>
  void output(F&& f) {
    if (failure_) return;
    try {
      f();
    } catch (const error& e) {
      failure_ = e.what();
    }
  }

  // Waits (at most a heartbeat timeout) until stdout and --failures have taken everything.
  void drain() {
    if (failure_) return;
    try {
      (void)out_.wait_drained(millis(opts_.common.heartbeat_timeout_ms));
      if (failures_fd_ >= 0) failures_.flush();
    } catch (const error& e) {
      failure_ = e.what();
      log::error("{}", e.what());
    }
  }

  const sink_options& opts_;
  const sink_config cfg_;
  zmq::context_t ctx_;
  const security_setup sec_;
  int failures_fd_;
  std::unique_ptr<zap_authenticator> zap_; // under CURVE: who may push results
  zmq::socket_t pull_;
  zmq::socket_t dealer_;
  handshake_watch pull_watch_; // counts the workers refused at the handshake
  handshake_watch watch_;      // says why the ventilator will not have us (a key it does not allow...)
  // stdout, written from a thread of its own: a slow reader holds results back, not the loop.
  background_writer out_;
  output_writer failures_;             // used only with --failures
  std::optional<std::string> failure_; // the first output error
  bool drain_awaited_ = false;         // the core waits for the output to drain
};

} // namespace

int run_sink(const sink_options& opts) {
  // Deliberately never destroyed: libzmq 4.3.4 has aborted while tearing down a context whose
  // connections were being dropped (seen under the hostile-frames test: "Resource temporarily
  // unavailable (src/zmtp_engine.cpp:446)"; cf. libzmq#4841). Everything this role must say is
  // said through handshakes before run() returns, so the process leaves its sockets to the kernel
  // at exit instead of running that teardown.
  static sink_loop* kept = nullptr; // reachable, so leak checkers know it is kept on purpose
  kept = new sink_loop(opts);
  return kept->run();
}

} // namespace mtask
