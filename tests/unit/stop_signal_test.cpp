// Unit tests for the stop signal's self-pipe (lib/src/common/stop_signal.cpp) and its use by
// poll_items (lib/src/transport/socket.cpp): a SIGTERM wakes a loop whichever thread takes it.
#include "common/stop_signal.hpp"
#include "transport/socket.hpp"

#include <doctest/doctest.h>

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

} // namespace

TEST_CASE("a stop signal taken by another thread wakes poll_items long before its timeout") {
  mtask::install_stop_handlers();
  REQUIRE(mtask::stop_signal_fd() >= 0);
  REQUIRE(mtask::stop_signal() == 0);
  // The signal goes to this helper thread, never to the polling one: no EINTR there. Before the
  // self-pipe, the poll slept its whole timeout (a worker with handler threads, up to a minute).
  std::thread other([] {
    std::this_thread::sleep_for(50ms); // let the main thread reach its poll (either order passes)
    pthread_kill(pthread_self(), SIGTERM);
  });
  std::vector<zmq::pollitem_t> items;
  const auto start = std::chrono::steady_clock::now();
  while (mtask::stop_signal() == 0 && std::chrono::steady_clock::now() - start < 60s)
    mtask::poll_items(items, std::chrono::milliseconds(60'000));
  other.join();
  CHECK(mtask::stop_signal() == SIGTERM);
  // One poll, not a minute: the verdict is which of the two ended the loop, with a wide margin.
  CHECK(std::chrono::steady_clock::now() - start < 30s);
  CHECK(items.empty()); // the pipe's item was taken back out

  // Drained after the wake-up: later polls sleep their timeout again rather than spin.
  std::vector<zmq::pollitem_t> probe{{nullptr, mtask::stop_signal_fd(), ZMQ_POLLIN, 0}};
  zmq::poll(probe, std::chrono::milliseconds(0));
  CHECK(probe[0].revents == 0);
}
