// Cuts an input byte stream into task payloads: one line, N lines, or NUL-separated records.
// Pure: bytes go in through feed(), payloads come out of next(); no I/O, so memory holds only
// the bytes fed and not yet taken as payloads.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mtask {

struct split_options {
  char separator = '\n';            // '\n' for lines, '\0' for -0/--null
  std::size_t records_per_task = 1; // -N/--lines
  std::size_t block_bytes = 0;      // --block: payloads of about this many bytes of whole records; 0: off
};

class record_splitter {
 public:
  // Throws: usage_error when records_per_task is 0.
  explicit record_splitter(split_options opts);

  void feed(std::string_view bytes);
  // The input has ended: a final record without a separator becomes a payload too.
  void finish();

  // Returns: the next payload (its records joined by the separator, the final separator removed),
  //          or nothing when no complete payload is buffered yet.
  [[nodiscard]] std::optional<std::string> next();

  // Bytes fed but not yet returned by next().
  [[nodiscard]] std::size_t buffered() const { return buf_.size() - pos_; }
  [[nodiscard]] bool finished() const { return finished_; }
  [[nodiscard]] std::string terminator() const { return std::string(1, opts_.separator); }

 private:
  split_options opts_;
  std::string buf_;
  std::size_t pos_ = 0;          // start of the first payload not yet returned
  std::size_t scan_ = 0;         // where the search for the next separator resumes
  std::size_t records_seen_ = 0; // complete records between pos_ and scan_
  bool finished_ = false;
};

} // namespace mtask
