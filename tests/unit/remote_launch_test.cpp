// Unit tests for mtask's workers on other hosts (lib/src/launch/): GNU parallel's sshlogin syntax,
// --listen's address, the job's keys, and the remote script, run here by a local sh in ssh's place.
#include "launch/job_access.hpp"
#include "launch/remote_worker.hpp"
#include "launch/ssh_logins.hpp"
#include "mtask/error.hpp"
#include "security/security.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mtask;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/mtask-remote-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

// Runs `line` as sshd would (the user's shell gets it with -c), with `input` on its stdin and the
// stdin held open until the line's command ends, as an ssh session's is. Returns: its exit status.
int run_as_sshd(const temp_dir& dir, const std::string& line, const std::string& input) {
  std::ofstream(dir.path + "/line") << line;
  std::ofstream(dir.path + "/input") << input;
  const auto& d = dir.path;
  // TMPDIR: the key folders made here, not in /tmp where tests/e2e/test_ssh.py looks for leftovers.
  const auto script = "cd " + d + " && export TMPDIR=" + d +
                      " && mkfifo stdin && { sh -c \"$(cat line)\" < stdin > out 2>&1 & } && " +
                      "exec 4>stdin && cat input >&4 && wait $!";
  const int status = std::system(("sh -c '" + script + "'").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

TEST_CASE("sshlogin: a host, user@host, N/ slots, ssh options and ':' for this machine") {
  auto l = parse_ssh_login("server1");
  CHECK(l.words == std::vector<std::string>{"server1"});
  CHECK_FALSE(l.slots);
  CHECK(l.host() == "server1");
  CHECK_FALSE(l.local());
  l = parse_ssh_login(" 8/alice@node7 ");
  CHECK(l.slots == "8");
  CHECK(l.host() == "node7");
  CHECK(l.text() == "8/alice@node7");
  l = parse_ssh_login("-p 2222 -i /keys/id alice@node7");
  CHECK(l.words == std::vector<std::string>{"-p", "2222", "-i", "/keys/id", "alice@node7"});
  CHECK_FALSE(l.slots);
  CHECK(parse_ssh_login(":").local());
  CHECK(parse_ssh_login("2/:").local());
}

TEST_CASE("sshlogin: no host, zero slots or ':' with ssh options are usage errors") {
  CHECK_THROWS_AS(parse_ssh_login(""), usage_error);
  CHECK_THROWS_AS(parse_ssh_login("4/"), usage_error);
  CHECK_THROWS_WITH_AS(parse_ssh_login("0/node"), "sshlogin '0/node': the slots before '/' must be 1 to 999999",
                       usage_error);
  CHECK_THROWS_WITH_AS(parse_ssh_login("node -p"), "sshlogin 'node -p' ends with '-p', not a host", usage_error);
  CHECK_THROWS_AS(parse_ssh_login("-p 22 :"), usage_error);
}

TEST_CASE("sshlogins: comma-separated lists, then files without blank lines and comments") {
  temp_dir dir;
  const auto file = dir.path + "/logins";
  std::ofstream(file) << "# the rack\n\n4/n3  # fast one\n  n4\n";
  const auto logins = collect_ssh_logins({"n1,2/n2", ":"}, {file});
  REQUIRE(logins.size() == 5);
  CHECK(logins[0].host() == "n1");
  CHECK(logins[1].slots == "2");
  CHECK(logins[2].local());
  CHECK(logins[3].text() == "4/n3");
  CHECK(logins[4].host() == "n4");
  CHECK_THROWS_AS(collect_ssh_logins({}, {dir.path + "/missing"}), error);
  CHECK_THROWS_AS(collect_ssh_logins({"n1,,n2"}, {}), usage_error);
}

TEST_CASE("--listen: an address or name with an optional port, never a wildcard") {
  auto s = parse_listen("198.18.0.1:7000");
  CHECK(s.host == "198.18.0.1");
  CHECK(s.port == 7000);
  s = parse_listen("headnode");
  CHECK(s.host == "headnode");
  CHECK_FALSE(s.port);
  for (const char* bad : {"0.0.0.0", "*:5557", ":5557", "host:0", "host:65535", "host:x", "::1"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_listen(bad), usage_error);
  }
  CHECK(resolve_ipv4("localhost").rfind("127.", 0) == 0);
  CHECK(local_address_toward("127.0.0.1") == "127.0.0.1");
}

TEST_CASE("--listen: the sink's port is the ventilator's plus one, or both are free and distinct") {
  auto ep = pick_endpoints("127.0.0.1", 7000);
  CHECK(ep.ventilator == "tcp://127.0.0.1:7000");
  CHECK(ep.sink == "tcp://127.0.0.1:7001");
  ep = pick_endpoints("127.0.0.1", std::nullopt);
  CHECK(ep.ventilator != ep.sink);
}

TEST_CASE("job keys: the roles load them, with the server keys given as bare public keys") {
  temp_dir dir;
  job_keys keys(dir.path + "/keys");
  const auto local_secret = keys.add_local_worker("this host");
  const auto remote = keys.add_worker("node7");
  CHECK(remote.name == "node7");
  CHECK_FALSE(remote.secret_key.empty());
  struct stat st {};
  REQUIRE(::stat(keys.ventilator_secret_path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(dir.path.c_str(), &st) == 0);

  common_options vent;
  vent.ventilator = "tcp://198.18.0.1:7000";
  vent.key = keys.ventilator_secret_path();
  vent.sink_key = keys.sink().public_key; // no file: the key itself
  vent.allow = keys.allow_dir();
  const auto v = load_security(vent, role::ventilator);
  CHECK(v.name_of(remote.public_key) == "node7");
  CHECK(v.name_of(keys.sink().public_key) == "sink");
  CHECK(v.allowed.size() == 3); // the two workers and the sink

  common_options worker;
  worker.key = local_secret;
  worker.ventilator_key = keys.ventilator().public_key;
  worker.sink_key = keys.sink().public_key;
  const auto w = load_security(worker, role::worker);
  CHECK(w.ventilator_key == keys.ventilator().public_key);
  CHECK(w.own->name == "this host");
}

TEST_CASE("remote worker: ssh gets no terminal, the login, and one line that runs the worker with its key") {
  temp_dir dir;
  // The "worker": prints its arguments one a line, then the key file it was given.
  const auto worker = dir.path + "/worker";
  std::ofstream(worker) << "#!/bin/sh\nprintf '%s\\n' \"$@\"\ncat \"$2\"\nls -ld \"$2\" | cut -c1-10\n";
  ::chmod(worker.c_str(), 0755);
  const auto login = parse_ssh_login("2/-p 2222 alice@node7");
  const std::string secret = "#   ZeroMQ CURVE Secret Certificate\nit's \"S3CR3T\"\n";
  const auto cmd =
      plan_remote_worker({"ssh", "-i", "/k"}, login, {worker, "--once", "-- it's", "$HOME", "a\nb"}, secret);
  REQUIRE(cmd.argv.size() == 10);
  CHECK(cmd.argv[0] == "ssh");
  // The login's options, then ours (for -t/-T the last wins), then the host.
  CHECK(std::vector<std::string>(cmd.argv.begin(), cmd.argv.begin() + 9) ==
        std::vector<std::string>{"ssh", "-i", "/k", "-p", "2222", "-T", "-o", "BatchMode=yes", "alice@node7"});
  CHECK(cmd.stdin_data == secret);
  CHECK(cmd.argv[9].find("S3CR3T") == std::string::npos); // never on a command line

  CHECK(run_as_sshd(dir, cmd.argv[9], secret) == 0);
  const auto out = read_file(dir.path + "/out");
  const auto key_at = out.find("--key\n");
  REQUIRE(key_at != std::string::npos);
  const auto path_end = out.find('\n', key_at + 6);
  const auto key_path = out.substr(key_at + 6, path_end - key_at - 6);
  CHECK(out == "--key\n" + key_path + "\n--once\n-- it's\n$HOME\na\nb\n" + secret + "-rw-------\n");
  CHECK_FALSE(std::filesystem::exists(key_path)); // removed when the worker ended
}

TEST_CASE("remote worker: without keys nothing is read, and the worker's exit code comes back") {
  temp_dir dir;
  const auto worker = dir.path + "/worker";
  std::ofstream(worker) << "#!/bin/sh\necho \"$#:$1\"\nexit 7\n";
  ::chmod(worker.c_str(), 0755);
  const auto cmd = plan_remote_worker({"ssh"}, parse_ssh_login("node"), {worker, "x y"}, std::nullopt);
  CHECK(cmd.stdin_data.empty());
  CHECK(run_as_sshd(dir, cmd.argv.back(), "") == 7);
  CHECK(read_file(dir.path + "/out") == "1:x y\n");
}

// Runs a remote worker whose program is `worker_script`, and ends ssh's stdin (the session gone:
// mtask done or killed) once the worker has made the file `ready` in its folder (so it has set
// up what it means to test, a trap say, before the signal comes). Returns: the script's exit
// status.
int run_until_ready_then_end_stdin(const std::string& worker_script) {
  temp_dir dir;
  const auto worker = dir.path + "/worker";
  std::ofstream(worker) << worker_script;
  ::chmod(worker.c_str(), 0755);
  const auto cmd = plan_remote_worker({"ssh"}, parse_ssh_login("node"), {worker}, std::nullopt);
  std::ofstream(dir.path + "/line") << cmd.argv.back();
  const auto script = "cd " + dir.path + " && export TMPDIR=" + dir.path +
                      " && mkfifo stdin && { sh -c \"$(cat line)\" < stdin > out 2>&1 & } && exec 4>stdin && " +
                      "n=0; while [ ! -e ready ] && [ $n -lt 6000 ]; do n=$((n+1)); sleep 0.01; done; " +
                      "exec 4>&-; wait $!";
  const int status = std::system(("sh -c '" + script + "'").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE("remote worker: the end of ssh's stdin (mtask done, or killed) stops the worker") {
  // The worker must not run its 600 s.
  CHECK(run_until_ready_then_end_stdin("#!/bin/sh\ntouch ready\nexec sleep 600\n") == 128 + SIGTERM);
}

TEST_CASE("sshlogin: a word before the host that is no ssh option is refused, not made the destination") {
  CHECK_THROWS_WITH_AS(parse_ssh_login("alice 10.0.0.7"),
                       "sshlogin 'alice 10.0.0.7': 'alice' is not an ssh option (the host is the last word; an "
                       "option's value cannot hold a comma: put such options in --ssh-command or ~/.ssh/config)",
                       usage_error);
  CHECK_THROWS_WITH_AS(parse_ssh_login("-p node"), "sshlogin '-p node': '-p' needs a value before the host",
                       usage_error);
  CHECK_THROWS_AS(parse_ssh_login("-o Ciphers=a"), usage_error); // "-o Ciphers=a,b host" split at the comma
  CHECK_THROWS_AS(collect_ssh_logins({"-o Ciphers=a,b node"}, {}), usage_error);
  CHECK(parse_ssh_login("-4 -C -p 22 -oBatchMode=no node").host() == "node");
  CHECK_THROWS_WITH_AS(parse_ssh_login("5000/node"), "-j: 5000 is more than the most slots (4096)", usage_error);
}

TEST_CASE("remote worker: one that ignores SIGTERM (a built-in task runs to its end) gets SIGKILL") {
  CHECK(run_until_ready_then_end_stdin("#!/bin/sh\ntrap '' TERM\ntouch ready\nexec sleep 600\n") == 128 + SIGKILL);
}
