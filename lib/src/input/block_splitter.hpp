// Cuts an input byte stream into payloads of about N bytes (--block), always at record boundaries.
// Same interface as record_splitter, so the ventilator can hold either; pure, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

// A payload is as many whole records as fit in block_bytes, counting each record with its
// separator (a last record without one is counted as if it had one), and at least one record
// even when that record alone is larger. Records are joined by the separator and the final
// separator is removed; the worker re-appends terminator(). Because the size of a record is
// counted the same whether or not its separator has arrived yet, the payloads do not depend on
// how the input is chunked into feed() calls nor on when next() is called. Memory holds only
// the bytes fed and not yet taken as payloads.
class block_splitter {
 public:
  // Throws: usage_error when block_bytes is 0.
  block_splitter(char separator, std::size_t block_bytes);

  void feed(std::string_view bytes);
  // The input has ended: a final record without a separator becomes part of a payload too.
  void finish();

  // Returns: the next payload, or nothing when no complete payload is buffered yet. Before
  //          finish(), a payload is complete once the bytes buffered from its start show that
  //          the record after it cannot fit: a block's worth, or the end of an oversized record.
  [[nodiscard]] std::optional<std::string> next();

  // Bytes fed but not yet returned by next().
  [[nodiscard]] std::size_t buffered() const { return buf_.size() - pos_; }
  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] std::string terminator() const { return std::string(1, separator_); }

 private:
  std::string take(std::size_t end, std::size_t resume);

  char separator_;
  std::size_t block_bytes_;
  std::string buf_;
  std::size_t pos_ = 0;         // start of the first payload not yet returned
  std::size_t scan_ = 0;        // where the search for the next separator resumes
  std::size_t last_fit_ = npos; // the last separator found that still fits in the block at pos_
  bool finished_ = false;

  static constexpr std::size_t npos = std::string::npos;
};

} // namespace mtask
