// pi_worker: an mtask worker that estimates pi by Monte Carlo. A task is a seed (an integer, as
// `mtask-ventilator --range 1:N` makes them); its result is 4*inside/M for M points drawn from
// splitmix64 seeded by it, written exactly, so `mtask-sink --reduce mean` is exact in any order.
#include "mtask/worker.hpp"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

// splitmix64 (Steele, Lea and Flood, 2014): small, fast, and the same numbers on every machine.
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// Returns: how many of `points` points drawn from `seed` fall inside the quarter disc. A point is
// two 31-bit integer coordinates cut from one draw, inside when x^2 + y^2 < 2^62: integers only,
// so no compiler or FPU setting can change a count.
std::uint64_t count_inside(std::uint64_t seed, std::uint64_t points) {
  constexpr std::uint64_t mask31 = (std::uint64_t{1} << 31) - 1;
  constexpr std::uint64_t radius2 = std::uint64_t{1} << 62;
  splitmix64 rng(seed);
  std::uint64_t inside = 0;
  for (std::uint64_t i = 0; i < points; ++i) {
    const std::uint64_t r = rng.next();
    const std::uint64_t x = r >> 33;
    const std::uint64_t y = (r >> 2) & mask31;
    inside += (x * x + y * y < radius2) ? 1 : 0;
  }
  return inside;
}

// Returns: 4*inside / 2^log2_points in decimal with every digit ("3.1415863037109375"). A fraction
// over a power of two has a finite decimal expansion, so the sink reads back the exact value and
// sums exactly (in long double), whatever order the results arrive in.
std::string exact_estimate(std::uint64_t inside, unsigned log2_points) {
  const std::uint64_t scaled = inside * 4;
  const std::uint64_t denominator_mask = (std::uint64_t{1} << log2_points) - 1;
  std::string text = std::to_string(scaled >> log2_points);
  std::uint64_t fraction = scaled & denominator_mask;
  if (fraction != 0) text += '.';
  while (fraction != 0) {
    fraction *= 10; // < 10 * 2^40: no overflow
    text += static_cast<char>('0' + (fraction >> log2_points));
    fraction &= denominator_mask;
  }
  return text;
}

// Returns: the task's seed: a decimal integer (optional '-'), surrounded by nothing but whitespace.
// Throws: std::runtime_error quoting the task, which fails it (the sink names it on stderr).
std::uint64_t parse_seed(std::string_view task) {
  const auto first = task.find_first_not_of(" \t\r\n");
  const auto last = task.find_last_not_of(" \t\r\n");
  const std::string_view digits =
      first == std::string_view::npos ? std::string_view{} : task.substr(first, last - first + 1);
  std::int64_t seed = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
    throw std::runtime_error("not a seed (an integer): '" + std::string(task.substr(0, 40)) + "'");
  }
  return static_cast<std::uint64_t>(seed);
}

constexpr std::string_view usage_line =
    "Usage: pi_worker [--points M] [mtask-worker flags]   M: points per task, a power of two "
    "from 1 to 2^40 (default 1048576)\n";

// Returns: log2 of the --points value, or -1 (after a message on stderr) when it is not allowed.
int parse_points(std::string_view text) {
  std::uint64_t points = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), points);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::has_single_bit(points) ||
      points > (std::uint64_t{1} << 40)) {
    std::fprintf(stderr, "pi_worker: --points: '%.*s' is not a power of two from 1 to 2^40\ntry --help\n",
                 static_cast<int>(text.size()), text.data());
    return -1;
  }
  return std::countr_zero(points);
}

} // namespace

// worker_main takes only mtask's own flags, so --points is taken out of argv before it looks.
int main(int argc, char** argv) {
  int log2_points = 20;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string_view value;
    if (arg == "--points") {
      if (i + 1 == argc) {
        std::fputs("pi_worker: --points needs a value\ntry --help\n", stderr);
        return 2;
      }
      value = argv[++i];
    } else if (arg.starts_with("--points=")) {
      value = arg.substr(9);
    } else {
      if (arg == "-h" || arg == "--help") std::fputs(usage_line.data(), stdout);
      rest.push_back(argv[i]);
      continue;
    }
    log2_points = parse_points(value);
    if (log2_points < 0) return 2;
  }
  const auto points = std::uint64_t{1} << log2_points;
  const auto shift = static_cast<unsigned>(log2_points);
  rest.push_back(nullptr);
  return mtask::worker_main(static_cast<int>(rest.size() - 1), rest.data(), [=](std::string_view task) {
    return exact_estimate(count_inside(parse_seed(task), points), shift);
  });
}
