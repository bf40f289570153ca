// The input's fingerprint (see fingerprint.hpp): stat and the first MiB, read with pread so that
// the reader's position in a shared descriptor (stdin) is not disturbed.
#include "input/fingerprint.hpp"

#include "mtask/error.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace mtask {
namespace {

constexpr std::size_t head_bytes = 1u << 20;

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : bytes) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string describe_file(int fd, const std::string& name, const split_options& split) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw error(fmt::format("cannot read '{}': {}", name, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return {}; // a pipe, a terminal, a socket: its bytes cannot be read twice
  // The first MiB from where reading starts (stdin redirected from a file may be positioned past
  // its start).
  const auto start = std::max<off_t>(::lseek(fd, 0, SEEK_CUR), 0);
  std::vector<char> head(
      std::min<std::size_t>(head_bytes, static_cast<std::size_t>(std::max<off_t>(st.st_size - start, 0))));
  std::size_t got = 0;
  while (got < head.size()) {
    const auto n = ::pread(fd, head.data() + got, head.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw error(fmt::format("cannot read '{}': {}", name, std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return fmt::format("file dev={} ino={} size={} mtime={}.{:09} offset={} head={:016x} sep={:02x} lines={} block={}",
                     static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino), st.st_size,
                     st.st_mtim.tv_sec, st.st_mtim.tv_nsec, start, fnv1a(std::string_view(head.data(), got)),
                     static_cast<unsigned>(static_cast<unsigned char>(split.separator)), split.records_per_task,
                     split.block_bytes);
}

} // namespace

std::string input_fingerprint(const std::string& path, const split_options& split,
                              const std::optional<range_spec>& range) {
  if (range) return fmt::format("range {}:{}:{}", range->first, range->last, range->step);
  if (path.empty() || path == "-") return describe_file(STDIN_FILENO, "stdin", split);
  // O_NONBLOCK: a named pipe without a writer yet must not block us here (it is not resumable anyway).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  try {
    auto s = describe_file(fd, path, split);
    ::close(fd);
    return s;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

} // namespace mtask
