// Compiles every installed header on its own terms: none of them may pull in ZeroMQ, fmt, CLI11
// or msgpack, the library's private dependencies (their version macros would be defined here).
#include <mtask/aggregator.hpp>
#include <mtask/error.hpp>
#include <mtask/exit_code.hpp>
#include <mtask/options.hpp>
#include <mtask/sink.hpp>
#include <mtask/ventilator.hpp>
#include <mtask/worker.hpp>

#if defined(ZMQ_VERSION) || defined(CPPZMQ_VERSION)
#error "an installed mtask header includes ZeroMQ"
#endif
#if defined(FMT_VERSION)
#error "an installed mtask header includes fmt"
#endif
#if defined(CLI11_VERSION)
#error "an installed mtask header includes CLI11"
#endif
#if defined(MSGPACK_VERSION) || defined(MSGPACK_VERSION_MAJOR)
#error "an installed mtask header includes msgpack"
#endif

int main() {
  // The options are plain data a program can fill in without any transport type.
  mtask::worker_options w;
  w.common.ventilator = "ipc:///tmp/x";
  mtask::sink_options s;
  s.keep_order = true;
  return w.slots == 1 && s.common.idle_timeout_ms > 0 ? 0 : 1;
}
