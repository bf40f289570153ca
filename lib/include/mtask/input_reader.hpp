// Reads the ventilator's input (stdin or a file) a chunk at a time into a record_splitter, only
// when the ventilator asks, so memory does not grow with the input.
#pragma once

#include "mtask/splitter.hpp"

#include <optional>
#include <string>
#include <utility>

namespace mtask {

class input_reader {
public:
  // `path` empty or "-" means stdin.
  // Throws: error "cannot open 'PATH': reason".
  input_reader(const std::string& path, split_options opts);
  ~input_reader();
  input_reader(const input_reader&) = delete;
  input_reader& operator=(const input_reader&) = delete;

  // The descriptor to poll for readability: -1 once the input has ended, or while a complete
  // payload is buffered (reading more would only grow memory; a long record keeps reading).
  [[nodiscard]] int fd() {
    if (eof_) return -1;
    if (!pending_) pending_ = splitter_.next();
    return pending_ ? -1 : fd_;
  }

  static constexpr std::size_t chunk_bytes = 1 << 16;

  // Reads one chunk (call when fd() is readable: it may block otherwise).
  // Throws: error "cannot read 'PATH': reason".
  void read_chunk();

  // Returns: the next payload already buffered, if any.
  [[nodiscard]] std::optional<std::string> next() {
    if (pending_) return std::exchange(pending_, std::nullopt);
    return splitter_.next();
  }
  // True once the input ended and every payload has been taken.
  [[nodiscard]] bool exhausted() const { return eof_ && !pending_ && splitter_.buffered() == 0; }
  [[nodiscard]] std::string terminator() const { return splitter_.terminator(); }

private:
  std::string name_;
  int fd_ = 0;
  bool owned_ = false;
  bool eof_ = false;
  record_splitter splitter_;
  std::optional<std::string> pending_; // a payload taken from the splitter to learn whether one is ready
};

} // namespace mtask
