// Where the ventilator's tasks come from: its input (stdin or a file, read a chunk at a time into
// a record or block splitter, only when the ventilator asks, so memory does not grow with the
// input) or a generated number range (--range).
#pragma once

#include "input/block_splitter.hpp"
#include "input/range.hpp"
#include "input/splitter.hpp"

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mtask {

class task_source {
 public:
  virtual ~task_source() = default;
  // The descriptor to poll before read_chunk(), or -1 when nothing needs reading now.
  [[nodiscard]] virtual int fd() = 0;
  virtual void read_chunk() = 0;
  // Returns: the next payload ready, if any.
  [[nodiscard]] virtual std::optional<std::string> next() = 0;
  // True once every payload has been taken.
  [[nodiscard]] virtual bool exhausted() const = 0;
  // What ends each payload on a command's stdin.
  [[nodiscard]] virtual std::string terminator() const = 0;
};

// Integers A, A+STEP, ... up to B, as `seq A STEP B` prints them; no input is read.
class range_source final : public task_source {
 public:
  explicit range_source(range_spec spec) : gen_(spec) {}
  int fd() override { return -1; }
  void read_chunk() override {}
  std::optional<std::string> next() override {
    auto v = gen_.next();
    if (!v) done_ = true;
    return v;
  }
  bool exhausted() const override { return done_; }
  std::string terminator() const override { return "\n"; }

 private:
  range_generator gen_;
  bool done_ = false;
};

class input_reader final : public task_source {
 public:
  // `path` empty or "-" means stdin.
  // Throws: error "cannot open 'PATH': reason".
  input_reader(const std::string& path, split_options opts);
  ~input_reader();
  input_reader(const input_reader&) = delete;
  input_reader& operator=(const input_reader&) = delete;

  // The descriptor to poll for readability: -1 once the input has ended, or while a complete
  // payload is buffered (reading more would only grow memory; a long record keeps reading).
  [[nodiscard]] int fd() override {
    if (eof_) return -1;
    if (!pending_) pending_ = split_next();
    return pending_ ? -1 : fd_;
  }

  static constexpr std::size_t chunk_bytes = 1 << 16;

  // Reads one chunk (call when fd() is readable: it may block otherwise).
  // Throws: error "cannot read 'PATH': reason".
  void read_chunk() override;

  // Returns: the next payload already buffered, if any.
  [[nodiscard]] std::optional<std::string> next() override {
    if (pending_) return std::exchange(pending_, std::nullopt);
    return split_next();
  }
  // True once the input ended and every payload has been taken.
  [[nodiscard]] bool exhausted() const override {
    return eof_ && !pending_ && std::visit([](const auto& s) { return s.buffered(); }, splitter_) == 0;
  }
  [[nodiscard]] std::string terminator() const override {
    return std::visit([](const auto& s) { return s.terminator(); }, splitter_);
  }

 private:
  std::string name_;
  int fd_ = 0;
  bool owned_ = false;
  bool eof_ = false;
  std::optional<std::string> split_next() {
    return std::visit([](auto& s) { return s.next(); }, splitter_);
  }

  std::variant<record_splitter, block_splitter> splitter_;
  std::optional<std::string> pending_; // a payload taken from the splitter to learn whether one is ready
};

} // namespace mtask
