// mandelbrot_worker: an mtask worker that renders one row of a Mandelbrot image per task (the task
// is the row number, as `mtask-ventilator --range 0:H-1` makes them) as plain PGM pixel values.
// With --reference it renders the whole image itself, header included, for comparison.
#include "mtask/worker.hpp"

#include <charconv>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct image_size {
  int width = 400;
  int height = 300;
};

constexpr int max_iterations = 256;
constexpr std::size_t max_line = 70; // plain PGM: "no line should be longer than 70 characters"

// Returns: the grey level (0..255) of one pixel. The view spans x in [-2.5, 1] and is centred on
// y = 0 with square pixels. Black inside the set; outside, brighter the longer the point takes to
// escape. Only IEEE + and * (each exactly rounded) and integer arithmetic, built with
// -ffp-contract=off (CMakeLists.txt): workers on other hosts give the reference's bytes.
int grey_level(const image_size& size, int column, int row) {
  const double scale = 3.5 / size.width;
  const double cx = -2.5 + (column + 0.5) * scale;
  const double cy = (size.height / 2.0 - (row + 0.5)) * scale;
  double x = 0;
  double y = 0;
  int n = 0;
  while (n < max_iterations && x * x + y * y <= 4.0) {
    const double next_x = x * x - y * y + cx;
    y = 2 * x * y + cy;
    x = next_x;
    ++n;
  }
  if (n == max_iterations) return 0;
  return 255 * n / (n + 12); // 1 step: 19, 12 steps: 127, 255 steps: 243
}

// Emits one image row as lines of space-separated grey levels, none longer than 70 characters.
void render_row(const image_size& size, int row, const std::function<void(std::string_view)>& emit) {
  std::string line;
  for (int column = 0; column < size.width; ++column) {
    const std::string value = std::to_string(grey_level(size, column, row));
    if (!line.empty() && line.size() + 1 + value.size() > max_line) {
      emit(line);
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += value;
  }
  emit(line);
}

// Returns: the row number in a task ("17\n"), checked against the image height.
// Throws: std::runtime_error quoting the task, which fails it (the sink names it on stderr).
int parse_row(std::string_view task, const image_size& size) {
  while (!task.empty() && (task.back() == '\n' || task.back() == '\r')) task.remove_suffix(1);
  int row = -1;
  const auto [end, ec] = std::from_chars(task.data(), task.data() + task.size(), row);
  if (task.empty() || ec != std::errc{} || end != task.data() + task.size() || row < 0 || row >= size.height) {
    throw std::runtime_error("not a row number from 0 to " + std::to_string(size.height - 1) + ": '" +
                             std::string(task.substr(0, 40)) + "'");
  }
  return row;
}

// Returns: whether `text` is WxH with both from 1 to 100000 (stored in `size`).
bool parse_size(std::string_view text, image_size& size) {
  const auto x = text.find('x');
  if (x == std::string_view::npos) return false;
  auto number = [](std::string_view digits, int& out) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return !digits.empty() && ec == std::errc{} && end == digits.data() + digits.size() && out >= 1 && out <= 100000;
  };
  return number(text.substr(0, x), size.width) && number(text.substr(x + 1), size.height);
}

constexpr std::string_view usage_lines =
    "Usage: mandelbrot_worker [--size WxH] [mtask-worker flags]   serve rows (default size 400x300)\n"
    "   or: mandelbrot_worker --reference [--size WxH]            write the whole image as plain PGM\n";

} // namespace

// worker_main takes only mtask's own flags, so --size and --reference are taken out of argv first.
int main(int argc, char** argv) {
  image_size size;
  bool reference = false;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--reference") {
      reference = true;
    } else if (arg == "--size" || arg.starts_with("--size=")) {
      const std::string_view value = arg == "--size" ? (i + 1 < argc ? argv[++i] : "") : arg.substr(7);
      if (!parse_size(value, size)) {
        std::fprintf(stderr, "mandelbrot_worker: --size: '%.*s' is not WxH (each from 1 to 100000)\ntry --help\n",
                     static_cast<int>(value.size()), value.data());
        return 2;
      }
    } else {
      if (arg == "-h" || arg == "--help") std::fputs(usage_lines.data(), stdout);
      rest.push_back(argv[i]);
    }
  }

  if (reference) {
    if (rest.size() > 1) {
      std::fprintf(stderr, "mandelbrot_worker: --reference takes only --size, not '%s'\ntry --help\n", rest[1]);
      return 2;
    }
    std::printf("P2\n%d %d\n255\n", size.width, size.height);
    for (int row = 0; row < size.height; ++row) {
      render_row(size, row,
                 [](std::string_view line) { std::printf("%.*s\n", static_cast<int>(line.size()), line.data()); });
    }
    return std::fflush(stdout) == 0 ? 0 : 1;
  }

  rest.push_back(nullptr);
  return mtask::worker_main(static_cast<int>(rest.size() - 1), rest.data(),
                            mtask::streaming_handler([size](std::string_view task, const mtask::emit_fn& emit) {
                              render_row(size, parse_row(task, size), emit);
                            }));
}
