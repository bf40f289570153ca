// Prints CLOCK_MONOTONIC in seconds with nanoseconds, for bench/lib.sh's timings (date +%s.%N is
// the wall clock, which NTP may slew; python3 would add tens of ms of start-up to every reading).
#include <cstdio>
#include <ctime>

int main() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  std::printf("%lld.%09ld\n", static_cast<long long>(t.tv_sec), t.tv_nsec);
}
