// Writes results to a file descriptor (stdout) with the output rule: a result's bytes as they
// are, a newline added to a non-empty result that lacks one, nothing for an empty result.
#pragma once

#include <string>
#include <string_view>

namespace mtask {

// Appends `result` to `out` by the output rule.
void append_result(std::string& out, std::string_view result);

class output_writer {
 public:
  explicit output_writer(int fd) : fd_(fd) {}
  void write(std::string_view result);
  // Writes everything buffered.
  // Throws: error "cannot write to stdout: reason" (a closed pipe included).
  void flush();
  [[nodiscard]] bool should_flush() const { return buf_.size() >= (1u << 16); }

 private:
  int fd_;
  std::string buf_;
};

} // namespace mtask
