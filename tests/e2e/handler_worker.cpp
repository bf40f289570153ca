// A C++ worker on the handler API, for the end-to-end tests: upper-cases its task, fails on
// "boom" (by throwing), and takes 1.5 s on "slow" (longer than the tests' heartbeat timeout, so
// a heartbeat stalled by a running handler would show as a lost worker).
#include "mtask/worker.hpp"

#include <cctype>
#include <chrono>
#include <stdexcept>
#include <thread>

int main(int argc, char** argv) {
  return mtask::worker_main(argc, argv, [](std::string_view task) {
    if (task == "boom") throw std::runtime_error("boom is not a task");
    if (task == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::string out(task);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
  });
}
