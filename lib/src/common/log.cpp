// Logging sink and level: process-wide, set once by each binary's main().
#include "common/log.hpp"

#include <cstdio>
#include <mutex>

namespace mtask::log {
namespace {

struct state {
  std::mutex mutex; // handler threads (C++ API) may log concurrently with the event loop
  std::string program = "mtask";
  level lvl = level::warn;
  std::function<void(std::string_view)> sink;
};

state& global() {
  static state s;
  return s;
}

std::string_view level_name(level lvl) {
  switch (lvl) {
    case level::error: return "error";
    case level::warn: return "warn";
    case level::info: return "info";
    case level::debug: return "debug";
  }
  return "?";
}

} // namespace

void set_program(std::string name) {
  std::lock_guard lock(global().mutex);
  global().program = std::move(name);
}

std::string program() {
  std::lock_guard lock(global().mutex);
  return global().program;
}

void set_level(level lvl) {
  std::lock_guard lock(global().mutex);
  global().lvl = lvl;
}

level current_level() { return global().lvl; }

void set_sink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(global().mutex);
  global().sink = std::move(sink);
}

void write(level lvl, std::string_view text) {
  auto& g = global();
  std::lock_guard lock(g.mutex);
  std::string line = fmt::format("{}: {}: {}\n", g.program, level_name(lvl), text);
  if (g.sink) {
    g.sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

} // namespace mtask::log
