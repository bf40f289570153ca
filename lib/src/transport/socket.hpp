// Socket policy in one place: the only library file that includes ZeroMQ. Every socket the
// roles open gets the same limits (HWM, linger, maximum message size, ZMTP heartbeats).
#pragma once

#include "mtask/error.hpp"
#include "mtask/options.hpp"
#include "protocol/wire.hpp"
#include "security/curve_keys.hpp"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mtask {

struct socket_policy {
  std::int64_t max_message_bytes = 256 << 20; // ZMQ_MAXMSGSIZE: a bigger frame drops the connection
  int heartbeat_ms = 250;                     // ZMQ_HEARTBEAT_IVL on connections
  int heartbeat_timeout_ms = 3000;            // ZMQ_HEARTBEAT_TIMEOUT
  int linger_ms = 500;                        // what is still queued at close gets this long, no more
  int hwm = 10000;                            // messages, both directions
  // CURVE (--key): a bound socket is a server with `secret_key` whose clients a ZAP handler
  // vets (zap_authenticator); a connecting socket is a client that pins `server_key`.
  std::optional<curve_keys> curve;
};

// Returns: the policy the shared flags ask for (message size limit, heartbeats), with `curve`'s
// keys (nothing: plaintext).
[[nodiscard]] socket_policy policy_of(const common_options& opts, std::optional<curve_keys> curve = std::nullopt);

// Returns: a socket of `type` with `policy` applied, bound to `endpoint`.
// Throws: error "cannot bind 'EP': reason".
zmq::socket_t bind_socket(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint,
                          const socket_policy& policy);

// Returns: a socket of `type` with `policy` applied, connecting to `endpoint` (in the background:
// an absent peer is not an error, ZeroMQ keeps retrying).
// Throws: error "cannot connect to 'EP': reason" for an endpoint ZeroMQ rejects outright.
zmq::socket_t connect_socket(zmq::context_t& ctx, zmq::socket_type type, const std::string& endpoint,
                             const socket_policy& policy, std::string_view routing_id = {});

// connect_socket in two steps, for a socket whose handshakes are watched (handshake_watch): the
// monitor must be attached before the connect, or the first handshake's failure can come and go
// unseen (a refused client is not retried: that failure is the only one it ever gets).
// Returns: the socket with `policy` applied, not connected.
zmq::socket_t client_socket(zmq::context_t& ctx, zmq::socket_type type, const socket_policy& policy,
                            std::string_view routing_id = {});
// Throws: error "cannot connect to 'EP': reason" for an endpoint ZeroMQ rejects outright.
void connect_to(zmq::socket_t& s, const std::string& endpoint);

// Sends one frame without blocking.
// Returns: false when it cannot go now (full queue, no peer); the caller decides whether to retry.
[[nodiscard]] bool try_send(zmq::socket_t& s, std::string_view frame);
// Sends [routing id, frame] on a ROUTER without blocking.
// Returns: false when the peer is unknown or its queue is full.
[[nodiscard]] bool try_send_to(zmq::socket_t& s, std::string_view routing_id, std::string_view frame);

// One received message: the routing id (ROUTER sockets only) and the frames after it.
struct incoming {
  std::string routing_id;
  std::string user_id; // under CURVE: the sender's public key (Z85), as the ZAP handler vouched
  zmq::message_t body;
  bool extra_frames = false; // more frames than our protocol uses: counted as malformed
};

// Receives one message without blocking; every frame of it is consumed.
// Returns: nothing when no message is waiting.
[[nodiscard]] std::optional<incoming> try_receive(zmq::socket_t& s, bool has_routing_id);

// zmq::poll that also wakes when a stop signal comes (stop_signal_fd(), on whichever thread the
// signal lands) and returns as if nothing were ready: the caller's loop then looks at stop_signal().
// `items` is as it was on return, with each item's revents.
void poll_items(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout);

// The bytes of `in`'s body.
[[nodiscard]] std::string_view body_of(const incoming& in);

// Counts and logs (info level) a frame a decoder refused: bad bytes from a peer never stop a process.
void count_dropped(std::uint64_t& dropped, const protocol_error& why);

// Runs `decode(bytes)` (any of wire's decoders) on the body of `in`, which must be a single frame
// after any routing id. Returns: whether it decoded; a refused frame is count_dropped().
template <typename Decode>
[[nodiscard]] bool decode_or_count(const incoming& in, std::uint64_t& dropped, Decode&& decode) {
  try {
    if (in.extra_frames) throw protocol_error("malformed message: unexpected frames");
    decode(body_of(in));
    return true;
  } catch (const protocol_error& e) {
    count_dropped(dropped, e);
    return false;
  }
}

// decode_or_count with wire::decode. Returns: the message, or nothing for a refused frame.
[[nodiscard]] std::optional<wire::message> decode_or_count(const incoming& in, std::size_t max_bytes,
                                                           std::uint64_t& dropped);

} // namespace mtask
