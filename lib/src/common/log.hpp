// Logging to stderr through one settable sink: "mtask-worker: warn: task 41 timed out".
#pragma once

#include <fmt/format.h>

#include <functional>
#include <string>
#include <string_view>

namespace mtask::log {

enum class level { error = 0, warn = 1, info = 2, debug = 3 };

// The program name that prefixes every line, e.g. "mtask-sink".
void set_program(std::string name);
// Returns: the name set_program() set, for lines drawn outside write() (the sink's progress line).
std::string program();
// Lines at or below this level are written; -q lowers it to error, -v raises it.
void set_level(level lvl);
level current_level();
// Where finished lines go (default: stderr). Tests capture them here.
void set_sink(std::function<void(std::string_view line)> sink);

void write(level lvl, std::string_view text);

inline bool enabled(level lvl) { return static_cast<int>(lvl) <= static_cast<int>(current_level()); }

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(level::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::warn)) write(level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::info)) write(level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(level::debug)) write(level::debug, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace mtask::log
