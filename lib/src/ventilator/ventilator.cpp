// The ventilator's I/O loop: the ROUTER socket, the input descriptor and the clock around
// ventilator_core, which holds the protocol (lib/src/ventilator/). See docs/ARCHITECTURE.md.
#include "ventilator/ventilator.hpp"

#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "input/arg_lists.hpp"
#include "input/fingerprint.hpp"
#include "input/input_reader.hpp"
#include "mtask/error.hpp"
#include "security/security.hpp"
#include "transport/curve.hpp"
#include "transport/socket.hpp"
#include "ventilator/ventilator_core.hpp"

#include <random>
#include <unordered_map>

namespace mtask {
namespace {

std::uint64_t new_job_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd(); // 0 means "no job" on the wire
  return id;
}

std::unique_ptr<task_source> make_source(const ventilator_options& o) {
  if (!o.arg_lists.empty()) return std::make_unique<arg_list_source>(o.arg_lists);
  if (o.range) return std::make_unique<range_source>(*o.range);
  return std::make_unique<input_reader>(o.input, o.split);
}

ventilator_config config_of(const ventilator_options& o) {
  return ventilator_config{
      .job = new_job_id(),
      .window = o.window,
      .batch = o.batch,
      .limits = o.limits,
      .halt = o.halt,
      .heartbeat = millis(o.common.heartbeat_ms),
      .heartbeat_timeout = millis(o.common.heartbeat_timeout_ms),
      .idle_timeout = millis(o.common.idle_timeout_ms),
      .linger = millis(o.linger_ms),
      .max_message_bytes = static_cast<std::size_t>(o.common.max_message_bytes),
      .max_held_bytes = o.max_held_bytes,
      .sink_endpoint = o.common.sink,
      .ventilator_endpoint = o.common.ventilator,
      .fingerprint =
          o.arg_lists.empty() ? input_fingerprint(o.input, o.split, o.range) : arg_lists_fingerprint(o.arg_lists),
  };
}

// The ROUTER as the core sees it. ROUTER_MANDATORY turns a send to a peer without a connection
// into EHOSTUNREACH, and a full queue into EAGAIN.
class router_net final : public ventilator_net {
 public:
  explicit router_net(zmq::socket_t& router) : router_(router) {}
  send_result send(const std::string& to, std::string_view frame) override {
    try {
      if (!router_.send(zmq::buffer(to), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        return send_result::full;
      // The first frame went out, so this one is queued behind it atomically.
      return router_.send(zmq::buffer(frame), zmq::send_flags::dontwait) ? send_result::sent : send_result::full;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return send_result::unreachable;
      throw;
    }
  }

 private:
  zmq::socket_t& router_;
};

// Under CURVE, binds each routing id to the key that first used it: ROUTER_HANDOVER lets a
// reconnecting peer take over its old slot, and this makes sure only the same key can.
class identity_binding {
 public:
  // Returns: whether `routing_id` may speak with `key`.
  bool admit(const std::string& routing_id, const std::string& key) {
    auto [it, fresh] = keys_.try_emplace(routing_id, key);
    if (fresh || it->second == key) return true;
    if (!logged_) log::warn("dropped frames of a client that took another key's routing id");
    logged_ = true;
    return false;
  }

 private:
  std::unordered_map<std::string, std::string> keys_;
  bool logged_ = false;
};

class ventilator {
 public:
  explicit ventilator(const ventilator_options& opts)
      : opts_(opts),
        sec_(load_security(opts.common, role::ventilator)),
        input_(make_source(opts)),
        // Before the bind: libzmq asks the ZAP handler about every client from the first one on.
        zap_(sec_.curve() ? std::make_unique<zap_authenticator>(ctx_, sec_.allowed) : nullptr),
        router_(
            bind_socket(ctx_, zmq::socket_type::router, opts.common.ventilator, policy_of(opts.common, sec_.server()))),
        watch_(ctx_, router_, "", "", ""),
        net_(router_),
        core_(config_of(opts), *input_, net_, clock::now()) {}

  int run();

 private:
  const ventilator_options& opts_;
  zmq::context_t ctx_;
  const security_setup sec_;
  std::unique_ptr<task_source> input_;
  std::unique_ptr<zap_authenticator> zap_; // under CURVE: who may connect
  identity_binding identities_;
  zmq::socket_t router_;
  handshake_watch watch_; // counts the clients refused at the handshake
  router_net net_;
  ventilator_core core_;
};

int ventilator::run() {
  log::info("job {:016x}: bound '{}'", core_.job(), opts_.common.ventilator);
  bool stopping = false;
  std::uint64_t dropped = 0;
  while (!core_.exit_code()) {
    auto now = clock::now();
    if (int sig = stop_signal(); sig != 0 && !stopping) {
      stopping = true;
      core_.stop(sig, now);
    }
    core_.advance(now);
    if (core_.exit_code()) break;
    std::vector<zmq::pollitem_t> items{{router_.handle(), 0, ZMQ_POLLIN, 0}};
    const bool want_input = core_.wants_input() && input_->fd() >= 0;
    if (want_input) items.push_back({nullptr, input_->fd(), ZMQ_POLLIN, 0});
    poll_items(items, std::max(millis(0), std::chrono::duration_cast<millis>(core_.next_wakeup() - now)));
    now = clock::now();
    if (want_input && (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0) {
      try {
        input_->read_chunk();
      } catch (const error& e) {
        core_.give_up(e.what(), now); // the sink is told; what was read still completes nothing
      }
    }
    watch_.check();
    for (int i = 0; i < 10000; ++i) {
      auto in = try_receive(router_, true);
      if (!in) break;
      if (in->extra_frames) {
        count_dropped(dropped, protocol_error("malformed message: unexpected frames"));
        continue;
      }
      if (!sec_.curve()) {
        core_.on_message(in->routing_id, body_of(*in), now);
        continue;
      }
      // The ZAP handler let in only allowed keys; checked again here so that a socket that ever
      // skipped it (libzmq lets CURVE clients in unvetted without a handler) still gets nowhere.
      const auto name = sec_.name_of(in->user_id);
      if (name.empty() || !identities_.admit(in->routing_id, in->user_id)) {
        ++dropped;
        continue;
      }
      core_.on_message(in->routing_id, body_of(*in), now,
                       peer_credentials{.name = name, .may_be_sink = in->user_id == sec_.sink_key});
    }
  }
  const auto& s = core_.stats();
  if (s.malformed + dropped > 0) log::warn("dropped {} malformed or foreign message(s)", s.malformed + dropped);
  if (s.requeued > 0) log::info("{} task(s) were requeued after losing their worker", s.requeued);
  if (s.rerun_unacked > 0)
    log::info("{} task(s) whose results the sink never acknowledged were run again", s.rerun_unacked);
  if (s.lost_batches > 0) log::info("{} batch(es) lost on the way to a worker were requeued", s.lost_batches);
  if (s.retried > 0) log::info("{} failed attempt(s) were retried", s.retried);
  if (core_.resumed()) log::info("resumed the job: {} task(s) the sink already held were not run again", s.skipped);
  if (watch_.failures() > 0)
    log::warn("refused {} handshake(s): clients without CURVE or not on --allow", watch_.failures());
  return *core_.exit_code();
}

} // namespace

int run_ventilator(const ventilator_options& opts) {
  // Deliberately never destroyed: libzmq 4.3.4 has aborted while tearing down a context whose
  // connections were being dropped (seen under the hostile-frames test: "Resource temporarily
  // unavailable (src/zmtp_engine.cpp:446)"; cf. libzmq#4841). Everything this role must say is
  // said through handshakes before run() returns, so the process leaves its sockets to the kernel
  // at exit instead of running that teardown.
  static ventilator* kept = nullptr; // reachable, so leak checkers know it is kept on purpose
  kept = new ventilator(opts);
  return kept->run();
}

} // namespace mtask
