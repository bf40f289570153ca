// output_writer: buffered, EINTR-safe writes of results.
#include "mtask/output_writer.hpp"

#include "mtask/error.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

namespace mtask {

void append_result(std::string& out, std::string_view result) {
  if (result.empty()) return;
  out.append(result);
  if (result.back() != '\n') out.push_back('\n');
}

void output_writer::write(std::string_view result) {
  append_result(buf_, result);
  if (should_flush()) flush();
}

void output_writer::flush() {
  std::size_t done = 0;
  while (done < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw error(fmt::format("cannot write to stdout: {}", std::strerror(errno)));
    }
    done += static_cast<std::size_t>(n);
  }
  buf_.clear();
}

} // namespace mtask
