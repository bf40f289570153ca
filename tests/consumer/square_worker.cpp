// A worker written outside mtask against the installed library: squares each task.
#include <mtask/worker.hpp>

#include <string>

int main(int argc, char** argv) {
  return mtask::worker_main(argc, argv, [](std::string_view task) {
    const long long n = std::stoll(std::string(task));
    return std::to_string(n * n);
  });
}
