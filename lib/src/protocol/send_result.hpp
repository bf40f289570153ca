// What a role's core learns when it hands a frame to the network: the cores never see a socket,
// only this outcome (the I/O loop maps ZeroMQ's errors onto it; the simulator makes its own).
#pragma once

namespace mtask {

enum class send_result {
  sent,        // queued for the peer: delivered unless the connection drops first
  unreachable, // no connection to that peer now (ROUTER_MANDATORY's EHOSTUNREACH, or not connected yet)
  full,        // the connection's queue is at its high-water mark: nothing was queued, try later
};

} // namespace mtask
