// ZeroMQ socket creation, option policy and non-blocking send/receive helpers.
#include "transport/socket.hpp"

#include "common/log.hpp"
#include "common/stop_signal.hpp"
#include "mtask/error.hpp"

#include <fmt/format.h>

// Only the #define is behind ZMQ_BUILD_DRAFT_API in libzmq 4.3's zmq.h; the option itself is
// accepted by every 4.3 build (options.cpp).
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace mtask {

socket_policy policy_of(const common_options& opts, std::optional<curve_keys> curve) {
  socket_policy p;
  p.curve = std::move(curve);
  p.max_message_bytes = opts.max_message_bytes;
  p.heartbeat_ms = opts.heartbeat_ms;
  p.heartbeat_timeout_ms = opts.heartbeat_timeout_ms;
  return p;
}

namespace {

constexpr int enforce_on = 1;

void apply(zmq::socket_t& s, zmq::socket_type type, const socket_policy& p) {
  s.set(zmq::sockopt::linger, p.linger_ms);
  s.set(zmq::sockopt::maxmsgsize, p.max_message_bytes);
  s.set(zmq::sockopt::sndhwm, p.hwm);
  s.set(zmq::sockopt::rcvhwm, p.hwm);
  s.set(zmq::sockopt::heartbeat_ivl, p.heartbeat_ms);
  s.set(zmq::sockopt::heartbeat_timeout, p.heartbeat_timeout_ms);
  s.set(zmq::sockopt::heartbeat_ttl, p.heartbeat_timeout_ms);
  // Reconnect within a millisecond or two, backing off (doubling) to 200 ms: processes started
  // together by a script join within milliseconds of the bind (libzmq adds up to one interval of
  // jitter, so a 10 ms step cost a 1-task job 20 ms), while a worker left waiting for a ventilator
  // on another host knocks only five times a second.
  s.set(zmq::sockopt::reconnect_ivl, 1);
  s.set(zmq::sockopt::reconnect_ivl_max, 200);
  if (type == zmq::socket_type::router) {
    // Fail loudly (EHOSTUNREACH) instead of silently dropping a message to a vanished peer,
    // and let a reconnecting peer with the same routing id take over its old slot.
    s.set(zmq::sockopt::router_mandatory, 1);
    s.set(zmq::sockopt::router_handover, 1);
  }
  if (type == zmq::socket_type::dealer || type == zmq::socket_type::push) {
    // Queue only to completed connections: a message to a peer that is not there yet fails
    // (EAGAIN) rather than waiting in a pipe and arriving stale at the next ventilator or sink.
    s.set(zmq::sockopt::immediate, 1);
  }
}

} // namespace

zmq::socket_t bind_socket(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint,
                          const socket_policy& policy) {
  zmq::socket_t s(ctx, type);
  apply(s, type, policy);
  if (policy.curve) {
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, policy.curve->secret_key);
    // The domain makes libzmq ask our ZAP handler about every client; enforcing it refuses them
    // all should the handler be missing. Without it libzmq 4.3 lets every CURVE client in
    // unvetted, with whatever User-Id its own metadata claims (curve_server.cpp, "Stonehouse").
    s.set(zmq::sockopt::zap_domain, "mtask");
    if (zmq_setsockopt(s.handle(), ZMQ_ZAP_ENFORCE_DOMAIN, &enforce_on, sizeof enforce_on) != 0)
      throw error(
          fmt::format("cannot bind '{}': this libzmq cannot enforce ZAP ({})", endpoint, zmq_strerror(zmq_errno())));
  }
  try {
    s.bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw error(fmt::format("cannot bind '{}': {}", endpoint, e.what()));
  }
  return s;
}

zmq::socket_t client_socket(zmq::context_t& ctx, zmq::socket_type type, const socket_policy& policy,
                            std::string_view routing_id) {
  zmq::socket_t s(ctx, type);
  apply(s, type, policy);
  if (!routing_id.empty()) s.set(zmq::sockopt::routing_id, zmq::buffer(routing_id));
  if (policy.curve) {
    s.set(zmq::sockopt::curve_serverkey, policy.curve->server_key);
    s.set(zmq::sockopt::curve_publickey, policy.curve->public_key);
    s.set(zmq::sockopt::curve_secretkey, policy.curve->secret_key);
  }
  return s;
}

void connect_to(zmq::socket_t& s, const std::string& endpoint) {
  try {
    s.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw error(fmt::format("cannot connect to '{}': {}", endpoint, e.what()));
  }
}

zmq::socket_t connect_socket(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint,
                             const socket_policy& policy, std::string_view routing_id) {
  auto s = client_socket(ctx, type, policy, routing_id);
  connect_to(s, endpoint);
  return s;
}

bool try_send(zmq::socket_t& s, std::string_view frame) {
  try {
    return s.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return false;
    throw;
  }
}

bool try_send_to(zmq::socket_t& s, std::string_view routing_id, std::string_view frame) {
  try {
    if (!s.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    // The first frame went out, so this one is queued behind it atomically.
    return s.send(zmq::buffer(frame), zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return false;
    throw;
  }
}

std::optional<incoming> try_receive(zmq::socket_t& s, bool has_routing_id) {
  zmq::message_t first;
  if (!s.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
  incoming in;
  if (has_routing_id) {
    in.routing_id = first.to_string();
    if (!first.more()) {
      in.extra_frames = true; // a routing id with no body
      return in;
    }
    (void)s.recv(in.body, zmq::recv_flags::none); // the rest of a multipart message is already here
  } else {
    in.body = std::move(first);
  }
  // Set only on connections a ZAP handler vetted (CURVE): whoever sent this holds that key. (Read
  // from the body: a ROUTER makes the routing id frame itself, with no metadata.)
  if (const char* key = zmq_msg_gets(in.body.handle(), "User-Id")) in.user_id = key;
  // Drain any further frames of the same message; our protocol never sends them.
  for (bool more = in.body.more(); more;) {
    zmq::message_t extra;
    (void)s.recv(extra, zmq::recv_flags::none);
    in.extra_frames = true;
    more = extra.more();
  }
  return in;
}

void poll_items(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout) {
  const int stop_fd = stop_signal_fd();
  if (stop_fd >= 0) items.push_back({nullptr, stop_fd, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    for (auto& i : items) i.revents = 0;
  }
  if (stop_fd >= 0) {
    if (items.back().revents != 0) drain_stop_signal_fd();
    items.pop_back();
  }
}

std::string_view body_of(const incoming& in) { return {static_cast<const char*>(in.body.data()), in.body.size()}; }

void count_dropped(std::uint64_t& dropped, const protocol_error& why) {
  ++dropped;
  log::info("dropped a frame: {}", why.what());
}

std::optional<wire::message> decode_or_count(const incoming& in, std::size_t max_bytes, std::uint64_t& dropped) {
  std::optional<wire::message> m;
  (void)decode_or_count(in, dropped, [&](std::string_view frame) { m = wire::decode(frame, max_bytes); });
  return m;
}

} // namespace mtask
